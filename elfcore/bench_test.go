package elfcore_test

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/elfcore"
	"github.com/critq/critq/explore"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/mem"
)

// BenchmarkCorpusDump writes the cores of every task of a corpus dump to
// io.Discard.
func BenchmarkCorpusDump(b *testing.B) {
	root := testcorpus.Root(b)
	if root == "" {
		b.Skip("no corpus")
	}
	for _, name := range []string{"many-vmas", "threads", "proc-tree"} {
		b.Run(name, func(b *testing.B) {
			benchCores(b, filepath.Join(root, name))
		})
	}
}

func benchCores(b *testing.B, dir string) {
	for b.Loop() {
		d, err := dump.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		m := mem.Open(d)
		tasks, err := explore.New(d, m).Tasks()
		if err != nil {
			b.Fatal(err)
		}
		w := elfcore.New(d, m, elfcore.Options{})
		for _, t := range tasks {
			if _, err := w.Write(io.Discard, t.PID); err != nil {
				b.Fatal(err)
			}
		}
		w.Close()
		m.Close()
		d.Close()
	}
}
