package cli

import (
	"strings"
	"testing"
)

// TestFlagsEveryCommand: -h prints the usage once, on stdout, and exits 0;
// an unknown flag is one line on stderr, nothing on stdout, exit 2.
func TestFlagsEveryCommand(t *testing.T) {
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			var out, errb strings.Builder
			code := run([]string{name, "-h"}, strings.NewReader(""), &out, &errb)
			if code != exitOK || errb.Len() != 0 {
				t.Errorf("critq %s -h: exit %d, stderr %q", name, code, errb.String())
			}
			first, _, _ := strings.Cut(out.String(), "\n")
			if first == "" || strings.Count(out.String(), first) != 1 {
				t.Errorf("critq %s -h: the usage is not printed exactly once:\n%s", name, out.String())
			}
			out.Reset()
			errb.Reset()
			code = run([]string{name, "--no-such-flag"}, strings.NewReader(""), &out, &errb)
			if code != exitUsage || out.Len() != 0 || strings.Count(errb.String(), "\n") != 1 {
				t.Errorf("critq %s --no-such-flag: exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr", name, code, out.String(), errb.String())
			}
		})
	}
}
