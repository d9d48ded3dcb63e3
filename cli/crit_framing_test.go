package cli

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/proto/images"
)

// TestFramingRoundTrip: images of big-endian hosts and of version 1 dumps
// decode with a note that names the encode flags that write them back, and
// those flags give the original bytes.
func TestFramingRoundTrip(t *testing.T) {
	pstree, _ := magic.ByName("PSTREE")
	payload, err := proto.Marshal(&images.PstreeEntry{Pid: proto.Uint32(7), Ppid: proto.Uint32(0), Pgid: proto.Uint32(7), Sid: proto.Uint32(7)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		hdr   codec.Header
		flags []string
	}{
		{"big-endian", codec.Header{Kind: pstree, Head: magic.ImgCommon, Order: binary.BigEndian}, []string{"--big-endian"}},
		{"v1", codec.Header{Kind: pstree, Order: binary.LittleEndian}, []string{"--no-head"}},
		{"big-endian v1", codec.Header{Kind: pstree, Order: binary.BigEndian}, []string{"--big-endian", "--no-head"}},
		{"today's", codec.HeaderFor(pstree), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var img bytes.Buffer
			w, err := codec.NewWriter(&img, tt.hdr)
			if err != nil {
				t.Fatal(err)
			}
			w.WriteEntry(payload, nil)
			w.Flush()
			dir := t.TempDir()
			in, js, back := filepath.Join(dir, "pstree.img"), filepath.Join(dir, "pstree.json"), filepath.Join(dir, "back.img")
			if err := os.WriteFile(in, img.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, code := runCLI(t, nil, "decode", "-i", in, "-o", js)
			if code != exitOK {
				t.Fatalf("decode: exit %d: %s", code, stderr)
			}
			if want := strings.Join(tt.flags, " "); want != "" && !strings.Contains(stderr, "encode it back with "+want+"\n") {
				t.Errorf("decode note = %q, want one naming %s", stderr, want)
			} else if want == "" && stderr != "" {
				t.Errorf("decode of today's framing printed %q", stderr)
			}
			args := append([]string{"encode", "-i", js, "-o", back}, tt.flags...)
			if _, stderr, code := runCLI(t, nil, args...); code != exitOK {
				t.Fatalf("encode: exit %d: %s", code, stderr)
			}
			got, _ := os.ReadFile(back)
			if !bytes.Equal(got, img.Bytes()) {
				t.Errorf("encode %v gave % x, want % x", tt.flags, got, img.Bytes())
			}
		})
	}
}

// TestUnknownFieldsWarning: decode warns when crit's JSON leaves out fields
// that CRIU 4.2's schema does not know.
func TestUnknownFieldsWarning(t *testing.T) {
	pstree, _ := magic.ByName("PSTREE")
	payload, _ := proto.Marshal(&images.PstreeEntry{Pid: proto.Uint32(7), Ppid: proto.Uint32(0), Pgid: proto.Uint32(7), Sid: proto.Uint32(7)})
	payload = protowire.AppendVarint(protowire.AppendTag(payload, 99, protowire.VarintType), 1)
	var img bytes.Buffer
	w, _ := codec.NewWriter(&img, codec.HeaderFor(pstree))
	w.WriteEntry(payload, nil)
	w.Flush()
	in := filepath.Join(t.TempDir(), "pstree.img")
	os.WriteFile(in, img.Bytes(), 0o644)
	_, stderr, code := runCLI(t, nil, "decode", "-i", in)
	if code != exitOK || !strings.Contains(stderr, "fields unknown to CRIU 4.2's schema are left out") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("decode: exit %d, stderr %q", code, stderr)
	}
}

func TestMissingFile(t *testing.T) {
	_, stderr, code := runCLI(t, nil, "decode", "-i", "/no/such/image.img")
	if code != exitBadImage || stderr != "critq: /no/such/image.img: no such file or directory\n" {
		t.Errorf("decode of a missing file: exit %d, stderr %q", code, stderr)
	}
}
