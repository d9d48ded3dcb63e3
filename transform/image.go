package transform

import (
	"bytes"
	"fmt"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
)

// Change is what happens to one entry of an image.
type Change struct {
	Drop    bool   // remove the entry
	Payload []byte // the new serialized message (when not Drop)
	Extra   []byte // the new raw bytes after it
}

// RewriteImage returns the bytes of img with changes applied, by entry
// index. Entries without a change are copied as they are in the file, not
// re-encoded; the header (head magic, byte order) is kept. The result is
// checked by the codec's writer, which refuses extras that do not match
// their entries.
func RewriteImage(name string, img *dump.Image, changes map[int]*Change) ([]byte, error) {
	var buf bytes.Buffer
	w, err := codec.NewWriter(&buf, img.Header)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for i, e := range img.Entries {
		payload, extra := e.Payload, e.Extra
		if c, ok := changes[i]; ok {
			if c.Drop {
				continue
			}
			payload, extra = c.Payload, c.Extra
		}
		if err := w.WriteEntry(payload, extra); err != nil {
			if ce, ok := err.(*codec.Error); ok {
				ce.File = name
			}
			return nil, err
		}
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
