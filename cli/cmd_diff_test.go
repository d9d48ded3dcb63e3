package cli

import (
	"compress/gzip"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testcorpus"
)

var updateDiff = flag.Bool("update-diff", false, "rewrite testdata/diff-evolve.*.golden")

// evolvePair returns the two dumps of the corpus's evolve-pair.
func evolvePair(t *testing.T) (root, a, b string) {
	t.Helper()
	root = testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	return root, filepath.Join(root, "evolve-pair", "dump1"), filepath.Join(root, "evolve-pair", "dump")
}

// TestDiffGolden checks the tree and json outputs of evolve-pair against
// golden files, which were checked by hand against its MANIFEST (every
// difference it lists; the diff package's TestEvolvePair checks the same
// records mechanically). -update-diff rewrites them.
func TestDiffGolden(t *testing.T) {
	root, a, b := evolvePair(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"tree", []string{"--format", "tree"}},
		{"pages-tree", []string{"--format", "tree", "--pages", "--bytes"}},
		{"json", []string{"--format", "json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, nil, append(append([]string{"diff"}, tc.args...), a, b)...)
			if code != exitFalse {
				t.Fatalf("exit %d, want 1 (the dumps differ); stderr %s", code, stderr)
			}
			got := strings.ReplaceAll(stdout, root, "CORPUS")
			checkGolden(t, filepath.Join("testdata", "diff-evolve."+tc.name+".golden"), got, *updateDiff, "update-diff")
		})
	}
}

// writeTarGz writes the images of dump folder dir as a tar.gz checkpoint
// archive.
func writeTarGz(t *testing.T, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if err := dump.WriteArchive(zw, os.DirFS(dir), nil); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDiffArchives: the pair as tar.gz archives, and one folder with one
// archive, give the output of the folders.
func TestDiffArchives(t *testing.T) {
	_, a, b := evolvePair(t)
	tmp := t.TempDir()
	ta, tb := filepath.Join(tmp, "dump1.tar.gz"), filepath.Join(tmp, "dump.tar.gz")
	writeTarGz(t, a, ta)
	writeTarGz(t, b, tb)
	want, stderr, code := runCLI(t, nil, "diff", "--format", "ndjson", "--pages", "--bytes", a, b)
	if code != exitFalse || want == "" {
		t.Fatalf("folders: exit %d, stderr %s", code, stderr)
	}
	for _, pair := range [][2]string{{ta, tb}, {a, tb}, {ta, b}} {
		got, stderr, code := runCLI(t, nil, "diff", "--format", "ndjson", "--pages", "--bytes", pair[0], pair[1])
		if code != exitFalse || got != want {
			t.Errorf("%s %s: exit %d, stderr %s, output differs from the folders':\n%s\nwant:\n%s", pair[0], pair[1], code, stderr, got, want)
		}
	}
}

// TestDiffTransformed diffs a dump against a copy that critq transform
// rewrote (the executable's path in files.img): exactly the changes of that
// path, the task's exe, each VMA that maps the file (as
// proc/PID/maps, saved before the dump, lists them) and the file object
// (keyed by its path).
func TestDiffTransformed(t *testing.T) {
	src := filepath.Join("..", "testdata", "dumps", "sleep-plain")
	const pid = "19635"
	out := filepath.Join(t.TempDir(), "out")
	if _, stderr, code := runCLI(t, nil, "transform", `files: e.type == REG && e.reg.name == "/usr/bin/sleep" ? e.with({"reg.name": "/opt/sleep"}) : e`, src, "-o", out); code != 0 {
		t.Fatalf("transform: exit %d: %s", code, stderr)
	}
	stdout, stderr, code := runCLI(t, nil, "diff", "--format", "ndjson", src, out)
	if code != exitFalse {
		t.Fatalf("exit %d, want 1: %s", code, stderr)
	}
	type rec struct{ Section, Key, Path, Op, Old, New string }
	want := map[rec]bool{
		{"processes", pid, "exe", "changed", "/usr/bin/sleep", "/opt/sleep"}:     true,
		{"files", "REG /usr/bin/sleep", "", "removed", "REG /usr/bin/sleep", ""}: true,
		{"files", "REG /opt/sleep", "", "added", "", "REG /opt/sleep"}:           true,
	}
	maps, err := os.ReadFile(filepath.Join(src, "proc", pid, "maps"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(maps), "\n") {
		if strings.HasSuffix(l, " /usr/bin/sleep") {
			start, _, _ := strings.Cut(l, "-")
			want[rec{"vmas", "0x" + strings.TrimLeft(start, "0"), "path", "changed", "/usr/bin/sleep", "/opt/sleep"}] = true
		}
	}
	got := map[rec]bool{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r rec
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if !want[r] {
			t.Errorf("not a change of the rewritten path: %s", l)
		}
		got[r] = true
	}
	for r := range want {
		if !got[r] {
			t.Errorf("missing %+v", r)
		}
	}
	if len(want) < 5 {
		t.Errorf("maps has too few mappings of the file: %v", want)
	}
	// The rewritten copy against itself, the original against itself.
	for _, d := range []string{src, out} {
		if stdout, stderr, code := runCLI(t, nil, "diff", "--format", "tree", d, d); code != 0 || stdout != "no differences\n" {
			t.Errorf("%s against itself: exit %d, %q %s", d, code, stdout, stderr)
		}
	}
}

func TestDiffCommand(t *testing.T) {
	_, a, b := evolvePair(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"prot-expr", []string{"diff", a, b, `changes.filter(c, c.section == "vmas" && c.path == "prot").map(c, [c.key, c.old, c.new])`}, 0,
			`"0x7e5700000000",
        "PROT_READ | PROT_WRITE",
        "PROT_READ"`, ""},
		{"new-sockets", []string{"diff", "--format", "json", a, b, `b.sockets.filter(s, !a.sockets.exists(o, o.ino == s.ino)).map(s, s.ino)`}, 0, `[317808,317809]`, ""},
		{"empty-expr", []string{"diff", a, b, `changes.filter(c, c.section == "mounts")`}, 1, "[]", ""},
		{"only-pid", []string{"diff", "--format", "table", "--only", "vmas", "--pid", "6816", a, b}, 0, "", ""},
		{"only-vmas", []string{"diff", "--format", "table", "--only", "vmas", a, b}, 1, "vmas     6812  0x7e5700000000  prot", ""},
		{"bad-section", []string{"diff", "--only", "vma", a, b}, 2, "", `unknown section "vma"`},
		{"bad-format", []string{"diff", "--format", "yaml", a, b}, 2, "", `unknown format "yaml" (supported: tree, json, ndjson, table`},
		{"compile", []string{"diff", a, b, "changes.nosuch"}, 3, "", ""},
		{"missing", []string{"diff", a, "/nonexistent/dump"}, 4, "", "nonexistent"},
		{"no-parent", []string{"diff", a}, 2, "", "no parent"},
		{"usage", []string{"diff"}, 2, "", "usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, nil, tc.args...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
		})
	}
}

// TestDiffParent diffs a step of a pre-dump chain against its parent.
func TestDiffParent(t *testing.T) {
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	chain := filepath.Join(root, "predump-chain-splice")
	one, stderr, code := runCLI(t, nil, "diff", "--format", "ndjson", filepath.Join(chain, "pre2"))
	if code != exitFalse || !strings.Contains(one, `"section":"memory"`) {
		t.Fatalf("pre2 against its parent: exit %d, %s %s", code, one, stderr)
	}
	two, _, _ := runCLI(t, nil, "diff", "--format", "ndjson", filepath.Join(chain, "pre1"), filepath.Join(chain, "pre2"))
	if one != two {
		t.Errorf("pre2 against its parent differs from pre1 pre2:\n%s\n%s", one, two)
	}
}

// TestReplDiff: critq repl --diff A B binds changes, a and b for every
// line, lets included, with B the current dump.
func TestReplDiff(t *testing.T) {
	_, a, b := evolvePair(t)
	var out, errb strings.Builder
	lines := strings.Join([]string{
		`changes.filter(c, c.section == "vmas" && c.path == "prot").map(c, c.key)`,
		`:let fresh = b.sockets.filter(s, !a.sockets.exists(o, o.ino == s.ino)).map(s, s.ino)`,
		`fresh`,
		`tasks.map(t, t.pid)`,
	}, "\n") + "\n"
	c := &cli{stdin: strings.NewReader(lines), stdout: &out, stderr: &errb, env: func(string) string { return "" }}
	if code := c.main([]string{"repl", "--diff", a, b}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "[\"0x7e5700000000\"]\n[317808,317809]\n[6812,6816,7138]\n"
	if out.String() != want {
		t.Errorf("got %q, want %q (stderr %s)", out.String(), want, errb.String())
	}
	if _, stderr, code := runCLI(t, nil, "repl", "--diff", a); code != exitUsage {
		t.Errorf("one dump: exit %d %s", code, stderr)
	}
}
