package elfcore_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/elfcore"
	"github.com/critq/critq/explore"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/mem"
)

// TestCoresCriuCoredumpCannotWrite writes the cores criu-coredump fails
// on: the zombie of proc-tree, the memfd and ghost-file mappings of
// fds-zoo. gdb shows the registers of the core images, and each marker of
// the MANIFEST that memory holds reads back with x/s at its address.
func TestCoresCriuCoredumpCannotWrite(t *testing.T) {
	corpus := testcorpus.Root(t)
	if corpus == "" {
		t.Skip("no corpus")
	}
	_, gdbErr := exec.LookPath("gdb")
	for _, c := range []struct {
		dump string
		pids []uint32
	}{{"proc-tree", []uint32{20010}}, {"fds-zoo", []uint32{7235, 7238}}} {
		dir := filepath.Join(corpus, c.dump)
		d, err := dump.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		m := mem.Open(d)
		defer m.Close()
		markers := manifestMarkers(t, dir)
		for _, pid := range c.pids {
			core, p := writeCore(t, d, pid, elfcore.Options{})
			task, err := explore.New(d, m).Task(pid)
			if err != nil {
				t.Fatal(err)
			}
			if p.Zombie != !task.HasMemory() {
				t.Errorf("%s %d: zombie %v", c.dump, pid, p.Zombie)
			}
			if gdbErr != nil {
				continue
			}
			name := filepath.Join(t.TempDir(), fmt.Sprintf("core.%d", pid))
			if err := os.WriteFile(name, core, 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"-ex", "info registers rip rsp"}
			var want []string
			for _, mk := range markers {
				var addr uint64
				m.Search(mem.Literal([]byte(mk)), mem.SearchOptions{PIDs: []uint32{pid}}, func(x mem.Match) error {
					addr = x.Addr
					return fmt.Errorf("found")
				})
				if addr != 0 {
					args = append(args, "-ex", fmt.Sprintf("x/s 0x%x", addr))
					want = append(want, fmt.Sprintf("0x%x:\t%q", addr, mk))
				}
			}
			if task.HasMemory() && len(want) == 0 {
				t.Errorf("%s %d: no marker of the MANIFEST in memory", c.dump, pid)
			}
			out := runGDB(t, filepath.Dir(name), append(args, "-c", name)...)
			g := task.Core.GetThreadInfo().GetGpregs()
			for _, r := range []string{fmt.Sprintf("rip 0x%x ", g.GetIp()), fmt.Sprintf("rsp 0x%x ", g.GetSp())} {
				if !strings.Contains(strings.Join(strings.Fields(out), " ")+" ", r) {
					t.Errorf("%s %d: gdb does not show %q:\n%s", c.dump, pid, r, out)
				}
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("%s %d: gdb does not show %s:\n%s", c.dump, pid, w, out)
				}
			}
		}
	}
}

// manifestMarkers returns the CRITQ-MARKER strings a MANIFEST lists.
func manifestMarkers(t *testing.T, dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "MANIFEST.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`'(CRITQ-MARKER-[\w-]+)'`).FindAllSubmatch(b, -1) {
		out = append(out, string(m[1]))
	}
	return out
}
