package critjson_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/codec/critjson"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/proto/images"
)

// TestUnknownFields: a field the schema does not know (from a newer CRIU)
// is left out of crit's JSON, as crit does, and Encode says so.
func TestUnknownFields(t *testing.T) {
	k, _ := magic.ByName("PSTREE")
	payload, err := proto.Marshal(&images.PstreeEntry{Pid: proto.Uint32(1), Ppid: proto.Uint32(0), Pgid: proto.Uint32(1), Sid: proto.Uint32(1)})
	if err != nil {
		t.Fatal(err)
	}
	withUnknown := protowire.AppendVarint(protowire.AppendTag(append([]byte(nil), payload...), 99, protowire.VarintType), 7)
	for _, tt := range []struct {
		name    string
		payload []byte
		want    bool
	}{{"known", payload, false}, {"unknown", withUnknown, true}} {
		var img bytes.Buffer
		w, _ := codec.NewWriter(&img, codec.HeaderFor(k))
		if err := w.WriteEntry(tt.payload, nil); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		for _, pretty := range []bool{false, true} {
			r, err := codec.NewReader(bytes.NewReader(img.Bytes()), codec.ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var unknown bool
			if err := critjson.Encode(io.Discard, r, critjson.Options{Pretty: pretty, Unknown: &unknown}); err != nil {
				t.Fatal(err)
			}
			if unknown != tt.want {
				t.Errorf("%s (pretty %v): Unknown = %v, want %v", tt.name, pretty, unknown, tt.want)
			}
		}
	}
	// No image of the corpus has fields CRIU 4.2's schema lacks.
	data, err := os.ReadFile("../../testdata/dumps/tcp/core-19347.img")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := codec.NewBytesReader(data, codec.ReadOptions{})
	var unknown bool
	if err := critjson.Encode(io.Discard, r, critjson.Options{Unknown: &unknown}); err != nil || unknown {
		t.Errorf("core-19347.img: unknown %v, err %v", unknown, err)
	}
}
