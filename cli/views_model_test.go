package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/internal/testcorpus"
)

// TestCttyByPath: a controlling terminal's fd shows the path of the file
// CRIU keeps for it (tty_file_entry.regf_id names /dev/tty in files.img),
// not "ctty".
func TestCttyByPath(t *testing.T) {
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	dir := filepath.Join(root, "zdtm-pty00")
	out, stderr, code := runViews("fds", dir)
	path, _, _ := runViews("-r", `files.filter(f, f.id == fds.filter(d, d.fd == 6)[0].file.tty.regf_id)[0].path`, dir)
	if code != exitOK || strings.Contains(out, "ctty") || path != "/dev/tty\n" || !strings.Contains(out, "lrwx------ 6 -> /dev/tty\n") {
		t.Errorf("fds: exit %d, stderr %q, the file says %q:\n%s", code, stderr, path, out)
	}
}

// TestNetlinkInSSForm: netlink sockets print as ss does: the protocol's
// name, "kernel" for port 0, COMM/PID for a task's pid, else the signed
// port; the peer "*" unless connected (then group:port).
func TestNetlinkInSSForm(t *testing.T) {
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	out, stderr, code := runViews("sockets", filepath.Join(root, "zdtm-sk-netlink"))
	for _, want := range []string{
		"uevent:sk-netlink/71 ",                           // portid 71, the task's pid
		"uevent:-1963238165 ",                             // portid 2331729131, autobound
		"uevent:-999289402                        32:71 ", // connected to group 32, port 71
		"uevent:kernel ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("sockets: exit %d, stderr %q: no %q in\n%s", code, stderr, want, out)
		}
	}
}
