// Package testimg writes small CRIU images for tests, through critq's own
// codec.Writer, so that they are framed as CRIU frames them.
package testimg

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/magic"
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
