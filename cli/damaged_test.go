package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/internal/testcorpus"
)

// Tests of issue 9's damaged and partial dumps, each named after its item.
// They run on copies of testdata's sleep-plain (one task, 19635: sleep 1000,
// files.img, fdinfo-2.img, pages-1.img) with one image removed or replaced.

// removeImage returns a copy of sleep-plain without the named images.
func removeImage(t *testing.T, names ...string) string {
	return brokenDump(t, func(dir string) {
		for _, n := range names {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// outcome is what a run must give: the exit code, and text that stdout and
// stderr must hold (each "" for no check); noStdout asks for empty stdout.
type outcome struct {
	args     []string
	code     int
	stderr   []string
	stdout   string
	noStdout bool
}

func checkRuns(t *testing.T, cases []outcome) {
	t.Helper()
	for _, c := range cases {
		out, stderr, code := runViews(c.args...)
		if code != c.code {
			t.Errorf("critq %q: exit %d, wanted %d; stderr:\n%s", c.args, code, c.code, stderr)
		}
		for _, s := range c.stderr {
			if !strings.Contains(stderr, s) {
				t.Errorf("critq %q: stderr does not say %q:\n%s", c.args, s, stderr)
			}
		}
		if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
			t.Errorf("critq %q: panicked:\n%s", c.args, stderr)
		}
		if c.stdout != "" && !strings.Contains(out, c.stdout) {
			t.Errorf("critq %q: stdout does not hold %q:\n%s", c.args, c.stdout, out)
		}
		if c.noStdout && out != "" {
			t.Errorf("critq %q: printed %q", c.args, out)
		}
	}
}

// countLines returns how many lines of s hold sub.
func countLines(s, sub string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// TestKindMismatchIsBadImage: an image whose magic is another kind's than
// its file name says is a bad image (exit 4) naming the file, the expected
// and the found kind, in every command that reads it; never a panic.
func TestKindMismatchIsBadImage(t *testing.T) {
	swap := func(name, with string) string {
		return brokenDump(t, func(dir string) {
			b, err := os.ReadFile(filepath.Join(dir, with))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
	core := swap("core-19635.img", "fs-19635.img")
	mm := swap("mm-19635.img", "fs-19635.img")
	files := swap("files.img", "fdinfo-2.img")
	fdinfo := swap("fdinfo-2.img", "files.img")
	ids := swap("ids-19635.img", "fs-19635.img")
	stats := swap("stats-dump", "fs-19635.img")
	want := func(file, found, expected string) []string {
		return []string{file + ": magic of a " + found + " image where " + expected + " was expected"}
	}
	coreErr, mmErr := want("core-19635.img", "FS", "CORE"), want("mm-19635.img", "FS", "MM")
	filesErr, fdinfoErr := want("files.img", "FDINFO", "FILES"), want("fdinfo-2.img", "FILES", "FDINFO")
	idsErr := want("ids-19635.img", "FS", "IDS")
	var cases []outcome
	for _, c := range []struct {
		dir string
		err []string
	}{{core, coreErr}, {mm, mmErr}, {files, filesErr}, {fdinfo, fdinfoErr}, {ids, idsErr}} {
		for _, args := range [][]string{{"ps"}, {"fds"}, {"maps"}, {"sockets"}, {"inspect"}, {"mem"}, {"mem", "search"}} {
			a := append(append([]string(nil), args...), c.dir)
			if args[0] == "mem" && len(args) == 2 {
				a = append(a, "sleep")
			}
			code := exitBadImage
			switch {
			case (args[0] == "ps" || args[0] == "inspect") && c.dir == mm:
				// The command line is read from memory: a warning,
				// [comm] shown (TestViewsBrokenImages).
				code = exitOK
			case (args[0] == "ps" && (c.dir == files || c.dir == fdinfo || c.dir == ids)) ||
				(args[0] == "maps" && (c.dir == fdinfo || c.dir == ids)) ||
				((args[0] == "fds" || args[0] == "sockets") && c.dir == mm) ||
				(args[0] == "mem" && c.dir != core && c.dir != mm):
				continue // this command does not read the image
			}
			cases = append(cases, outcome{args: a, code: code, stderr: c.err})
		}
	}
	cases = append(cases,
		outcome{args: []string{"tasks.map(t, t.state)", core}, code: exitBadImage, stderr: coreErr},
		outcome{args: []string{"vmas.size()", mm}, code: exitBadImage, stderr: mmErr},
		outcome{args: []string{"fds.size()", fdinfo}, code: exitBadImage, stderr: fdinfoErr},
		outcome{args: []string{"inspect", stats}, code: exitBadImage, stderr: want("stats-dump", "FS", "STATS")},
	)
	checkRuns(t, cases)
}

// TestStatsDumpWithoutEntries: a stats-dump with its magic and no entry
// is no nil dereference: inspect prints no statistics.
func TestStatsDumpWithoutEntries(t *testing.T) {
	dir := brokenDump(t, func(dir string) {
		b, err := os.ReadFile(filepath.Join(dir, "stats-dump"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stats-dump"), b[:8], 0o644); err != nil { // the two magics
			t.Fatal(err)
		}
	})
	out, stderr, code := runViews("inspect", dir)
	if code != exitOK || strings.Contains(out, "Statistics") {
		t.Errorf("inspect: exit %d, stderr %q, output:\n%s", code, stderr, out)
	}
}

// TestMissingPagemapIsNamed: without pagemap-PID.img the command line is
// not a list of empty strings: the query exits 4 naming the image (0 with
// --partial, the warning kept), ps warns and exits 4, mem and mem search
// fail naming it.
func TestMissingPagemapIsNamed(t *testing.T) {
	dir := removeImage(t, "pagemap-19635.img")
	const name = "pagemap-19635.img is missing"
	checkRuns(t, []outcome{
		{args: []string{"tasks.map(t, t.cmdline)", dir}, code: exitBadImage, stderr: []string{"critq: warning: " + dir + ": " + name, "--partial"}},
		{args: []string{"--partial", "tasks.map(t, t.cmdline)", dir}, code: exitOK, stderr: []string{name}},
		{args: []string{"ps", dir}, code: exitBadImage, stderr: []string{name}, stdout: "[sleep]"},
		{args: []string{"mem", dir}, code: exitBadImage, stderr: []string{name}},
		{args: []string{"mem", dir, "19635"}, code: exitBadImage, stderr: []string{name}},
		{args: []string{"mem", "search", dir, "HOME=/root"}, code: exitBadImage, stderr: []string{name}},
	})
	_, stderr, _ := runViews("ps", dir)
	if n := countLines(stderr, "pagemap-19635.img"); n != 1 {
		t.Errorf("ps: %d lines name the missing image, wanted 1:\n%s", n, stderr)
	}
}

// TestMissingMMIsNamed: without mm-PID.img the task is not shown as a
// zombie's [comm] silently.
func TestMissingMMIsNamed(t *testing.T) {
	dir := removeImage(t, "mm-19635.img")
	const name = "mm-19635.img is missing"
	checkRuns(t, []outcome{
		{args: []string{"ps", dir}, code: exitBadImage, stderr: []string{name}},
		{args: []string{"maps", dir}, code: exitBadImage, stderr: []string{name}},
		{args: []string{"tasks.map(t, t.mm)", dir}, code: exitBadImage, stderr: []string{name}},
		{args: []string{"vmas.size()", dir}, code: exitBadImage, stderr: []string{name}},
		{args: []string{"mem", dir, "19635"}, code: exitBadImage, stderr: []string{name}},
	})
}

// TestMissingCoreIsNamed: without core-PID.img the state is not a silent
// 0: unset in the view (has() is false), "?" in ps, and a warning naming
// the image (exit 4).
func TestMissingCoreIsNamed(t *testing.T) {
	dir := removeImage(t, "core-19635.img")
	const name = "core-19635.img is missing"
	checkRuns(t, []outcome{
		{args: []string{"tasks.map(t, has(t.state))", dir}, code: exitBadImage, stderr: []string{name}, stdout: "[false]"},
		{args: []string{"ps", dir}, code: exitBadImage, stderr: []string{name}, stdout: " ?  "},
	})
}

// TestMissingFilesIsNamed: without files.img an fd is not "file 0".
func TestMissingFilesIsNamed(t *testing.T) {
	dir := removeImage(t, "files.img")
	const name = "files.img is missing"
	checkRuns(t, []outcome{
		{args: []string{"fds", dir}, code: exitBadImage, stderr: []string{name}, stdout: "-> file 1"},
		{args: []string{"fds.map(f, f.path)", dir}, code: exitBadImage, stderr: []string{name}},
		{args: []string{"tasks.map(t, t.exe)", dir}, code: exitBadImage, stderr: []string{name}},
	})
	out, _, _ := runViews("fds", dir)
	if strings.Contains(out, "file 0") {
		t.Errorf("fds names file 0:\n%s", out)
	}
}

// TestMissingFdinfoIsNamed: without fdinfo-N.img the task does not have
// no fds silently.
func TestMissingFdinfoIsNamed(t *testing.T) {
	dir := removeImage(t, "fdinfo-2.img")
	const name = "fdinfo-2.img is missing"
	checkRuns(t, []outcome{
		{args: []string{"fds", dir}, code: exitBadImage, stderr: []string{name}},
		{args: []string{"sockets", dir}, code: exitBadImage, stderr: []string{name}},
		{args: []string{"fds.size()", dir}, code: exitBadImage, stderr: []string{name}},
		{args: []string{"tasks.map(t, t.fds.size())", dir}, code: exitBadImage, stderr: []string{name}},
	})
}

// TestMissingPstreeIsNamed: without pstree.img "tasks" is no empty list.
func TestMissingPstreeIsNamed(t *testing.T) {
	dir := removeImage(t, "pstree.img")
	checkRuns(t, []outcome{
		{args: []string{"tasks", dir}, code: exitBadImage, stderr: []string{"pstree.img is missing"}, noStdout: true},
		{args: []string{"fds", dir}, code: exitBadImage, stderr: []string{"no pstree.img"}, noStdout: true},
	})
}

// TestMissingPagesIsNamed: a missing or truncated pages-N.img makes
// t.cmdline a partial result (exit 4), as ps warns.
func TestMissingPagesIsNamed(t *testing.T) {
	missing := removeImage(t, "pages-1.img")
	short := brokenDump(t, func(dir string) { truncateFile(t, filepath.Join(dir, "pages-1.img"), 4096) })
	checkRuns(t, []outcome{
		{args: []string{"tasks.map(t, t.cmdline)", missing}, code: exitBadImage, stderr: []string{"pages-1.img is missing"}},
		{args: []string{"tasks.map(t, t.cmdline)", short}, code: exitBadImage, stderr: []string{"critq: warning: " + short + ": pid 19635: 0x", "pages-1.img"}},
		{args: []string{"--partial", "tasks.map(t, t.cmdline)", short}, code: exitOK, stderr: []string{"pages-1.img"}},
	})
}

// TestMemRangeWrapsIsError: a range past 2^64 is an error, not nothing.
func TestMemRangeWrapsIsError(t *testing.T) {
	checkRuns(t, []outcome{{args: []string{"mem", sleepPlain, "19635", "0xffffffffffffffff", "16"}, code: exitUsage,
		stderr: []string{"wraps past the end of the address space"}, noStdout: true}})
}

// TestMemZombieHasNoMemory: the memory of a zombie is an error that says so.
func TestMemZombieHasNoMemory(t *testing.T) {
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	dir := filepath.Join(root, "zdtm-zombie00")
	checkRuns(t, []outcome{{args: []string{"mem", dir, "72"}, code: exitError, stderr: []string{"pid 72 is a zombie: a zombie has no memory"}, noStdout: true}})
}

// TestMemPreDump: a pre-dump (pagemap and pages, no pstree) is read: its
// memory table, a read, and a search find the marker its MANIFEST names
// (CRITQ-MARKER-dirtier in pid 139, once in each pages-1.img).
func TestMemPreDump(t *testing.T) {
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	for _, pre := range []string{"pre1", "pre2"} {
		dir := filepath.Join(root, "predump-chain-splice", pre)
		out, stderr, code := runViews("mem", "search", dir, "CRITQ-MARKER-dirtier")
		if code != exitOK || countLines(out, "CRITQ-MARKER-dirtier") != 1 || !strings.HasPrefix(out, "139 ") {
			t.Errorf("mem search %s: exit %d, stderr %q:\n%s", pre, code, stderr, out)
		}
		checkRuns(t, []outcome{
			{args: []string{"mem", dir}, code: exitOK, stdout: "139 "},
			{args: []string{"mem", dir, "139", "0x401000", "16"}, code: exitOK, stdout: "00401000: "},
			{args: []string{"mem", dir, "140"}, code: exitUsage, stderr: []string{"pre-dump pagemaps of pids [139]"}},
		})
	}
}

// TestPsChainFolderNamesDumps: ps on the folder above a pre-dump chain (or
// two dumps) names the dumps inside.
func TestPsChainFolderNamesDumps(t *testing.T) {
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	checkRuns(t, []outcome{
		{args: []string{"ps", filepath.Join(root, "predump-chain-splice")}, code: exitBadImage, stderr: []string{"it holds the dumps dump, pre1, pre2: name one"}},
		{args: []string{"ps", filepath.Join(root, "evolve-pair")}, code: exitBadImage, stderr: []string{"it holds the dumps dump, dump1: name one"}},
	})
}

// TestUnixNameWithoutNUL: a unix socket bound with the trailing NUL in its
// address length is shown without it, in the view and by critq sockets.
func TestUnixNameWithoutNUL(t *testing.T) {
	dir := filepath.Join(testcorpus.Testdata(t), "unix-sockets")
	out, _, code := runViews("sockets", dir)
	if code != exitOK || strings.ContainsRune(out, 0) || !strings.Contains(out, "srv.sock ") {
		t.Errorf("sockets: exit %d:\n%q", code, out)
	}
	out, _, code = runViews("--format", "json", `sockets.filter(s, s.local_addr.endsWith("srv.sock")).size()`, dir)
	if code != exitOK || strings.TrimSpace(out) == "0" || strings.Contains(out, `\u0000`) {
		t.Errorf("sockets view: exit %d: %s", code, out)
	}
}

// runStdin runs critq in process with stdin.
func runStdin(stdin string, args ...string) (string, string, int) {
	var out, errb strings.Builder
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// TestBatchPartialResult: in critq batch, a query whose result needed a
// missing image warns on stderr (one line per image, naming the dump and
// the query, also for a second query that reuses the first one's partial
// view or binding) and its dump counts as failed (exit 4) unless
// --partial; the records are printed, and a whole dump beside it is not
// warned about.
func TestBatchPartialResult(t *testing.T) {
	dir := removeImage(t, "pagemap-19635.img")
	script := filepath.Join(t.TempDir(), "s.critq")
	src := "let c = tasks.map(t, t.cmdline)\n" +
		"args: tasks.map(t, t.cmdline)\n" +
		"again: tasks.map(t, t.cmdline.size())\n" +
		"bound: c.size()\n" +
		"count: tasks.size()\n"
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	const missing = "pagemap-19635.img is missing"
	for _, args := range [][]string{{"batch", script}, {"-f", script}} {
		out, stderr, code := runViews(append(args, dir, sleepPlain)...)
		if code != exitBadImage {
			t.Errorf("critq %q: exit %d, wanted 4; stderr:\n%s", args, code, stderr)
		}
		for _, q := range []string{"args", "again", "bound"} {
			if w := "critq: warning: " + dir + ": query " + q + ": " + missing; countLines(stderr, w) != 1 {
				t.Errorf("critq %q: stderr does not say %q once:\n%s", args, w, stderr)
			}
		}
		if n := countLines(stderr, missing); n != 3 {
			t.Errorf("critq %q: %d warnings, wanted 3 (args, again, bound):\n%s", args, n, stderr)
		}
		if !strings.Contains(stderr, "critq: "+dir+": partial results (queries args, again, bound)") || !strings.Contains(stderr, "--partial") {
			t.Errorf("critq %q: no failure line naming the queries:\n%s", args, stderr)
		}
		if strings.Contains(stderr, sleepPlain) {
			t.Errorf("critq %q: the whole dump is warned about:\n%s", args, stderr)
		}
		if !strings.Contains(out, `{"dump":"`+dir+`","query":"count","value":1}`) || !strings.Contains(out, `"value":[["sleep","1000"]]`) {
			t.Errorf("critq %q: records missing:\n%s", args, out)
		}
		withPartial := []string{"--partial", "-f", script, dir}
		if args[0] == "batch" {
			withPartial = []string{"batch", "--partial", script, dir}
		}
		out, stderr, code = runViews(withPartial...)
		if code != exitOK || countLines(stderr, missing) != 3 || strings.Contains(stderr, "partial results") || !strings.Contains(out, `"query":"args"`) {
			t.Errorf("critq %q --partial: exit %d, stderr:\n%s\nstdout:\n%s", args, code, stderr, out)
		}
	}
}

// TestReplPartialResult: a REPL line whose result needed a missing image
// warns (one line per image), also when the view or binding it uses was
// built by an earlier line, and is a failure (exit 4) unless --partial; a
// line that needs no missing image does not warn.
func TestReplPartialResult(t *testing.T) {
	dir := removeImage(t, "pagemap-19635.img")
	const missing = "pagemap-19635.img is missing"
	lines := "tasks.map(t, t.cmdline)\n1 + 1\ntasks.map(t, t.cmdline.size())\n:let c = tasks.map(t, t.cmdline)\nc.size()\nc.size()\ntasks.map(t, t.comm)\n"
	out, stderr, code := runStdin(lines, "repl", dir)
	if code != exitBadImage {
		t.Errorf("repl: exit %d, wanted 4; stderr:\n%s", code, stderr)
	}
	if n := countLines(stderr, "critq: warning: "+dir+": "+missing); n != 4 {
		t.Errorf("repl: %d warnings, wanted 4 (two lines on t.cmdline, two on c):\n%s", n, stderr)
	}
	if n := countLines(stderr, "the result is partial: an image missing or damaged (--partial accepts it)"); n != 4 {
		t.Errorf("repl: %d failures, wanted 4:\n%s", n, stderr)
	}
	if want := "[[]]\n2\n[0]\n1\n1\n[\"sleep\"]\n"; out != want {
		t.Errorf("repl: stdout %q, wanted %q", out, want)
	}
	out, stderr, code = runStdin(lines, "repl", "--partial", dir)
	if code != exitOK || countLines(stderr, missing) != 4 || strings.Contains(stderr, "--partial") || out == "" {
		t.Errorf("repl --partial: exit %d, stdout %q, stderr:\n%s", code, out, stderr)
	}
	// A whole dump: no warning.
	_, stderr, code = runStdin(lines, "repl", sleepPlain)
	if code != exitOK || stderr != "" {
		t.Errorf("repl on a whole dump: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestSymlinkedImageIsMissing: an image file that is a symbolic link is
// not followed (here to the dump's own core, and to /dev/zero): it is
// warned about by name, once, and counts as missing, so a value that needs
// it is partial (exit 4) and one that does not is whole (exit 0).
func TestSymlinkedImageIsMissing(t *testing.T) {
	link := func(name, target string) string {
		return brokenDump(t, func(dir string) {
			if target == "" {
				abs, err := filepath.Abs(filepath.Join(sleepPlain, name))
				if err != nil {
					t.Fatal(err)
				}
				target = abs
			}
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		})
	}
	core, pages, pstree := link("core-19635.img", ""), link("pages-1.img", "/dev/zero"), link("pstree.img", "")
	const coreLink, pagesLink = "core-19635.img: a symbolic link, not read", "pages-1.img: a symbolic link, not read"
	checkRuns(t, []outcome{
		{args: []string{"tasks.size()", core}, code: exitOK, stderr: []string{"critq: warning: " + core + ": " + coreLink + "\n"}, stdout: "1"},
		{args: []string{"tasks.map(t, has(t.state))", core}, code: exitBadImage, stderr: []string{coreLink + " (needed for the state", "--partial"}, stdout: "[false]"},
		{args: []string{"--partial", "tasks.map(t, has(t.state))", core}, code: exitOK, stderr: []string{coreLink}},
		{args: []string{"ps", core}, code: exitBadImage, stderr: []string{coreLink}},
		{args: []string{"tasks.map(t, t.cmdline)", pages}, code: exitBadImage, stderr: []string{pagesLink}},
		{args: []string{"mem", "search", pages, "HOME=/root"}, code: exitBadImage, stderr: []string{pagesLink}},
		{args: []string{"tasks", pstree}, code: exitBadImage, stderr: []string{"pstree.img: a symbolic link, not read"}, noStdout: true},
		// diff: without core-19635.img the comm and state of b look
		// changed; that is a missing value, not a change.
		{args: []string{"diff", sleepPlain, core}, code: exitBadImage, stderr: []string{coreLink + " (needed for the state", "--partial"}},
		{args: []string{"diff", "--partial", sleepPlain, core}, code: exitFalse, stderr: []string{coreLink}},
		{args: []string{"check", core}, code: exitFalse, stdout: coreLink},
	})
	for _, args := range [][]string{{"tasks.map(t, has(t.state))", core}, {"ps", core}} {
		if _, stderr, _ := runViews(args...); countLines(stderr, "core-19635.img") != 1 {
			t.Errorf("critq %q: not one line on the link:\n%s", args, stderr)
		}
	}
	for script, code := range map[string]int{"n: tasks.size()\n": exitOK, "n: tasks.map(t, t.comm)\n": exitBadImage} {
		_, stderr, got := runStdin(script, "batch", "-", core)
		if got != code || countLines(stderr, coreLink) != 1 {
			t.Errorf("batch <<< %q: exit %d, wanted %d; stderr:\n%s", script, got, code, stderr)
		}
	}
	_, stderr, code := runStdin("tasks.size()\n", "repl", core)
	if code != exitOK || countLines(stderr, coreLink) != 1 {
		t.Errorf("repl: exit %d, stderr:\n%s", code, stderr)
	}
}
