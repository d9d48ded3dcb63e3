package critjson

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/codec"
)

// seedFiles adds the small files of the test dumps whose names match keep.
func seedFiles(f *testing.F, keep func(name string) bool) {
	paths, _ := filepath.Glob("../../testdata/dumps/*/*")
	golden, _ := filepath.Glob("../../testdata/dumps/*/golden/*")
	for _, p := range append(paths, golden...) {
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Size() > 8<<10 || !keep(filepath.Base(p)) {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzDecodeJSON feeds images to the JSON encoder: no panic; the JSON
// critq writes always parses back; the image written from it renders the
// same JSON; and it is the original byte for byte whenever the original is
// canonical (payloads as a marshaller writes them, zero padding).
func FuzzDecodeJSON(f *testing.F) {
	seedFiles(f, func(n string) bool { return !strings.HasSuffix(n, ".json") && !strings.HasSuffix(n, ".txt") })
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := codec.NewBytesReader(data, codec.ReadOptions{MaxSize: 1 << 20, MaxExtra: 1 << 20})
		if err != nil {
			return
		}
		entries, err := r.ReadAll()
		if err != nil {
			return
		}
		hdr := r.Header()
		if hdr.Kind.OneEntry() && len(entries) > 1 {
			// Encode refuses it (CRIU reads only the first entry).
			doc, err := encodeImage(data, Options{Order: hdr.Order})
			if err == nil {
				if _, err := Decode(doc, Options{Order: hdr.Order}); err == nil {
					t.Fatalf("Decode accepted %d entries of a one-entry kind", len(entries))
				}
			}
			return
		}
		canonical := true
		for _, e := range entries {
			norm, err := normalize(nil, e.Payload, planFor(e.Type.Descriptor()), 0)
			if err != nil || !bytes.Equal(norm, e.Payload) {
				canonical = false
			}
			parts, err := codec.SplitExtra(hdr.Kind, hdr.Order, e)
			if err != nil || !bytes.Equal(codec.JoinExtra(hdr.Kind, hdr.Order, parts), e.Extra) {
				canonical = false
			}
		}
		for _, pretty := range []bool{false, true} {
			o := Options{Pretty: pretty, Order: hdr.Order}
			doc, err := encodeImage(data, o)
			if err != nil {
				if canonical {
					t.Fatalf("Encode(pretty=%v) of a canonical image: %v", pretty, err)
				}
				return
			}
			img, err := Decode(doc, o)
			if err != nil {
				t.Fatalf("Decode(Encode(pretty=%v)): %v\n%s", pretty, err, doc)
			}
			var out bytes.Buffer
			if err := img.Write(&out, hdr); err != nil {
				if canonical {
					t.Fatalf("Write(Decode(Encode(pretty=%v))) of a canonical image: %v\n%s", pretty, err, doc)
				}
				return
			}
			if canonical && !bytes.Equal(out.Bytes(), data) {
				t.Fatalf("round trip (pretty=%v) changed the image:\n got % x\nwant % x", pretty, out.Bytes(), data)
			}
			doc2, err := encodeImage(out.Bytes(), o)
			if err != nil || !bytes.Equal(doc, doc2) {
				t.Fatalf("JSON of the rewritten image differs (%v):\n%s\n%s", err, doc, doc2)
			}
		}
	})
}

func encodeImage(data []byte, o Options) ([]byte, error) {
	r, err := codec.NewBytesReader(data, codec.ReadOptions{MaxSize: 1 << 20, MaxExtra: 1 << 20})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	err = Encode(&out, r, o)
	return out.Bytes(), err
}

// FuzzEncodeJSON feeds arbitrary text to the JSON parser: no panic, and an
// image it accepts and writes reads back and renders as JSON.
func FuzzEncodeJSON(f *testing.F) {
	seedFiles(f, func(n string) bool { return strings.HasSuffix(n, ".json") })
	f.Add([]byte(`{"magic": "IPCNS_SEM", "entries": [{"desc": {"key": 1, "uid": 0, "gid": 0, "cuid": 0, "cgid": 0, "mode": 0, "id": 0}, "nsems": 2, "extra": [1, 2]}]}`))
	f.Add([]byte(`{"entries": [{"inq_len": 1, "outq_len": 0, "extra": {"inq": "YQ==", "outq": ""}}], "magic": "TCP_STREAM"}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		if len(doc) > 64<<10 {
			return
		}
		img, err := Decode(doc, Options{})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error on more than one line: %q", err)
			}
			return
		}
		var out bytes.Buffer
		if err := img.Write(&out, codec.HeaderFor(img.Kind)); err != nil {
			return
		}
		if _, err := encodeImage(out.Bytes(), Options{Pretty: true}); err != nil {
			t.Fatalf("the image written from accepted JSON does not render: %v", err)
		}
		if err := Encode(io.Discard, mustReader(t, out.Bytes()), Options{}); err != nil {
			t.Fatal(err)
		}
	})
}

func mustReader(t *testing.T, b []byte) *codec.Reader {
	r, err := codec.NewBytesReader(b, codec.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
