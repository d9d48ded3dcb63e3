package rules

import (
	"testing"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/proto/images"
)

// TestCheckFileEntryOnRealDumps checks that every file entry CRIU wrote,
// in testdata and the corpus, passes the type-part check of Validate.
func TestCheckFileEntryOnRealDumps(t *testing.T) {
	n := 0
	for _, dir := range append(testdataDumps(t), corpusIfPresent(t)...) {
		d, err := dump.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		f := d.File("files.img")
		if f == nil {
			continue
		}
		msgs, err := f.Messages()
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for i, m := range msgs {
			if err := checkFileEntry(m.(*images.FileEntry)); err != nil {
				t.Errorf("%s: files.img entry %d: %v", dir, i, err)
			}
			n++
		}
		d.Close()
	}
	if n == 0 {
		t.Fatal("no file entries checked")
	}
}
