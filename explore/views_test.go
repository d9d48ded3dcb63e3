package explore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/critq/critq/explore"
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

// TestViewsCorpus renders every view of every corpus dump as text and as
// JSON: no error, valid JSON, and the process count of pstree.img.
func TestViewsCorpus(t *testing.T) {
	for _, dir := range corpusDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			e := mustExplorer(t, dir)
			tasks, err := e.Tasks()
			if errors.Is(err, explore.ErrNoPstree) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ps, err := e.Ps()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			var count func([]*explore.PsNode)
			count = func(ns []*explore.PsNode) {
				for _, p := range ns {
					n++
					if p.CmdlineError != "" {
						t.Errorf("pid %d: %s", p.PID, p.CmdlineError)
					}
					count(p.Children)
				}
			}
			count(ps.Roots)
			if n != len(tasks) {
				t.Errorf("ps shows %d tasks, pstree has %d", n, len(tasks))
			}
			views := map[string]func() (explore.View, error){
				"ps": func() (explore.View, error) { return e.Ps() }, "maps": func() (explore.View, error) { return e.Maps(0) },
				"fds": func() (explore.View, error) { return e.Fds(0) }, "sockets": func() (explore.View, error) { return e.Sockets() },
				"inspect": func() (explore.View, error) { return e.Inspect() },
			}
			for name, get := range views {
				v, err := get()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, format := range []string{"text", "json"} {
					var b bytes.Buffer
					if err := explore.Write(&b, v, format); err != nil {
						t.Fatalf("%s %s: %v", name, format, err)
					}
					if format == "json" && !json.Valid(b.Bytes()) {
						t.Errorf("%s: invalid JSON", name)
					}
				}
			}
		})
	}
}
