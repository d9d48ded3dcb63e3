package mem_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/mem"
)

// compressedFields are fields in the shape of CRIU's compressed pagemap
// entries (criu pull requests 2895 and 3115): the sizes of the compressed
// blocks of the entry's pages, and a blocks message with the pages per
// block and the total compressed size. The field numbers are past CRIU
// 4.2's last one (nr_pages = 5); the code refuses any unknown field, so the
// exact numbers of the development branch do not matter here.
func compressedFields() []byte {
	var b []byte
	b = protowire.AppendTag(b, 6, protowire.BytesType)
	b = protowire.AppendBytes(b, protowire.AppendVarint(protowire.AppendVarint(nil, 1873), 2011))
	var blocks []byte
	blocks = protowire.AppendTag(blocks, 1, protowire.VarintType)
	blocks = protowire.AppendVarint(blocks, 1)
	blocks = protowire.AppendTag(blocks, 2, protowire.VarintType)
	blocks = protowire.AppendVarint(blocks, 3884)
	b = protowire.AppendTag(b, 7, protowire.BytesType)
	return protowire.AppendBytes(b, blocks)
}

// rewrite returns image b with edit applied to the payload of each entry
// after the first skip entries, written back with the codec.
func rewrite(t *testing.T, b []byte, skip int, edit func([]byte) []byte) []byte {
	t.Helper()
	r, err := codec.NewBytesReader(b, codec.ReadOptions{Size: int64(len(b))})
	if err != nil {
		t.Fatal(err)
	}
	ents, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := codec.NewWriter(&out, r.Header())
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range ents {
		p := e.Payload
		if i >= skip {
			p = edit(append([]byte(nil), p...))
		}
		if err := w.WriteEntry(p, e.Extra); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestCompressedPages checks that memory reads of a dump whose pagemap or
// inventory has the compressed format's fields or flags are refused with
// ErrCompressed, and that the images still decode, byte for byte.
func TestCompressedPages(t *testing.T) {
	const dir = "../testdata/dumps/sleep-plain"
	const pid = 19635
	load := func() fstest.MapFS {
		fsys := fstest.MapFS{}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				b, err := os.ReadFile(dir + "/" + e.Name())
				if err != nil {
					t.Fatal(err)
				}
				fsys[e.Name()] = &fstest.MapFile{Data: b}
			}
		}
		return fsys
	}
	const pagemap = "pagemap-19635.img"
	withFields := load()
	withFields[pagemap].Data = rewrite(t, withFields[pagemap].Data, 1, func(p []byte) []byte { return append(p, compressedFields()...) })
	withFlag := load()
	withFlag[pagemap].Data = rewrite(t, withFlag[pagemap].Data, 1, func(p []byte) []byte {
		p = protowire.AppendTag(p, 4, protowire.VarintType) // a later flags field wins
		return protowire.AppendVarint(p, uint64(mem.PEPresent|1<<3))
	})
	withInventory := load()
	withInventory["inventory.img"].Data = rewrite(t, withInventory["inventory.img"].Data, 0, func(p []byte) []byte {
		p = protowire.AppendTag(p, 15, protowire.VarintType)
		return protowire.AppendVarint(p, 1)
	})
	for _, c := range []struct {
		name string
		fsys fstest.MapFS
		want string // "" for no error
	}{
		{"CRIU 4.2", load(), ""},
		// entry 1 of a pagemap is at offset 14: two magics, then entry 0, a
		// 4-byte size and a 2-byte pagemap_head
		{"pagemap fields", withFields, "pagemap-19635.img: entry 1 at offset 14: pagemap_entry field 6, unknown to CRIU 4.2: memory pages in CRIU's LZ4-compressed format (criu-dev), which critq does not read: memory reads refused"},
		{"pagemap flag", withFlag, "pagemap flags 0x8, unknown to CRIU 4.2"},
		{"inventory field", withInventory, "inventory.img: entry 0 at offset 4: inventory_entry field 15, unknown to CRIU 4.2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := openFS(t, c.fsys)
			args, err := m.Cmdline(pid)
			if c.want == "" {
				if err != nil || strings.Join(args, " ") != "sleep 1000" {
					t.Fatalf("cmdline %q, %v", args, err)
				}
				return
			}
			if !errors.Is(err, mem.ErrCompressed) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("cmdline: %v, wanted %q", err, c.want)
			}
			vmas, err := m.VMAs(pid)
			if err != nil || len(vmas) == 0 {
				t.Fatal(err)
			}
			if _, err := m.Read(pid, vmas[0].GetStart(), 1); !errors.Is(err, mem.ErrCompressed) {
				t.Errorf("read: %v", err)
			}
			// decode still works, and every image round-trips byte for byte
			d, err := dump.OpenFS(c.fsys, "test")
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{pagemap, "inventory.img"} {
				b := c.fsys[name].Data
				if got := rewrite(t, b, 0, func(p []byte) []byte { return p }); !bytes.Equal(got, b) {
					t.Errorf("%s: the codec does not write back the bytes it read", name)
				}
				f := d.Kind(map[string]string{pagemap: "PAGEMAP", "inventory.img": "INVENTORY"}[name])[0]
				if msgs, err := f.Messages(); err != nil || len(msgs) == 0 {
					t.Errorf("%s: decode: %d messages, %v", name, len(msgs), err)
				}
			}
		})
	}
}
