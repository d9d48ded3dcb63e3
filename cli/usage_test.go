package cli

import (
	"strings"
	"testing"
)

// TestUsageStyle: every command's -h and critq -h begin with the one
// synopsis style, "usage: critq ...".
func TestUsageStyle(t *testing.T) {
	for name := range commands {
		out, _, code := runCLI(t, nil, name, "-h")
		if code != exitOK || !strings.HasPrefix(out, "usage: critq ") {
			t.Errorf("%s -h: exit %d, begins %q", name, code, firstLine(out))
		}
	}
	out, _, _ := runCLI(t, nil, "-h")
	if !strings.Contains(out, "\nusage: critq ") {
		t.Errorf("critq -h: %q", out)
	}
}
