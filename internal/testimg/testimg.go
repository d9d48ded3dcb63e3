// Package testimg writes small CRIU images for tests, through critq's own
// codec.Writer, so that they are framed as CRIU frames them.
package testimg

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/proto/images"
)

// Bytes encodes msgs as an image of kind (a name of package magic's table:
// "PSTREE", "CORE", ...) with the header CRIU 4.2 writes for it.
func Bytes(t testing.TB, kind string, msgs ...proto.Message) []byte {
	t.Helper()
	k, ok := magic.ByName(kind)
	if !ok {
		t.Fatalf("no kind %s", kind)
	}
	var b bytes.Buffer
	w, err := codec.NewWriter(&b, codec.HeaderFor(k))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := w.WriteMessage(m, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Write writes the image Bytes makes to dir/name.
func Write(t testing.TB, dir, name, kind string, msgs ...proto.Message) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), Bytes(t, kind, msgs...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// AddVMAs appends n private anonymous VMAs without pages to the mm image
// of task pid in the dump folder dir, above every VMA it has: a dump of a
// real process grown to a large address space, its memory (command line,
// environment) still readable.
func AddVMAs(t testing.TB, dir string, pid uint32, n int) {
	t.Helper()
	name := filepath.Join(dir, fmt.Sprintf("mm-%d.img", pid))
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	r, err := codec.NewBytesReader(b, codec.ReadOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	e, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.Message()
	if err != nil {
		t.Fatal(err)
	}
	mm := m.(*images.MmEntry)
	const base, step = 0x100000000000, 0x2000 // far below the stack and the mmap base
	for _, v := range mm.Vmas {
		if v.GetEnd() > base && v.GetStart() < base+uint64(n)*step {
			t.Fatalf("%s: VMA %#x-%#x is where the added VMAs go", name, v.GetStart(), v.GetEnd())
		}
	}
	for i := range n {
		start := uint64(base + i*step)
		mm.Vmas = append(mm.Vmas, &images.VmaEntry{Start: proto.Uint64(start), End: proto.Uint64(start + 0x1000),
			Pgoff: proto.Uint64(0), Shmid: proto.Uint64(0), Prot: proto.Uint32(1 | 2), Flags: proto.Uint32(0x22), // MAP_PRIVATE|MAP_ANONYMOUS
			Status: proto.Uint32(1 | 1<<9), Fd: proto.Int64(-1)}) // VMA_AREA_REGULAR|VMA_ANON_PRIVATE
	}
	sort.Slice(mm.Vmas, func(i, j int) bool { return mm.Vmas[i].GetStart() < mm.Vmas[j].GetStart() })
	Write(t, dir, filepath.Base(name), "MM", mm)
}
