package mem_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/fstest"

	"github.com/critq/critq/mem"
)

// TestBrokenImages checks that images that cannot be read are errors, not
// memory read as something else: a broken files.img fails reads of file
// and memfd mappings (anonymous memory does not need it), and a pages file
// shorter than its pagemap says is an unexpected EOF.
func TestBrokenImages(t *testing.T) {
	noFiles := testDump(t).(fstest.MapFS)
	noFiles["files.img"] = &fstest.MapFile{Data: nil}
	short := testDump(t).(fstest.MapFS)
	short["pages-1.img"] = &fstest.MapFile{Data: short["pages-1.img"].Data[:4096]}
	for _, c := range []struct {
		name string
		fsys fstest.MapFS
		addr uint64
		want []byte // nil: an error that is none of mem's reasons
		eof  bool   // the error is io.ErrUnexpectedEOF
	}{
		{"files.img empty: file mapping", noFiles, 0x21000, nil, false},
		{"files.img empty: memfd mapping", noFiles, 0x31000, nil, false},
		{"files.img empty: anonymous", noFiles, 0x10000, []byte("A"), false},
		{"pages short: first page", short, 0x10000, []byte("A"), false},
		{"pages short: past the end", short, 0x13000, nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := openFS(t, c.fsys)
			got, err := m.Read(1, c.addr, 1)
			if c.want != nil {
				if err != nil || !bytes.Equal(got, c.want) {
					t.Fatalf("Read(1, 0x%x, 1) = %q, %v; wanted %q", c.addr, got, err, c.want)
				}
				return
			}
			for _, why := range []error{mem.ErrNotDumped, mem.ErrUnmapped, mem.ErrNoMemory} {
				if errors.Is(err, why) {
					t.Fatalf("Read(1, 0x%x, 1): %v, a reason of the memory model instead of the image's error", c.addr, err)
				}
			}
			if err == nil || errors.Is(err, io.ErrUnexpectedEOF) != c.eof {
				t.Fatalf("Read(1, 0x%x, 1): %v (unexpected EOF wanted: %v)", c.addr, err, c.eof)
			}
			if _, _, err := m.Held(1); err == nil && c.fsys["files.img"].Data == nil {
				t.Errorf("Held(1) succeeded without files.img")
			}
		})
	}
	if err := openFS(t, noFiles).LoadFiles(); err == nil {
		t.Error("LoadFiles of an empty files.img succeeded")
	}
}
