package diff

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/query"
)

// loadFS reads the images of a dump folder into memory.
func loadFS(t testing.TB, dir string) fstest.MapFS {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fsys[e.Name()] = &fstest.MapFile{Data: b, Mode: 0o644}
	}
	return fsys
}

// FuzzDiffMutated diffs a dump against a copy with one file mutated (bytes
// overwritten at an offset, or cut short), both ways: it must never panic;
// it reports the same number of changes both ways (added and removed
// swapped); and a changed byte of a pages file, which the diff compares
// byte by byte, is reported as a memory change unless the dump fails to
// load with an error.
func FuzzDiffMutated(f *testing.F) {
	orig := loadFS(f, filepath.Join("..", "testdata", "dumps", "sleep-plain"))
	names := make([]string, 0, len(orig))
	for n := range orig {
		names = append(names, n)
	}
	sort.Strings(names)
	for i := range names {
		f.Add(uint8(i), uint32(20+i), []byte{0x80, 0x80, 0x01}, i%2 == 0)
		f.Add(uint8(i), uint32(4096*i+7), []byte{0xff}, false)
	}
	f.Fuzz(func(t *testing.T, file uint8, off uint32, patch []byte, cut bool) {
		name := names[int(file)%len(names)]
		// A hang is a failure: the fuzzer keeps the input of a crash.
		wd := time.AfterFunc(20*time.Second, func() { panic(fmt.Sprintf("hang: %s off %d patch %x cut %v", name, off, patch, cut)) })
		defer wd.Stop()
		mut := fstest.MapFS{}
		for n, fl := range orig {
			mut[n] = fl
		}
		data := append([]byte(nil), orig[name].Data...)
		if len(data) > 0 {
			o := int(off % uint32(len(data)))
			if cut {
				data = data[:o]
			}
			copy(data[o:], patch)
		}
		mut[name] = &fstest.MapFile{Data: data, Mode: 0o644}
		da, err := dump.OpenFS(orig, "orig")
		if err != nil {
			t.Fatal(err)
		}
		db, err := dump.OpenFS(mut, "mutated")
		if err != nil {
			return
		}
		o := Options{Pages: true, Bytes: true, Registers: true}
		ab, errAB := Dumps(context.Background(), query.NewDump(da), query.NewDump(db), o)
		ba, errBA := Dumps(context.Background(), query.NewDump(db), query.NewDump(da), o)
		if errAB != nil || errBA != nil {
			return
		}
		if len(ab) != len(ba) {
			t.Errorf("%d changes one way, %d the other:\n%v\n%v", len(ab), len(ba), ab, ba)
		}
		pagesChanged := strings.HasPrefix(name, "pages-") && !cut && !bytes.Equal(data, orig[name].Data)
		if !pagesChanged {
			return
		}
		for _, c := range ab {
			if c.GetSection() == "memory" && c.GetOp() == Changed {
				return
			}
		}
		t.Errorf("%s changed, no memory change reported: %v", name, ab)
	})
}
