package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyDump copies the image files of a dump folder into a new folder.
func copyDump(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	copyDumpFiles(t, src, dst)
	return dst
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestCoreCommand(t *testing.T) {
	const d = "../testdata/dumps/sleep-plain"
	out := filepath.Join(t.TempDir(), "cores")
	_, stderr, code := runCLI(t, nil, "core", "-o", out, d)
	if code != exitOK || !strings.Contains(stderr, "core.19635: ") || !strings.Contains(stderr, "bytes left out") {
		t.Fatalf("core: exit %d, stderr %q", code, stderr)
	}
	if names := dirNames(t, out); len(names) != 1 || names[0] != "core.19635" {
		t.Fatalf("output folder holds %v", names)
	}
	file, err := os.ReadFile(filepath.Join(out, "core.19635"))
	if err != nil || !bytes.HasPrefix(file, []byte("\x7fELF")) {
		t.Fatalf("core.19635: %v", err)
	}

	stdout, _, code := runCLI(t, nil, "core", "-o", "-", d, "19635")
	if code != exitOK || stdout != string(file) {
		t.Errorf("-o -: exit %d, %d bytes, the file has %d", code, len(stdout), len(file))
	}
	stdout, _, code = runCLI(t, nil, "core", "--check", d)
	if code != exitOK || !strings.Contains(stdout, "19635  sleep") || !strings.Contains(stdout, "/usr/lib/x86_64-linux-gnu/libc.so.6") {
		t.Errorf("--check: exit %d\n%s", code, stdout)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"not empty", []string{"core", "-o", out, d}, exitUsage},
		{"stdout needs one pid", []string{"core", "-o", "-", d}, exitUsage},
		{"no -o", []string{"core", d}, exitUsage},
		{"unknown pid", []string{"core", "-o", filepath.Join(t.TempDir(), "x"), d, "4242"}, exitUsage},
		{"root not a folder", []string{"core", "--root", "/nonexistent/critq", "-o", filepath.Join(t.TempDir(), "x"), d}, exitUsage},
	} {
		if _, stderr, code := runCLI(t, nil, tc.args...); code != tc.code {
			t.Errorf("%s: exit %d, want %d (%s)", tc.name, code, tc.code, stderr)
		}
	}
}

// TestCoreCommandBrokenImages: a dump whose pages or mm image is cut
// short gives exit 4 and leaves no core, not even a temporary file.
func TestCoreCommandBrokenImages(t *testing.T) {
	for _, name := range []string{"pages-1.img", "mm-19635.img", "core-19635.img"} {
		dir := copyDump(t, "../testdata/dumps/sleep-plain")
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b[:len(b)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "cores")
		_, stderr, code := runCLI(t, nil, "core", "-o", out, dir)
		if code != exitBadImage || !strings.HasPrefix(stderr, "critq: ") {
			t.Errorf("%s cut short: exit %d, stderr %q", name, code, stderr)
		}
		if names := dirNames(t, out); len(names) != 0 {
			t.Errorf("%s cut short: the output folder holds %v", name, names)
		}
	}
}
