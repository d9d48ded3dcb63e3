package cli

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var updateInspect = flag.Bool("update-inspect", false, "rewrite testdata/inspect-*.golden")

// inspectJSON is the part of inspect --format json these tests read.
type inspectJSON struct {
	PID       uint32
	Processes []*inspectProc
	Files     []struct {
		PID       uint32
		FDs       []any
		Cwd, Root string
	}
	Sockets []struct {
		Users []struct{ PID uint32 }
	}
	Container any
}

type inspectProc struct {
	PID          uint32
	Cmdline      []string
	Environ      *[]string
	EnvironError string `json:"environ_error"`
	Children     []*inspectProc
}

// nulStrings splits a /proc file of NUL-terminated strings.
func nulStrings(b []byte) []string {
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// TestInspectSubtreeEnv checks inspect -p PID --ps-tree-env on dumps of
// a parent and its child against what /proc showed before the dump
// (proc/PID/environ and cmdline) and the MANIFEST (the processes were
// started in cases/run/NAME, that is /srv/critq-cases/run/NAME): the tree
// holds PID's subtree only, each process's environment and command line
// are /proc's, the files section has the subtree's tasks with their cwd
// and root, and every socket shown is held by a task of the subtree.
func TestInspectSubtreeEnv(t *testing.T) {
	for _, name := range []string{"pipes-fifo", "unix-sockets"} {
		d := filepath.Join("../testdata/dumps", name)
		ents, err := os.ReadDir(filepath.Join(d, "proc"))
		if err != nil {
			t.Fatal(err)
		}
		var pids []uint32 // parent first: the dumps' pids grow with the tree
		for _, e := range ents {
			n, err := strconv.ParseUint(e.Name(), 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			pids = append(pids, uint32(n))
		}
		slices.Sort(pids)
		for i, pid := range pids {
			t.Run(name+"/"+strconv.Itoa(int(pid)), func(t *testing.T) {
				out, errb, code := runCLI(t, nil, "inspect", "-p", strconv.Itoa(int(pid)), "--ps-tree-env", "--format", "json", d)
				if code != exitOK {
					t.Fatalf("exit %d: %s", code, errb)
				}
				var v inspectJSON
				if err := json.Unmarshal([]byte(out), &v); err != nil {
					t.Fatal(err)
				}
				want := pids[i:] // the parent's subtree is every task; the child's is itself
				var got []uint32
				var walk func(ps []*inspectProc)
				walk = func(ps []*inspectProc) {
					for _, p := range ps {
						got = append(got, p.PID)
						proc := filepath.Join(d, "proc", strconv.Itoa(int(p.PID)))
						env, err1 := os.ReadFile(filepath.Join(proc, "environ"))
						cmd, err2 := os.ReadFile(filepath.Join(proc, "cmdline"))
						if err1 != nil || err2 != nil {
							t.Fatal(err1, err2)
						}
						if p.Environ == nil || !reflect.DeepEqual(*p.Environ, nulStrings(env)) {
							t.Errorf("pid %d: environ %v (%s), /proc had %q", p.PID, p.Environ, p.EnvironError, nulStrings(env))
						}
						if !reflect.DeepEqual(p.Cmdline, nulStrings(cmd)) {
							t.Errorf("pid %d: cmdline %q, /proc had %q", p.PID, p.Cmdline, nulStrings(cmd))
						}
						walk(p.Children)
					}
				}
				walk(v.Processes)
				if v.PID != pid || !reflect.DeepEqual(got, want) {
					t.Errorf("pid %d, processes %v; want %d, %v", v.PID, got, pid, want)
				}
				var files []uint32
				for _, f := range v.Files {
					files = append(files, f.PID)
					if f.Cwd != "/srv/critq-cases/run/"+name || f.Root != "/" {
						t.Errorf("pid %d: cwd %q, root %q", f.PID, f.Cwd, f.Root)
					}
				}
				if !reflect.DeepEqual(files, want) {
					t.Errorf("files of %v, want %v", files, want)
				}
				for _, s := range v.Sockets {
					if !slices.ContainsFunc(s.Users, func(u struct{ PID uint32 }) bool { return slices.Contains(want, u.PID) }) {
						t.Errorf("socket of %v shown", s.Users)
					}
				}
				// the text (and tree, its other name) shows the same
				text, _, _ := runCLI(t, nil, "inspect", "-p", strconv.Itoa(int(pid)), "--ps-tree-env", d)
				tree, _, _ := runCLI(t, nil, "inspect", "--pid", strconv.Itoa(int(pid)), "--ps-tree-env", "--ps-tree-cmd", "--format", "tree", d)
				if text != tree {
					t.Errorf("--format tree differs from text:\n%s\n%s", tree, text)
				}
				for _, s := range []string{"(pid " + strconv.Itoa(int(pid)) + " and its descendants)\n", "── Environment\n", "── PATH=/usr/local/bin:/usr/bin:/bin\n",
					"── cwd /srv/critq-cases/run/" + name + "\n", "── root /\n"} {
					if !strings.Contains(text, s) {
						t.Errorf("text lacks %q:\n%s", s, text)
					}
				}
			})
		}
	}
}

// TestInspectGolden compares inspect's text and JSON for a child task of
// unix-sockets with --ps-tree-env to golden files (-update-inspect
// rewrites them); their environment, command line, cwd and root are
// checked against /proc and the MANIFEST by TestInspectSubtreeEnv, the
// sockets against ss by the sockets view's tests.
func TestInspectGolden(t *testing.T) {
	const d = "../testdata/dumps/unix-sockets"
	for _, format := range []string{"text", "json"} {
		out, errb, code := runCLI(t, nil, "inspect", "-p", "21018", "--ps-tree-env", "--format", format, d)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", format, code, errb)
		}
		checkGolden(t, filepath.Join("testdata", "inspect-unix-sockets-21018."+format+".golden"), out, *updateInspect, "update-inspect")
	}
}

func TestInspectUsage(t *testing.T) {
	const d = "../testdata/dumps/pipes-fifo"
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"inspect", "-p", "4", d}, exitUsage, "no task 4 (tasks: [20759 20762])"},
		{[]string{"inspect", "-p", "x", d}, exitUsage, "invalid value"},
		{[]string{"inspect", "-p", "4294967296", d}, exitUsage, "bad pid"},
		{[]string{"inspect", d, d}, exitUsage, "usage: critq inspect"},
		{[]string{"inspect", "--format", "table", d}, exitUsage, "supported: text, tree, json"},
	} {
		_, errb, code := runCLI(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(errb, tc.stderr) {
			t.Errorf("%v: exit %d, %q; want %d, %q", tc.args, code, errb, tc.code, tc.stderr)
		}
	}
}
