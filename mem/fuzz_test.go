package mem

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/critq/critq/codec"
)

// FuzzPagemapIndex builds the page index of arbitrary pagemap images: it
// must not panic, and an index it accepts has sorted, disjoint runs whose
// PE_PRESENT pages follow each other in the pages file.
func FuzzPagemapIndex(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/dumps/*/pagemap-*.img")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(12))
	}
	f.Fuzz(func(t *testing.T, b []byte, shift uint16) {
		r, err := codec.NewBytesReader(b, codec.ReadOptions{})
		if err != nil {
			return
		}
		entries, err := r.ReadAll()
		if err != nil {
			return
		}
		ps := uint64(1) << (shift % 64)
		ix, err := buildIndex("fuzz", entries, ps)
		if err != nil {
			return
		}
		var off int64
		for i, r := range ix.runs {
			if r.start >= r.end || (i > 0 && ix.runs[i-1].end > r.start) {
				t.Fatalf("run %d %x-%x after %x", i, r.start, r.end, ix.runs[max(i-1, 0)].end)
			}
			if r.where == inPages {
				off += int64(r.end - r.start)
			}
			if j := ix.find(r.start); j != i {
				t.Fatalf("find(%x) = %d, wanted %d", r.start, j, i)
			}
		}
		if off != ix.present {
			t.Fatalf("present pages %d bytes, runs say %d", ix.present, off)
		}
	})
}
