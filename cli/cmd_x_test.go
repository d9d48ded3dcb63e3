package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs critq in process with args and returns stdout, stderr and
// the exit code.
func runViews(args ...string) (string, string, int) {
	var out, errb strings.Builder
	code := run(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// TestXCommand runs critq x over the dumps in testdata and compares the
// output with crit 4.2's (golden/x-*.txt).
func TestXCommand(t *testing.T) {
	dirs, _ := filepath.Glob("../testdata/dumps/*")
	for _, dir := range dirs {
		for _, what := range []string{"ps", "fds", "mems", "rss"} {
			want, err := os.ReadFile(filepath.Join(dir, "golden", "x-"+what+".txt"))
			if err != nil {
				continue
			}
			out, stderr, code := runViews("x", dir, what)
			if code != exitOK || out != string(want) {
				t.Errorf("critq x %s %s: exit %d, stderr %q, output equal to crit's: %v", dir, what, code, stderr, out == string(want))
			}
			out, _, code = runViews("x", "--format", "json", dir, what)
			if code != exitOK || !json.Valid([]byte(out)) {
				t.Errorf("critq x --format json %s %s: exit %d, invalid JSON", dir, what, code)
			}
		}
	}
}

func TestViewCommands(t *testing.T) {
	const dir = "../testdata/dumps/sleep-plain"
	for _, c := range []struct {
		args   []string
		code   int
		stdout string // a line the output must hold
		stderr string
	}{
		{[]string{"maps", dir, "19635"}, exitOK, "556e759dc000-556e759fd000 rw-p 00000000 00:00 0                          [heap]", ""},
		{[]string{"fds", dir, "19635"}, exitOK, "lr-x------ 0 -> /dev/null", ""},
		{[]string{"ps", dir}, exitOK, "  19635       0   19635   19635 ALIVE     1     0 sleep 1000", ""},
		{[]string{"sockets", dir}, exitOK, "Netid", ""},
		{[]string{"inspect", dir}, exitOK, "└── Statistics", ""},
		{[]string{"maps", dir, "7"}, exitUsage, "", "critq: ../testdata/dumps/sleep-plain: no task 7 (tasks: [19635])\n"},
		{[]string{"maps", dir, "x"}, exitUsage, "", "critq: bad pid \"x\"\n"},
		{[]string{"x", dir, "sk"}, exitUsage, "", "critq: x: unknown explorer \"sk\" (ps, fds, mems or rss)\n"},
		{[]string{"ps", "/nonexistent"}, exitBadImage, "", "critq: stat /nonexistent: no such file or directory\n"},
		{[]string{"mem", "search", dir, "HOME=/root"}, exitOK, "19635 0x7ffde770dfa4 7ffde76ed000-7ffde770e000 rw-p [stack]:", ""},
		{[]string{"mem", "search", "--hex", dir, "484f4d453d"}, exitOK, "0x7ffde770dfa4", ""},
		{[]string{"mem", "search", "--regex", dir, "LANG=[A-Z.a-z0-9-]+"}, exitOK, "[LANG=C.UTF-8]", ""},
		{[]string{"mem", "search", dir, "no such bytes anywhere"}, exitFalse, "", ""},
		{[]string{"mem", dir, "19635", "0x7ffde770dfa4", "16"}, exitOK, "7ffde770dfa4: 484f 4d45 3d2f 726f 6f74 0050 4154 483d  HOME=/root.PATH=", ""},
		{[]string{"mem", dir, "19635", "0x1000", "16"}, exitError, "", "critq: pid 19635: 0x1000: not in any VMA\n"},
		{[]string{"mem", dir}, exitOK, "19635   sleep          116 KiB       0 B", ""},
	} {
		out, stderr, code := runViews(c.args...)
		if code != c.code || !strings.Contains(out, c.stdout) || stderr != c.stderr {
			t.Errorf("critq %q: exit %d, stderr %q, stdout %q; wanted exit %d, stderr %q, a line %q", c.args, code, stderr, out, c.code, c.stderr, c.stdout)
		}
	}
}
