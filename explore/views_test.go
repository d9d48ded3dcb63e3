package explore_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFdsProc compares the fds view with `ls -l /proc/PID/fd` saved in the
// hand-made dumps: mode, number and target of every descriptor.
func TestFdsProc(t *testing.T) {
	n := 0
	for _, dir := range corpusDirs(t) {
		procDir := filepath.Join(dir, "proc")
		ents, err := os.ReadDir(procDir)
		if err != nil || strings.HasPrefix(filepath.Base(dir), "zdtm-") || filepath.Base(dir) == "dump" {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			e := mustExplorer(t, dir)
			for _, ent := range ents {
				pid, err := strconv.Atoi(ent.Name())
				if err != nil {
					continue
				}
				b, err := os.ReadFile(filepath.Join(procDir, ent.Name(), "fd.txt"))
				if err != nil {
					t.Fatal(err)
				}
				want := map[uint32]string{}
				for _, l := range strings.Split(string(b), "\n") {
					f := strings.Fields(l)
					if len(f) < 11 || f[9] != "->" {
						continue
					}
					fd, _ := strconv.Atoi(f[8])
					want[uint32(fd)] = f[0] + " " + strings.Join(f[10:], " ")
				}
				v, err := e.Fds(uint32(pid))
				if err != nil {
					t.Fatal(err)
				}
				if len(v.Tasks[0].FDs) != len(want) {
					t.Errorf("pid %d: %d fds, wanted %d", pid, len(v.Tasks[0].FDs), len(want))
				}
				for _, f := range v.Tasks[0].FDs {
					got := f.Mode + " " + f.Target
					w := want[f.FD]
					if f.Target == "socket:[?]" && strings.HasPrefix(w, f.Mode+" socket:[") {
						continue // packet sockets: the images keep no inode number
					}
					if got != w {
						t.Errorf("pid %d fd %d: got %q, wanted %q", pid, f.FD, got, w)
					}
					n++
				}
			}
		})
	}
	t.Logf("%d descriptors compared", n)
}
