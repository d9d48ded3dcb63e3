// Package testcorpus finds the CRIU dumps critq's tests run on: the dumps
// copied into testdata/dumps, which every clone has, and the full corpus of
// ../shared/corpus beside the repository, when it is there. With
// CRITQ_REQUIRE_CORPUS set (as CI sets it), a missing corpus fails the test
// instead of narrowing it to testdata.
package testcorpus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot returns the directory of critq's go.mod above the working
// directory of the test.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module github.com/critq/critq\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testcorpus: critq's go.mod not found above the test")
		}
		dir = parent
	}
}

// Root returns the full corpus directory, or "" when it is absent (and
// CRITQ_REQUIRE_CORPUS is not set).
func Root(t testing.TB) string {
	t.Helper()
	root := filepath.Join(repoRoot(t), "..", "shared", "corpus")
	if _, err := os.Stat(root); err != nil {
		if os.Getenv("CRITQ_REQUIRE_CORPUS") != "" {
			t.Fatalf("CRITQ_REQUIRE_CORPUS is set but the corpus is missing: %v", err)
		}
		return ""
	}
	return root
}

// Testdata returns the directory of the dumps that ship in testdata.
func Testdata(t testing.TB) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "testdata", "dumps")
}

// Dumps returns the dump folders of the full corpus when it is present, or
// else those of testdata. A predump chain (a folder whose dumps are in
// pre1, pre2, dump) gives its last dump, "dump", whose parent links reach
// the others.
func Dumps(t testing.TB) []string {
	t.Helper()
	root := Root(t)
	if root == "" {
		root = Testdata(t)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), "_") {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "dump")); err == nil {
			dir = filepath.Join(dir, "dump")
		}
		out = append(out, dir)
	}
	return out
}

// HandMade reports whether a dump folder is one of the hand-made cases that
// saved their tasks' /proc views (proc/PID/...): not a zdtm test, not a
// predump chain.
func HandMade(dir string) bool {
	base := filepath.Base(dir)
	if base == "dump" {
		return false // the last dump of a predump chain
	}
	if strings.HasPrefix(base, "zdtm-") || strings.HasPrefix(base, "predump-") {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, "proc"))
	return err == nil
}

// CopyFiles copies the regular files of the dump folder src (its images,
// not golden/ or proc/) into dst, which is made if need be.
func CopyFiles(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
