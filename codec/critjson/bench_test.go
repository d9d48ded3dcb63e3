package critjson_test

import (
	"bytes"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/codec/critjson"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/proto/images"
)

// synthMM builds an mm image of one entry with n VMAs, alike to what CRIU
// writes for a large process: anonymous and file mappings, all fields set.
func synthMM(tb testing.TB, n int) []byte {
	tb.Helper()
	u64 := proto.Uint64
	mm := &images.MmEntry{
		MmStartCode: u64(0x400000), MmEndCode: u64(0x401000), MmStartData: u64(0x403000), MmEndData: u64(0x404000),
		MmStartStack: u64(0x7ffd1000), MmStartBrk: u64(0x1000000), MmBrk: u64(0x1021000), MmArgStart: u64(0x7ffd2000),
		MmArgEnd: u64(0x7ffd2100), MmEnvStart: u64(0x7ffd2100), MmEnvEnd: u64(0x7ffd2f00), ExeFileId: proto.Uint32(3),
		MmSavedAuxv: []uint64{33, 0x7ffd3000, 16, 0xbfebfbff, 6, 4096}, Dumpable: proto.Int32(1), ThpDisabled: proto.Bool(false),
	}
	addr := uint64(0x7f0000000000)
	for i := range n {
		v := &images.VmaEntry{
			Start: u64(addr), End: u64(addr + 4096*uint64(1+i%4)), Pgoff: u64(0), Shmid: u64(0),
			Prot: proto.Uint32(uint32(1 + i%7)), Flags: proto.Uint32(0x22), Status: proto.Uint32(0x201),
			Fd: proto.Int64(-1), Madv: u64(0), Fdflags: proto.Uint32(0),
		}
		if i%16 == 0 {
			v.Flags, v.Status, v.Shmid, v.Pgoff = proto.Uint32(0x2), proto.Uint32(0x41), u64(uint64(10+i)), u64(4096)
		}
		mm.Vmas = append(mm.Vmas, v)
		addr = v.GetEnd() + 4096
	}
	k, _ := magic.ByName("MM")
	var out bytes.Buffer
	w, err := codec.NewWriter(&out, codec.HeaderFor(k))
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.WriteMessage(mm, nil); err != nil {
		tb.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

const benchVMAs = 100_000

// BenchmarkDecodeJSON renders an mm image of 100,000 VMAs as crit's JSON.
func BenchmarkDecodeJSON(b *testing.B) {
	img := synthMM(b, benchVMAs)
	for _, bc := range []struct {
		name string
		o    critjson.Options
	}{{"plain", critjson.Options{}}, {"pretty", critjson.Options{Pretty: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(img)))
			for b.Loop() {
				r, err := codec.NewBytesReader(img, codec.ReadOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if err := critjson.Encode(io.Discard, r, bc.o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnmarshal is the yardstick: a bare proto.Unmarshal of every
// entry of the same image.
func BenchmarkUnmarshal(b *testing.B) {
	img := synthMM(b, benchVMAs)
	b.ReportAllocs()
	b.SetBytes(int64(len(img)))
	for b.Loop() {
		r, err := codec.NewBytesReader(img, codec.ReadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			e, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Message(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkEncodeJSON parses the JSON of the same image back into an
// image, from both forms.
func BenchmarkEncodeJSON(b *testing.B) {
	img := synthMM(b, benchVMAs)
	for _, pretty := range []bool{false, true} {
		name := "plain"
		if pretty {
			name = "pretty"
		}
		r, err := codec.NewBytesReader(img, codec.ReadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		var doc bytes.Buffer
		if err := critjson.Encode(&doc, r, critjson.Options{Pretty: pretty}); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(doc.Len()))
			for b.Loop() {
				im, err := critjson.Decode(doc.Bytes(), critjson.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := im.Write(io.Discard, codec.HeaderFor(im.Kind)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
