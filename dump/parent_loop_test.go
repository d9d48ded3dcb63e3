package dump

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParentLoop checks that a parent link that leads back down the chain
// (to the dump itself, or to a dump it is the parent of) is an error, not
// an endless chain of parents; a symlink and a regular file holding the
// target (a copy that lost the link) both.
func TestParentLoop(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"self", "a", "b", "c", "d"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		// Open reads the listing only: a name is enough.
		if err := os.WriteFile(filepath.Join(root, d, "inventory.img"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(dir, target string, file bool) {
		p := filepath.Join(root, dir, "parent")
		var err error
		if file {
			err = os.WriteFile(p, []byte(target+"\n"), 0o644)
		} else {
			err = os.Symlink(target, p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	link("self", ".", true)
	link("a", "../b", false)
	link("b", "../a", false)
	link("c", "../d", false) // d has no parent: a chain that ends

	for _, tt := range []struct {
		dir   string
		depth int // parents before the error; -1: the chain ends
	}{
		{"self", 0},
		{"a", 1},
		{"c", -1},
	} {
		d, err := Open(filepath.Join(root, tt.dir))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			p, err := d.Parent()
			if err != nil {
				if tt.depth < 0 || n != tt.depth || !strings.Contains(err.Error(), "the parent link leads back to") {
					t.Errorf("%s: after %d parents: %v", tt.dir, n, err)
				}
				break
			}
			if p == nil {
				if tt.depth >= 0 {
					t.Errorf("%s: the chain ended after %d parents, wanted a loop error after %d", tt.dir, n, tt.depth)
				}
				break
			}
			if n++; n > 10 {
				t.Fatalf("%s: more than 10 parents", tt.dir)
			}
			d = p
		}
	}
}
