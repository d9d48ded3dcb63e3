package rules

import (
	"context"
	"path/filepath"
	"testing"

	"cel.dev/cel-go/common/types/ref"

	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/query"
)

// The rules' tests compare with queries and read the same dumps as
// package query's tests.

// testdataDumps returns the dumps that ship in testdata.
func testdataDumps(t testing.TB) []string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(testcorpus.Testdata(t), "*"))
	if len(dirs) == 0 {
		t.Fatal("no dumps in testdata")
	}
	return dirs
}

// corpusIfPresent returns the corpus's dumps, in a subtest skipped when the
// corpus is absent (unless CRITQ_REQUIRE_CORPUS is set).
func corpusIfPresent(t *testing.T) []string {
	var out []string
	t.Run("corpus", func(t *testing.T) {
		if testcorpus.Root(t) == "" {
			t.Skip("../../shared/corpus is absent")
		}
		out = testcorpus.Dumps(t)
	})
	return out
}

func mustCompile(t testing.TB, src string) *query.Query {
	t.Helper()
	q, err := query.Compile(src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return q
}

func mustOpen(t testing.TB, dir string) *query.Dump {
	t.Helper()
	d, err := query.Open(dir)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	return d
}

func mustEval(t testing.TB, q *query.Query, d *query.Dump) ref.Val {
	t.Helper()
	v, err := q.Eval(context.Background(), d)
	if err != nil {
		t.Fatalf("%q.Eval(%s): %v", q, d.Name(), err)
	}
	return v
}
