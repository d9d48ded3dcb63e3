package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportCommand: export writes every view of every dump, says so per
// dump, skips what it wrote before, and goes on past a bad dump with the
// first failure's exit code.
func TestExportCommand(t *testing.T) {
	out := t.TempDir()
	dirs, _ := filepath.Glob("../testdata/dumps/*")
	stdout, stderr, code := runCLI(t, nil, append([]string{"export", "-o", out, "-j", "2"}, dirs...)...)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if n := strings.Count(stdout, "\twritten\t"); n != len(dirs) {
		t.Errorf("%d dumps written, want %d:\n%s", n, len(dirs), stdout)
	}
	views, _ := filepath.Glob(filepath.Join(out, "view=*"))
	if len(views) != 9 {
		t.Errorf("views %v", views)
	}
	stdout, _, code = runCLI(t, nil, append([]string{"export", "-o", out}, dirs...)...)
	if code != exitOK || strings.Count(stdout, "\tunchanged\t") != len(dirs) {
		t.Errorf("second run: exit %d\n%s", code, stdout)
	}

	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "pstree.img"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	out2 := t.TempDir()
	stdout, stderr, code = runCLI(t, nil, "export", "-o", out2, dirs[0], bad, dirs[1])
	if code != exitBadImage {
		t.Errorf("bad dump: exit %d, want %d", code, exitBadImage)
	}
	if !strings.Contains(stderr, bad) || !strings.Contains(stderr, "2 written, 0 unchanged, 1 failed") {
		t.Errorf("stderr %q", stderr)
	}
	if strings.Count(stdout, "\twritten\t") != 2 {
		t.Errorf("the good dumps were not exported:\n%s", stdout)
	}

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"export", dirs[0]}, "usage: critq export"},
		{[]string{"export", "-o", out, "--format", "csv", dirs[0]}, `unknown format "csv" (supported: parquet, ndjson`},
		{[]string{"export", "-o", out, "--views", "tasks,bogus", dirs[0]}, `unknown view "bogus"`},
	} {
		_, stderr, code := runCLI(t, nil, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.err) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, stderr)
		}
	}
}
