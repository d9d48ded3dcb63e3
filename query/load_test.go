package query

import (
	"os"
	"path/filepath"
	"testing"

	"cel.dev/cel-go/common/types"
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
