package codec_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/proto/images"
)

// bigMM returns an mm image with one entry of n VMAs, as many-vmas holds
// (alternating protections, anonymous private maps).
func bigMM(t testing.TB, n int) []byte {
	mm := &images.MmEntry{
		MmStartCode: proto.Uint64(0x400000), MmEndCode: proto.Uint64(0x401000),
		MmStartData: proto.Uint64(0x600000), MmEndData: proto.Uint64(0x601000),
		MmStartStack: proto.Uint64(0x7ffc0000), MmStartBrk: proto.Uint64(0x800000), MmBrk: proto.Uint64(0x900000),
		MmArgStart: proto.Uint64(0x7ffc1000), MmArgEnd: proto.Uint64(0x7ffc1010),
		MmEnvStart: proto.Uint64(0x7ffc1010), MmEnvEnd: proto.Uint64(0x7ffc1100),
		ExeFileId: proto.Uint32(1),
	}
	for i := range n {
		start := uint64(0x10000000) + uint64(i)*0x2000
		mm.Vmas = append(mm.Vmas, &images.VmaEntry{
			Start: proto.Uint64(start), End: proto.Uint64(start + 0x1000), Pgoff: proto.Uint64(0), Shmid: proto.Uint64(0),
			Prot: proto.Uint32(uint32(1 + i%2*4)), Flags: proto.Uint32(0x22), Status: proto.Uint32(0x201),
			Fd: proto.Int64(-1), Madv: proto.Uint64(0), Fdflags: proto.Uint32(0),
		})
	}
	var buf bytes.Buffer
	w, err := codec.NewWriter(&buf, codec.HeaderFor(mustKind(t, "MM")))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessage(mm, nil); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return buf.Bytes()
}

// bigPagemap returns a pagemap image of n entries.
func bigPagemap(t testing.TB, n int) []byte {
	var buf bytes.Buffer
	w, err := codec.NewWriter(&buf, codec.HeaderFor(mustKind(t, "PAGEMAP")))
	if err != nil {
		t.Fatal(err)
	}
	w.WriteMessage(&images.PagemapHead{PagesId: proto.Uint32(1)}, nil)
	for i := range n {
		w.WriteMessage(&images.PagemapEntry{Vaddr: proto.Uint64(0x10000000 + uint64(i)*0x3000), CompatNrPages: proto.Uint32(2),
			Flags: proto.Uint32(4), NrPages: proto.Uint64(2)}, nil)
	}
	w.Flush()
	return buf.Bytes()
}

func BenchmarkRead(b *testing.B) {
	for _, img := range []struct {
		name string
		data []byte
	}{{"mm-100k-vmas", bigMM(b, 100000)}, {"pagemap-200k", bigPagemap(b, 200000)}} {
		b.Run(img.name+"/frame-bytes", func(b *testing.B) {
			b.SetBytes(int64(len(img.data)))
			b.ReportAllocs()
			for b.Loop() {
				r, _ := codec.NewBytesReader(img.data, codec.ReadOptions{})
				if _, err := r.ReadAll(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(img.name+"/frame-stream", func(b *testing.B) {
			b.SetBytes(int64(len(img.data)))
			b.ReportAllocs()
			for b.Loop() {
				r, _ := codec.NewReader(bytes.NewReader(img.data), codec.ReadOptions{})
				if _, err := r.ReadAll(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(img.name+"/unmarshal", func(b *testing.B) {
			b.SetBytes(int64(len(img.data)))
			b.ReportAllocs()
			for b.Loop() {
				r, _ := codec.NewBytesReader(img.data, codec.ReadOptions{})
				for {
					e, err := r.Next()
					if err == io.EOF {
						break
					}
					if _, err := e.Message(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func BenchmarkWrite(b *testing.B) {
	data := bigPagemap(b, 200000)
	r, _ := codec.NewBytesReader(data, codec.ReadOptions{})
	es, _ := r.ReadAll()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		w, _ := codec.NewWriter(io.Discard, r.Header())
		for _, e := range es {
			if err := w.WriteEntry(e.Payload, e.Extra); err != nil {
				b.Fatal(err)
			}
		}
		w.Flush()
	}
}

func Example() {
	var buf bytes.Buffer
	w, _ := codec.NewWriter(&buf, codec.HeaderFor(mustKind(nil, "PSTREE")))
	w.WriteMessage(&images.PstreeEntry{Pid: proto.Uint32(1), Ppid: proto.Uint32(0), Pgid: proto.Uint32(1), Sid: proto.Uint32(1)}, nil)
	w.Flush()

	r, err := codec.NewReader(&buf, codec.ReadOptions{Name: "pstree.img"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		m, _ := e.Message()
		fmt.Println(r.Kind(), e.Index, m.(*images.PstreeEntry).GetPid())
	}
	// Output: PSTREE 0 1
}
