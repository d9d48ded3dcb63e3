package codec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/proto/images"
)

// corpusImages returns every non-raw image of the dumps in testdata and, when
// present, of ../shared/corpus (pre-dump chains included).
func corpusImages(t testing.TB) []string {
	t.Helper()
	var out []string
	roots := []string{testcorpus.Testdata(t)}
	if root := testcorpus.Root(t); root != "" {
		roots = append(roots, root)
	}
	for _, root := range roots {
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				if d != nil && d.IsDir() && (d.Name() == "golden" || d.Name() == "proc" || d.Name() == "_cases") {
					return filepath.SkipDir
				}
				return nil
			}
			if k, _, ok := magic.ForFile(d.Name()); ok && !k.Raw && k.Entry != nil {
				out = append(out, path)
			}
			return nil
		})
	}
	if len(out) == 0 {
		t.Fatal("no images found")
	}
	return out
}

func readAll(t testing.TB, r *codec.Reader) []*codec.Entry {
	t.Helper()
	es, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// writeImage writes entries with hdr and returns the bytes.
func writeImage(t testing.TB, hdr codec.Header, es []*codec.Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := codec.NewWriter(&buf, hdr)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := w.WriteEntry(e.Payload, e.Extra); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCorpusRoundTrip reads every image of the corpus from memory and from a
// stream that returns one byte at a time, unmarshals every entry, and writes
// the entries back: the bytes must be identical.
func TestCorpusRoundTrip(t *testing.T) {
	files := corpusImages(t)
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := codec.NewBytesReader(data, codec.ReadOptions{Name: path})
		if err != nil {
			t.Errorf("NewBytesReader(%s): %v", path, err)
			continue
		}
		es := readAll(t, r)
		for _, e := range es {
			m, err := e.Message()
			if err != nil {
				t.Errorf("%s: entry %d: %v", path, e.Index, err)
				continue
			}
			// protobuf-go marshals what protobuf-c wrote, byte for byte.
			b, err := proto.Marshal(m)
			if err != nil || !bytes.Equal(b, e.Payload) {
				t.Errorf("%s: entry %d: re-marshalled message differs (err %v)", path, e.Index, err)
			}
		}
		if got := writeImage(t, r.Header(), es); !bytes.Equal(got, data) {
			t.Errorf("%s: written image differs from the original", path)
		}
		sr, err := codec.NewReader(iotest.OneByteReader(bytes.NewReader(data)), codec.ReadOptions{Name: path})
		if err != nil {
			t.Errorf("NewReader(%s): %v", path, err)
			continue
		}
		es2 := readAll(t, sr)
		if len(es2) != len(es) {
			t.Errorf("%s: stream reader got %d entries, bytes reader %d", path, len(es2), len(es))
		}
	}
	t.Logf("%d images", len(files))
}

func mustKind(t testing.TB, name string) *magic.Kind {
	k, ok := magic.ByName(name)
	if !ok {
		panic("no kind " + name)
	}
	return k
}

func marshal(t testing.TB, m proto.Message) []byte {
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHeaders checks the magics CRIU writes, both byte orders and version 1
// images, against the format (format.md 2.2, 2.3).
func TestHeaders(t *testing.T) {
	pstree := marshal(t, &images.PstreeEntry{Pid: proto.Uint32(1), Ppid: proto.Uint32(0), Pgid: proto.Uint32(1), Sid: proto.Uint32(1)})
	tests := []struct {
		name  string
		hdr   codec.Header
		want  []byte // the first bytes of the image
		entry []byte
	}{
		{"common", codec.HeaderFor(mustKind(t, "PSTREE")), []byte{0x19, 0x43, 0x56, 0x54, 0x30, 0x30, 0x27, 0x50}, pstree},
		{"service", codec.HeaderFor(mustKind(t, "STATS")), []byte{0x40, 0x59, 0x10, 0x55, 0x06, 0x33, 0x09, 0x57}, marshal(t, &images.StatsEntry{})},
		{"inventory", codec.HeaderFor(mustKind(t, "INVENTORY")), []byte{0x16, 0x31, 0x31, 0x58}, marshal(t, &images.InventoryEntry{ImgVersion: proto.Uint32(2)})},
		{"v1", codec.Header{Kind: mustKind(t, "PSTREE"), Order: binary.LittleEndian}, []byte{0x30, 0x30, 0x27, 0x50}, pstree},
		{"big-endian", codec.Header{Kind: mustKind(t, "PSTREE"), Head: magic.ImgCommon, Order: binary.BigEndian}, []byte{0x54, 0x56, 0x43, 0x19, 0x50, 0x27, 0x30, 0x30}, pstree},
		{"big-endian v1", codec.Header{Kind: mustKind(t, "CORE"), Order: binary.BigEndian}, []byte{0x55, 0x05, 0x38, 0x47}, marshal(t, &images.CoreEntry{Mtype: images.CoreEntry_S390.Enum()})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := writeImage(t, tt.hdr, []*codec.Entry{{Payload: tt.entry}})
			if !bytes.HasPrefix(data, tt.want) {
				t.Fatalf("image starts % x, want % x", data[:len(tt.want)], tt.want)
			}
			size := data[len(tt.want) : len(tt.want)+4]
			if got := tt.hdr.Order.Uint32(size); got != uint32(len(tt.entry)) {
				t.Errorf("size word % x = %d, want %d", size, got, len(tt.entry))
			}
			r, err := codec.NewBytesReader(data, codec.ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			h := r.Header()
			if h.Kind != tt.hdr.Kind || h.Head != tt.hdr.Head || h.Order != tt.hdr.Order {
				t.Errorf("header = %v %#x %v, want %v %#x %v", h.Kind, h.Head, h.Order, tt.hdr.Kind, tt.hdr.Head, tt.hdr.Order)
			}
			es := readAll(t, r)
			if len(es) != 1 || !bytes.Equal(es[0].Payload, tt.entry) {
				t.Errorf("entries = %v", es)
			}
		})
	}
}

// TestExtras writes entries of every kind with extras and reads them back,
// checking the extra lengths against the rules of format.md section 4.
func TestExtras(t *testing.T) {
	le := binary.LittleEndian
	msg := marshal(t, &images.IpcMsg{Mtype: proto.Uint64(1), Msize: proto.Uint32(5)})
	msgExtra := append(le.AppendUint32(nil, uint32(len(msg))), msg...)
	msgExtra = append(msgExtra, 'h', 'e', 'l', 'l', 'o', 0, 0, 0)
	desc := &images.IpcDescEntry{Key: proto.Uint32(1), Uid: proto.Uint32(0), Gid: proto.Uint32(0), Cuid: proto.Uint32(0), Cgid: proto.Uint32(0), Mode: proto.Uint32(0o600), Id: proto.Uint32(7)}
	tests := []struct {
		kind    string
		entries []*codec.Entry
		parts   []codec.ExtraParts
	}{
		{"PIPES_DATA", []*codec.Entry{{Payload: marshal(t, &images.PipeDataEntry{PipeId: proto.Uint32(5), Bytes: proto.Uint32(3), Size: proto.Uint32(65536)}), Extra: []byte("xyz")}},
			[]codec.ExtraParts{{Data: []byte("xyz")}}},
		{"SK_QUEUES", []*codec.Entry{{Payload: marshal(t, &images.SkPacketEntry{IdFor: proto.Uint32(1), Length: proto.Uint32(2)}), Extra: []byte("ab")}},
			[]codec.ExtraParts{{Data: []byte("ab")}}},
		{"TCP_STREAM", []*codec.Entry{{Payload: marshal(t, &images.TcpStreamEntry{InqLen: proto.Uint32(2), InqSeq: proto.Uint32(0), OutqLen: proto.Uint32(3), OutqSeq: proto.Uint32(0)}), Extra: []byte("inout")}},
			[]codec.ExtraParts{{InQ: []byte("in"), OutQ: []byte("out")}}},
		{"BPFMAP_DATA", []*codec.Entry{{Payload: marshal(t, &images.BpfmapDataEntry{MapId: proto.Uint32(1), KeysBytes: proto.Uint32(4), ValuesBytes: proto.Uint32(8), Count: proto.Uint32(1)}), Extra: make([]byte, 12)}},
			[]codec.ExtraParts{{Data: make([]byte, 12)}}},
		{"IPCNS_SEM", []*codec.Entry{
			{Payload: marshal(t, &images.IpcSemEntry{Desc: desc, Nsems: proto.Uint32(3)}), Extra: []byte{1, 0, 2, 0, 3, 0, 0, 0}},
			{Payload: marshal(t, &images.IpcSemEntry{Desc: desc, Nsems: proto.Uint32(4)}), Extra: []byte{1, 0, 2, 0, 3, 0, 4, 0}},
			{Payload: marshal(t, &images.IpcSemEntry{Desc: desc, Nsems: proto.Uint32(0)})}},
			[]codec.ExtraParts{{Sems: []uint16{1, 2, 3}}, {Sems: []uint16{1, 2, 3, 4}}, {Sems: []uint16{}}}},
		{"IPCNS_MSG", []*codec.Entry{{Payload: marshal(t, &images.IpcMsgEntry{Desc: desc, Qbytes: proto.Uint32(16384), Qnum: proto.Uint32(1)}), Extra: msgExtra}},
			[]codec.ExtraParts{{Msgs: [][]byte{msg}, MsgTexts: [][]byte{[]byte("hello")}}}},
		{"IPCNS_SHM", []*codec.Entry{
			{Payload: marshal(t, &images.IpcShmEntry{Desc: desc, Size: proto.Uint64(5)}), Extra: []byte{'a', 'b', 'c', 'd', 'e', 0, 0, 0}},
			{Payload: marshal(t, &images.IpcShmEntry{Desc: desc, Size: proto.Uint64(4096), InPagemaps: proto.Bool(true)})}},
			[]codec.ExtraParts{{Data: []byte("abcde")}, {}}},
		{"GHOST_FILE", []*codec.Entry{
			{Payload: marshal(t, &images.GhostFileEntry{Uid: proto.Uint32(0), Gid: proto.Uint32(0), Mode: proto.Uint32(0o100644), Chunks: proto.Bool(true), Size: proto.Uint64(20000)})},
			{Payload: marshal(t, &images.GhostChunkEntry{Len: proto.Uint64(3), Off: proto.Uint64(0)}), Extra: []byte("abc")},
			{Payload: marshal(t, &images.GhostChunkEntry{Len: proto.Uint64(2), Off: proto.Uint64(16384)}), Extra: []byte("de")}},
			[]codec.ExtraParts{{}, {Data: []byte("abc")}, {Data: []byte("de")}}},
		{"GHOST_FILE", []*codec.Entry{
			{Payload: marshal(t, &images.GhostFileEntry{Uid: proto.Uint32(0), Gid: proto.Uint32(0), Mode: proto.Uint32(0o100644)}), Extra: []byte("hello")}},
			[]codec.ExtraParts{{Data: []byte("hello")}}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			k := mustKind(t, tt.kind)
			hdr := codec.HeaderFor(k)
			data := writeImage(t, hdr, tt.entries)
			r, err := codec.NewReader(bytes.NewReader(data), codec.ReadOptions{Size: int64(len(data))})
			if err != nil {
				t.Fatal(err)
			}
			es := readAll(t, r)
			if len(es) != len(tt.entries) {
				t.Fatalf("read %d entries, wrote %d", len(es), len(tt.entries))
			}
			for i, e := range es {
				if !bytes.Equal(e.Extra, tt.entries[i].Extra) {
					t.Errorf("entry %d: extra %q, want %q", i, e.Extra, tt.entries[i].Extra)
				}
				p, err := codec.SplitExtra(k, hdr.Order, e)
				if err != nil {
					t.Fatalf("SplitExtra(entry %d): %v", i, err)
				}
				want := tt.parts[i]
				if !bytes.Equal(p.Data, want.Data) || !bytes.Equal(p.InQ, want.InQ) || !bytes.Equal(p.OutQ, want.OutQ) ||
					len(p.Sems) != len(want.Sems) || len(p.Msgs) != len(want.Msgs) {
					t.Errorf("SplitExtra(entry %d) = %+v, want %+v", i, p, want)
				}
				for j := range want.Sems {
					if p.Sems[j] != want.Sems[j] {
						t.Errorf("entry %d: sem %d = %d, want %d", i, j, p.Sems[j], want.Sems[j])
					}
				}
				for j := range want.MsgTexts {
					if !bytes.Equal(p.MsgTexts[j], want.MsgTexts[j]) {
						t.Errorf("entry %d: message %d = %q, want %q", i, j, p.MsgTexts[j], want.MsgTexts[j])
					}
				}
				if k.Extra != magic.ExtraGhostFile {
					if got := codec.JoinExtra(k, hdr.Order, p); !bytes.Equal(got, e.Extra) {
						t.Errorf("JoinExtra(entry %d) = %q, want %q", i, got, e.Extra)
					}
				}
			}
		})
	}
}

// TestWriterRefuses checks that the writer refuses entries its reader would
// reject.
func TestWriterRefuses(t *testing.T) {
	k := mustKind(t, "PIPES_DATA")
	w, err := codec.NewWriter(io.Discard, codec.HeaderFor(k))
	if err != nil {
		t.Fatal(err)
	}
	pd := marshal(t, &images.PipeDataEntry{PipeId: proto.Uint32(5), Bytes: proto.Uint32(3)})
	if err := w.WriteEntry(pd, []byte("ab")); err == nil {
		t.Error("WriteEntry with a short extra succeeded")
	}
	if err := w.WriteEntry([]byte{0xff}, nil); err == nil {
		t.Error("WriteEntry with a corrupt payload succeeded")
	}
	if _, err := codec.NewWriter(io.Discard, codec.Header{Kind: mustKind(t, "PAGES")}); err == nil {
		t.Error("NewWriter(PAGES) succeeded")
	}
}

// sample is a small real image with several entries.
func sample(t testing.TB) []byte {
	data, err := os.ReadFile("../testdata/dumps/pipes-fifo/pipes-data.img")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestTruncated cuts a real image at every offset: each cut must read as a
// clean end at an entry boundary and as an *Error anywhere else.
func TestTruncated(t *testing.T) {
	data := sample(t)
	r, err := codec.NewBytesReader(data, codec.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	boundaries := map[int]bool{8: true}
	for _, e := range readAll(t, r) {
		boundaries[int(e.Offset+e.Len())] = true
	}
	for n := 0; n < len(data); n++ {
		cut := data[:n]
		for _, stream := range []bool{false, true} {
			var r *codec.Reader
			var err error
			if stream {
				r, err = codec.NewReader(iotest.HalfReader(bytes.NewReader(cut)), codec.ReadOptions{Name: "pipes-data.img"})
			} else {
				r, err = codec.NewBytesReader(cut, codec.ReadOptions{Name: "pipes-data.img"})
			}
			if n < 8 {
				if err == nil {
					t.Fatalf("cut at %d: no error for the magics", n)
				}
				continue
			}
			if err != nil {
				t.Fatalf("cut at %d: %v", n, err)
			}
			_, err = r.ReadAll()
			var cerr *codec.Error
			switch {
			case boundaries[n] && err != nil:
				t.Errorf("cut at entry boundary %d: %v", n, err)
			case !boundaries[n] && !errors.As(err, &cerr):
				t.Errorf("cut at %d: got %v, want a *codec.Error", n, err)
			case !boundaries[n] && !strings.HasPrefix(err.Error(), "pipes-data.img: PIPES_DATA entry "):
				t.Errorf("cut at %d: error %q does not locate the entry", n, err)
			}
		}
	}
}

// TestHostile checks one-line errors for sizes that lie, wrong magics and
// flipped bytes.
func TestHostile(t *testing.T) {
	data := sample(t)
	huge := append([]byte(nil), data[:8]...)
	huge = binary.LittleEndian.AppendUint32(huge, 0xffffffff)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "x.img: magic at offset 0: empty file: no magic"},
		{"wrong magic", []byte{1, 2, 3, 4, 5, 6, 7, 8}, "x.img: magic at offset 0: unknown magic 0x4030201: not a CRIU image, or a raw image such as pages-*.img"},
		{"head only", data[:4], "x.img: magic at offset 4: file ends after the head magic"},
		{"bad kind magic", append(append([]byte(nil), data[:4]...), 0x12, 0x34, 0x56, 0x78), "x.img: magic at offset 4: unknown magic 0x78563412: not a CRIU image, or a raw image such as pages-*.img"},
		{"no decoder", binary.LittleEndian.AppendUint32(append([]byte(nil), data[:4]...), 0x57023458), "x.img: magic at offset 4: KDAT: kind has no entries critq can decode"},
		{"size 0xffffffff", huge, "x.img: PIPES_DATA entry 0 at offset 8: size 4294967295 exceeds the 0 bytes left in the file"},
		{"extra too long", func() []byte {
			b := writeImage(t, codec.HeaderFor(mustKind(t, "PIPES_DATA")), nil)
			p := marshal(t, &images.PipeDataEntry{PipeId: proto.Uint32(1), Bytes: proto.Uint32(1 << 30)})
			b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
			return append(b, p...)
		}(), "x.img: PIPES_DATA entry 0 at offset 8: bytes 1073741824 exceeds the 0 bytes left in the file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := codec.NewBytesReader(tt.data, codec.ReadOptions{Name: "x.img"})
			if err == nil {
				_, err = r.ReadAll()
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
	// A lying size on a stream of unknown length allocates no more than
	// what arrives, and a limit refuses it before reading.
	r, err := codec.NewReader(bytes.NewReader(huge), codec.ReadOptions{Name: "x.img", MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "exceeds limit 1048576") {
		t.Errorf("stream with size 0xffffffff: %v", err)
	}
	// Flipping any byte never panics.
	for i := range data {
		b := append([]byte(nil), data...)
		b[i] ^= 0xff
		if r, err := codec.NewBytesReader(b, codec.ReadOptions{}); err == nil {
			r.ReadAll()
		}
	}
}

func FuzzReader(f *testing.F) {
	for _, p := range []string{"../testdata/dumps/pipes-fifo/pipes-data.img", "../testdata/dumps/tcp/pstree.img",
		"../testdata/dumps/zdtm-sem-ns/ipcns-sem-11.img", "../testdata/dumps/zdtm-msgque-ns/ipcns-msg-11.img",
		"../testdata/dumps/zdtm-ghost_holes00/files.img", "../testdata/dumps/sleep-plain/inventory.img"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	if fs, _ := filepath.Glob("../testdata/dumps/*/ghost-file-*.img"); len(fs) > 0 {
		b, _ := os.ReadFile(fs[0])
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := codec.NewBytesReader(data, codec.ReadOptions{MaxSize: 1 << 20, MaxExtra: 1 << 20})
		if err != nil {
			return
		}
		es, err := r.ReadAll()
		if err != nil {
			return
		}
		// What reads without error writes back to the same bytes.
		var buf bytes.Buffer
		w, err := codec.NewWriter(&buf, r.Header())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if err := w.WriteEntry(e.Payload, e.Extra); err != nil {
				// The writer validates payloads, the reader does not.
				if _, merr := e.Message(); merr == nil {
					t.Fatalf("entry %d reads but does not write: %v", e.Index, err)
				}
				return
			}
		}
		w.Flush()
		if !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("round trip differs")
		}
	})
}
