package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/critq/critq/internal/testcorpus"
)

// statusFields reads Name, SigBlk and SigPnd of a saved /proc status file.
func statusFields(t *testing.T, path string) (name string, blk, pnd uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			name = v
		case "SigBlk":
			blk, _ = strconv.ParseUint(v, 16, 64)
		case "SigPnd":
			pnd, _ = strconv.ParseUint(v, 16, 64)
		}
	}
	return name, blk, pnd
}

// TestThreadsAgainstProc checks critq ps -L and the threads view against
// the /proc/PID/task/TID/status files saved before each dump (proc/ in the
// corpus): the thread ids, names, blocked and pending signals.
func TestThreadsAgainstProc(t *testing.T) {
	checked := 0
	for _, dir := range testcorpus.Dumps(t) {
		procs, _ := filepath.Glob(filepath.Join(dir, "proc", "*", "status"))
		if len(procs) == 0 {
			continue
		}
		out, stderr, code := runViews("ps", "-L", "--format", "json", dir)
		if code != exitOK {
			t.Errorf("%s: ps -L: exit %d: %s", dir, code, stderr)
			continue
		}
		var ps struct {
			Threads []struct {
				PID, TID uint32
				Comm     string
				Sigmask  uint64
				Pending  []uint32
			}
		}
		if err := json.Unmarshal([]byte(out), &ps); err != nil {
			t.Fatal(err)
		}
		vout, stderr, code := runViews("--format", "json", "threads.map(t, [t.pid, t.tid, t.comm, t.sigmask, t.pending])", dir)
		if code != exitOK {
			t.Errorf("%s: threads: exit %d: %s", dir, code, stderr)
			continue
		}
		var view [][]any
		dec := json.NewDecoder(strings.NewReader(vout))
		dec.UseNumber()
		if err := dec.Decode(&view); err != nil {
			t.Fatal(err)
		}
		if len(view) != len(ps.Threads) {
			t.Errorf("%s: %d threads in the view, %d in ps -L", dir, len(view), len(ps.Threads))
			continue
		}
		for i, th := range ps.Threads {
			status := filepath.Join(dir, "proc", strconv.Itoa(int(th.PID)), "task", strconv.Itoa(int(th.TID)), "status")
			if th.TID == th.PID {
				status = filepath.Join(dir, "proc", strconv.Itoa(int(th.PID)), "status")
			}
			if _, err := os.Stat(status); err != nil {
				continue // no saved view of this thread (a zombie's, a child's)
			}
			name, blk, pnd := statusFields(t, status)
			var mask uint64
			for _, s := range th.Pending {
				mask |= 1 << (s - 1)
			}
			if th.Comm != name || th.Sigmask != blk || mask != pnd {
				t.Errorf("%s: thread %d: ps -L says %q blocked %x pending %x; /proc says %q %x %x", dir, th.TID, th.Comm, th.Sigmask, mask, name, blk, pnd)
			}
			v := view[i]
			if fmt.Sprint(v[1]) != fmt.Sprint(th.TID) || v[2] != th.Comm || fmt.Sprint(v[3]) != fmt.Sprint(th.Sigmask) || fmt.Sprint(v[4]) != fmt.Sprint(th.Pending) {
				t.Errorf("%s: thread %d: the view says %v, ps -L %+v", dir, th.TID, v, th)
			}
			checked++
		}
	}
	if testcorpus.Root(t) != "" && checked < 10 {
		t.Errorf("only %d threads checked against /proc", checked)
	}
}
