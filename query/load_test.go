package query

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"

	"github.com/critq/critq/internal/testcorpus"
)

// TestQueryOpenSpools checks that Query.Open reads a compressed archive in
// one pass: a query that reads memory gets the pages images spooled by
// the pass that opens it (so none follows), one that does not gets none.
func TestQueryOpenSpools(t *testing.T) {
	dir := "../testdata/dumps/sleep-plain"
	archive := writeArchive(t, dir, nil)
	for _, c := range []struct {
		src   string
		spool bool
	}{
		{"cmdline(19635)", true},
		{"tasks.map(t, t.cmdline)", true},
		{"tasks.size()", false},
	} {
		tmp := t.TempDir()
		t.Setenv("TMPDIR", tmp)
		q := mustCompile(t, c.src)
		d, err := q.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		spooled, _ := filepath.Glob(filepath.Join(tmp, "critq-archive-*", "pages-1.img"))
		if (len(spooled) == 1) != c.spool {
			t.Errorf("%s: pages spooled when opened: %v, wanted %v", c.src, spooled, c.spool)
		}
		got, want := mustEval(t, q, d), mustEval(t, q, mustOpen(t, dir))
		if got.Equal(want) != types.True {
			t.Errorf("%s: %v from the archive, %v from the folder", c.src, got, want)
		}
		if err := d.Images().Close(); err != nil {
			t.Fatal(err)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("%s: %d files left in the temporary folder after Close", c.src, len(left))
		}
	}
}

// TestOpenNotADump checks the error of a file that is neither a dump
// folder nor a checkpoint archive.
func TestOpenNotADump(t *testing.T) {
	p := filepath.Join(t.TempDir(), "garbage.tar.gz")
	if err := os.WriteFile(p, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(p)
	if want := p + ": not a CRIU dump or checkpoint archive (tar, tar.gz, tar.zst)"; err == nil || err.Error() != want {
		t.Errorf("Open: %v, wanted %s", err, want)
	}
}

// TestTrackReplaysCachedWarnings: a tracked evaluation learns of every
// missing image its result needed, also when the value that needed it
// (a view, a part of the model, a task's core) was built by an earlier
// evaluation; one that needs none learns of none.
func TestTrackReplaysCachedWarnings(t *testing.T) {
	for _, c := range []struct {
		remove string
		srcs   []string // evaluated in turn on one Dump, each warned about
	}{
		{"pagemap-19635.img", []string{"tasks.map(t, t.cmdline)", "tasks.map(t, t.cmdline.size())", "tasks.map(t, t.cmdline.size() == 0)", "cmdline(19635).size() > 0 || true"}},
		{"fdinfo-2.img", []string{"fds.size()", "tasks.map(t, t.fds.size())", "fds.map(f, f.fd)"}},
		{"core-19635.img", []string{"tasks.map(t, has(t.state))", "threads.size()", "tasks.map(t, t.comm)", "tasks.map(t, has(t.creds))"}},
		{"files.img", []string{"fds.map(f, f.path)", "fds.map(f, has(f.path))", "tasks.map(t, t.exe)"}},
	} {
		dir := t.TempDir()
		testcorpus.CopyFiles(t, "../testdata/dumps/sleep-plain", dir)
		if err := os.Remove(filepath.Join(dir, c.remove)); err != nil {
			t.Fatal(err)
		}
		d := mustOpen(t, dir)
		for _, src := range append(c.srcs, "1 + 1") {
			tr := d.Track()
			_, err := mustCompile(t, src).Eval(context.Background(), d)
			ws := tr.Stop()
			if err != nil {
				t.Errorf("without %s: %s: %v", c.remove, src, err)
			}
			if src == "1 + 1" {
				if len(ws) != 0 {
					t.Errorf("without %s: %s: warnings %q", c.remove, src, ws)
				}
				continue
			}
			if len(ws) != 1 || !strings.HasPrefix(ws[0], c.remove+" is missing") {
				t.Errorf("without %s: %s: warnings %q, wanted one naming it", c.remove, src, ws)
			}
		}
	}
}
