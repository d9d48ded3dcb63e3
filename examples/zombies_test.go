package examples

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/query"
)

// TestZombiesRecipe checks the zombies recipe against what the corpus
// MANIFESTs say the dumped trees held: proc-tree has one zombie (pid 20010),
// zdtm-zombie00 four (72 to 75).
func TestZombiesRecipe(t *testing.T) {
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("corpus not present")
	}
	var src string
	for _, r := range cookbook(t) {
		if r.name == "zombies" {
			src = r.src
		}
	}
	q, err := query.Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{
		"proc-tree":     "[20010]",
		"zdtm-zombie00": "[72 73 74 75]",
		"sleep-plain":   "[]",
	} {
		d, err := query.Open(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		v, err := q.Eval(context.Background(), d)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if got := fmt.Sprint(v.Value()); got != want {
			t.Errorf("zombies(%s) = %s, want %s", dir, got, want)
		}
	}
}
