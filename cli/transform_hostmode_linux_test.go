package cli

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// TestTransformHostModeWarning: a rule that points a file at one of this
// host whose st_mode differs from the dump's is warned about, with the
// host's mode as stat(2) gives it.
func TestTransformHostModeWarning(t *testing.T) {
	var st syscall.Stat_t
	if err := syscall.Stat("/etc/passwd", &st); err != nil {
		t.Skip(err)
	}
	if st.Mode == 0o100755 {
		t.Skip("/etc/passwd has the mode of /usr/bin/sleep in the dump")
	}
	_, stderr, code := runCLI(t, nil, "transform", "--dry-run",
		`files: e.type == REG && e.reg.name == "/usr/bin/sleep" ? e.with({"reg.name": "/etc/passwd"}) : e`, sleepPlain)
	want := fmt.Sprintf("/etc/passwd has mode 0%o on this host, 0100755 in the dump", st.Mode)
	if code != exitOK || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant %q", code, stderr, want)
	}
}
