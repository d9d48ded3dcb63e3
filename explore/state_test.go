package explore_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/critq/critq/explore"
	"github.com/critq/critq/internal/testcorpus"
)

// TestStateProc compares the state of every task that saved its
// /proc/PID/status before the dump with the view's: Z is ZOMBIE, T is
// STOPPED, the others are ALIVE. CRIU writes zombies as DEAD (2).
func TestStateProc(t *testing.T) {
	want := map[string]string{"Z": "ZOMBIE", "T": "STOPPED", "t": "STOPPED", "S": "ALIVE", "R": "ALIVE", "D": "ALIVE", "I": "ALIVE"}
	counts := map[string]int{}
	for _, dir := range corpusDirs(t) {
		if !testcorpus.HandMade(dir) {
			continue
		}
		e := mustExplorer(t, dir)
		tasks, err := e.Tasks()
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			b, err := os.ReadFile(filepath.Join(dir, "proc", strconv.Itoa(int(task.PID)), "status"))
			if err != nil {
				continue
			}
			var letter string
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) > 1 && f[0] == "State:" {
					letter = f[1]
				}
			}
			if got := task.StateName(); got != want[letter] {
				t.Errorf("%s: pid %d: state %q (task_state %d), /proc said %q", filepath.Base(dir), task.PID, got, task.State(), letter)
			}
			counts[letter]++
		}
	}
	t.Logf("tasks by /proc state: %v", counts)
}

// TestZombieCore checks the zombies of zdtm-zombie00, which saved no /proc
// view: CRIU wrote task_state 2 (DEAD) and ps shows them as zombies.
func TestZombieCore(t *testing.T) {
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	e := mustExplorer(t, filepath.Join(root, "zdtm-zombie00"))
	ps, err := e.Ps()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := ps.Text(&b); err != nil {
		t.Fatal(err)
	}
	zombies := 0
	for _, n := range ps.Roots[0].Children {
		task, err := e.Task(n.PID)
		if err != nil {
			t.Fatal(err)
		}
		if task.State() != 2 || n.State != "ZOMBIE" {
			t.Errorf("pid %d: task_state %d shown as %s, wanted 2 shown as ZOMBIE", n.PID, task.State(), n.State)
		}
		zombies++
	}
	if zombies != 4 || strings.Count(b.String(), "ZOMBIE ") != 4 || strings.Count(b.String(), "[zombie00] <defunct>") != 4 {
		t.Errorf("%d zombies; ps:\n%s", zombies, b.String())
	}
}

// TestWriteJSONNoHTMLEscapes checks that JSON keeps & < > as they are.
func TestWriteJSONNoHTMLEscapes(t *testing.T) {
	v := &explore.Fds{Tasks: []explore.FdsTask{{PID: 1, FDs: []explore.FdLink{{FD: 3, Target: "/tmp/a&b<c>"}}}}}
	var b bytes.Buffer
	if err := explore.Write(&b, v, "json"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"target": "/tmp/a&b<c>"`) {
		t.Errorf("JSON escapes HTML characters:\n%s", b.String())
	}
}
