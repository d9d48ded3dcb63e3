package elfcore_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/elfcore"
	"github.com/critq/critq/internal/testcorpus"
)

// copyFile copies src to dst, making dst's folder.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// caseRoot builds the case program src with the corpus's gcc flags and
// returns a root folder that holds it at its path on the dumping host
// (/srv/critq-cases/bin/NAME) and this host's libc and ld.so (the writer
// checks their build-ids against the images and leaves them out when they
// differ).
func caseRoot(t *testing.T, name string, flags ...string) (root, exe string) {
	t.Helper()
	for _, tool := range []string{"gcc", "gdb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	corpus := testcorpus.Root(t)
	if corpus == "" {
		t.Skip("no corpus")
	}
	work := t.TempDir()
	exe = filepath.Join(work, name)
	src := filepath.Join(work, name+".c")
	copyFile(t, filepath.Join(corpus, "_cases", name+".c"), src)
	// The corpus built the cases in /srv/critq-cases: the same
	// compilation directory in the debug info gives the same build-id.
	flags = append(flags, "-fdebug-prefix-map="+work+"=/srv/critq-cases")
	cmd := exec.Command("gcc", append(flags, "-o", name, name+".c")...)
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("gcc: %v\n%s", err, out)
	}
	root = filepath.Join(work, "root")
	copyFile(t, exe, filepath.Join(root, "srv/critq-cases/bin", name))
	for _, lib := range []string{"libc.so.6", "ld-linux-x86-64.so.2"} {
		p := filepath.Join("/usr/lib/x86_64-linux-gnu", lib)
		if _, err := os.Stat(p); err == nil {
			copyFile(t, p, filepath.Join(root, p))
		}
	}
	return root, exe
}

// coreFile writes the core of pid with root into a temporary folder.
func coreFile(t *testing.T, dir string, pid uint32, root string) (string, *elfcore.Plan) {
	t.Helper()
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, p := writeCore(t, d, pid, elfcore.Options{Root: root})
	name := filepath.Join(t.TempDir(), "core")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return name, p
}

// requireExe fails when the core left out pages of the rebuilt program:
// its build-id or size differs from the dumped one.
func requireExe(t *testing.T, p *elfcore.Plan, name string) {
	t.Helper()
	for _, m := range p.Missing {
		if strings.HasSuffix(m.File, "/"+name) {
			t.Fatalf("the rebuilt %s is not the dumped one: %s", name, m.Why)
		}
		if strings.Contains(m.File, "/lib") {
			t.Skipf("this host's %s is not the dumping host's: %s", m.File, m.Why)
		}
	}
}

// TestGDBBacktraceThreads: gdb with the rebuilt executable gives every
// thread of the threads case a backtrace: main for the main thread, the
// thread's start function for the others.
func TestGDBBacktraceThreads(t *testing.T) {
	root, exe := caseRoot(t, "threads", "-O1", "-pthread")
	core, p := coreFile(t, filepath.Join(testcorpus.Root(t), "threads"), 20631, root)
	requireExe(t, p, "threads")
	out := runGDB(t, filepath.Dir(core), "-ex", "thread apply all bt", exe, "-c", core)
	threads := strings.Split(out, "\nThread ")[1:]
	if len(threads) != 6 {
		t.Fatalf("%d threads in gdb's output, want 6:\n%s", len(threads), out)
	}
	start := regexp.MustCompile(`in (main|t_condwait|t_sleeper|t_spinner|t_idle) \(`)
	sawMain := false
	for _, th := range threads {
		m := start.FindStringSubmatch(th)
		if m == nil {
			t.Errorf("a thread's backtrace does not reach its start function:\n%s", th)
			continue
		}
		if m[1] == "main" {
			sawMain = true
		} else if !strings.Contains(th, "start_thread") {
			t.Errorf("thread backtrace without start_thread:\n%s", th)
		}
	}
	if !sawMain {
		t.Errorf("no backtrace reaches main:\n%s", out)
	}
}

// TestGDBEvolve: the evolve case is built with -g: its backtrace reaches
// main with source lines; a marker of the MANIFEST read with x/s at its
// recorded address equals the marker.
func TestGDBEvolve(t *testing.T) {
	root, exe := caseRoot(t, "evolve", "-O1", "-g")
	dir := filepath.Join(testcorpus.Root(t), "evolve-pair", "dump")
	core, p := coreFile(t, dir, 6812, root)
	requireExe(t, p, "evolve")
	man, err := os.ReadFile(filepath.Join(dir, "..", "MANIFEST.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`pid 6812: (CRITQ-MARKER-[\w-]+) appears @ (0x[0-9a-f]+)`).FindSubmatch(man)
	if m == nil {
		t.Fatal("no marker address for pid 6812 in the MANIFEST")
	}
	out := runGDB(t, filepath.Dir(core), "-ex", "bt", "-ex", "x/s "+string(m[2]), exe, "-c", core)
	if !regexp.MustCompile(`main \(argc=[^)]*\) at evolve\.c:\d+`).MatchString(out) {
		t.Errorf("the backtrace does not reach main with its source line:\n%s", out)
	}
	if !strings.Contains(out, string(m[2])+`:	"`+string(m[1])+`"`) {
		t.Errorf("x/s %s does not show %s:\n%s", m[2], m[1], out)
	}
}
