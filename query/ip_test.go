package query

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/proto/images"
)

// writeSocketDump writes a dump whose files.img, in byte order order, holds
// two TCP sockets: 10.1.2.3:80 -> 192.168.0.9:4000 and [2001:db8::1]:443.
func writeSocketDump(t *testing.T, order codec.ByteOrder) string {
	t.Helper()
	dir := t.TempDir()
	v4 := func(s string) []uint32 { w, _ := annot.ParseIP(s, order); return w }
	sk := func(id uint32, fam uint32, src, dst []uint32, sport, dport uint32) *images.FileEntry {
		return &images.FileEntry{Type: images.FdTypes_INETSK.Enum(), Id: proto.Uint32(id), Isk: &images.InetSkEntry{
			Id: proto.Uint32(id), Ino: proto.Uint32(100 + id), Family: proto.Uint32(fam), Type: proto.Uint32(1), Proto: proto.Uint32(6),
			State: proto.Uint32(1), SrcPort: proto.Uint32(sport), DstPort: proto.Uint32(dport), Flags: proto.Uint32(2), Backlog: proto.Uint32(0),
			SrcAddr: src, DstAddr: dst, Fown: &images.FownEntry{Uid: proto.Uint32(0), Euid: proto.Uint32(0), Signum: proto.Uint32(0), PidType: proto.Uint32(0), Pid: proto.Uint32(0)},
		}}
	}
	files := []proto.Message{
		sk(1, 2, v4("10.1.2.3"), v4("192.168.0.9"), 80, 4000),
		sk(2, 10, v4("2001:db8::1"), v4("::"), 443, 0),
	}
	k, _ := magic.ByName("FILES")
	f, err := os.Create(filepath.Join(dir, "files.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := codec.HeaderFor(k)
	hdr.Order = order
	w, err := codec.NewWriter(f, hdr)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range files {
		if err := w.WriteMessage(m, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestIPBigEndian: ip() reads the words in the byte order of the dump's
// images, so on a big-endian dump it agrees with the sockets view (it
// assumed little-endian words before).
func TestIPBigEndian(t *testing.T) {
	want := []any{"10.1.2.3", "192.168.0.9", "2001:db8::1", "::"}
	for _, order := range []codec.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		d, err := Open(writeSocketDump(t, order))
		if err != nil {
			t.Fatal(err)
		}
		for _, src := range []string{
			`files.map(f, [ip(f.entry.isk.src_addr), ip(f.entry.isk.dst_addr)]).flatten()`,
			`sockets.map(s, [s.local_addr, s.peer_addr]).flatten()`,
		} {
			q, err := Compile(src)
			if err != nil {
				t.Fatal(err)
			}
			v, err := q.Eval(context.Background(), d)
			if err != nil {
				t.Fatalf("%v: %s: %v", order, src, err)
			}
			if got := native(v); !reflect.DeepEqual(got, want) {
				t.Errorf("%v: %s = %v, want %v", order, src, got, want)
			}
		}
	}
}
