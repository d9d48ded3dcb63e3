package fileout

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFileFailureLeavesNothing: a fill that fails leaves the target
// as it was and no temporary file; a success replaces it with the mode
// asked and leaves no temporary file either.
func TestWriteFileFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out")
	os.WriteFile(p, []byte("old"), 0o644)
	boom := errors.New("boom")
	if err := WriteFile(p, 0o600, func(w io.Writer) error { w.Write([]byte("half")); return boom }); !errors.Is(err, boom) {
		t.Fatalf("WriteFile: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("target holds %q after a failure", b)
	}
	if err := WriteFile(p, 0o600, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Errorf("target holds %q", b)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files left in the folder", len(ents))
	}
	if _, _, err := Target(dir); err == nil {
		t.Error("a folder as output was accepted")
	}
}

// TestWithin: a path is inside a folder by its real path, links followed,
// also where it does not exist yet.
func TestWithin(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "dump")
	os.Mkdir(in, 0o755)
	os.Symlink(in, filepath.Join(dir, "ln"))
	for p, want := range map[string]bool{
		in:                                     true,
		filepath.Join(in, "a", "b"):            true,
		filepath.Join(dir, "ln", "new"):        true,
		filepath.Join(in, "..", "dump2"):       false,
		filepath.Join(dir, "dumpx"):            false,
		filepath.Join(in, "..", "dump", "sub"): true,
	} {
		if got := Within(p, in); got != want {
			t.Errorf("Within(%s) = %v", p, got)
		}
	}
}
