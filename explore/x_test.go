package explore_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/explore"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/mem"
)

// corpusDirs returns the dump folders to test (see package testcorpus).
func corpusDirs(t testing.TB) []string { return testcorpus.Dumps(t) }

func mustExplorer(t testing.TB, dir string) *explore.Explorer {
	t.Helper()
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := mem.Open(d)
	t.Cleanup(func() { m.Close() })
	return explore.New(d, m)
}

// TestXGolden compares critq x with what crit 4.2 printed (golden/x-*.txt).
// Where crit crashed (x-*.err beside the text) its output stops at the
// task it crashed on (bug B10): critq's output must begin with it.
func TestXGolden(t *testing.T) {
	compared, prefixes := 0, 0
	for _, dir := range corpusDirs(t) {
		for _, what := range []string{"ps", "fds", "mems", "rss"} {
			want, err := os.ReadFile(filepath.Join(dir, "golden", "x-"+what+".txt"))
			if err != nil {
				continue
			}
			_, crashed := os.Stat(filepath.Join(dir, "golden", "x-"+what+".err"))
			t.Run(filepath.Base(dir)+"/"+what, func(t *testing.T) {
				e := mustExplorer(t, dir)
				var v explore.View
				var err error
				switch what {
				case "ps":
					v, err = e.XPs()
				case "fds":
					v, err = e.XFds()
				case "mems":
					v, err = e.XMems()
				case "rss":
					v, err = e.XRss()
				}
				if errors.Is(err, explore.ErrNoPstree) && crashed == nil && len(want) == 0 {
					return // crit failed too: the dump holds no process (cpuinfo)
				}
				if err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				if err := v.Text(&got); err != nil {
					t.Fatal(err)
				}
				if crashed == nil {
					if !bytes.HasPrefix(got.Bytes(), want) {
						t.Errorf("x %s does not begin with crit's output before its crash", what)
					}
					prefixes++
					return
				}
				if got.String() != string(want) {
					t.Errorf("x %s differs from golden:\n%s", what, firstDiff(got.String(), string(want)))
				}
				compared++
			})
		}
	}
	t.Logf("%d outputs equal to crit's, %d continue where crit crashed", compared, prefixes)
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n got  %q\n want %q", i+1, a, b)
		}
	}
	return "(same lines)"
}
