package mem

import (
	"errors"
	"testing"

	"github.com/critq/critq/codec"
)

// FuzzCompressedCheck checks arbitrary pagemap payloads for the compressed
// format: no panic, and a refusal is always an ErrCompressed.
func FuzzCompressedCheck(f *testing.F) {
	f.Add([]byte{0x08, 0x01}, []byte{0x08, 0x80, 0x80, 0x04, 0x10, 0x01, 0x20, 0x04})
	f.Add([]byte{0x08, 0x01}, []byte{0x08, 0x00, 0x10, 0x01, 0x20, 0x0c, 0x32, 0x02, 0x01, 0x02})
	f.Add([]byte{}, []byte{0xff})
	f.Fuzz(func(t *testing.T, head, entry []byte) {
		err := checkPagemap("pagemap-1.img", []*codec.Entry{{Index: 0, Payload: head}, {Index: 1, Offset: 14, Payload: entry}})
		if err != nil && !errors.Is(err, ErrCompressed) {
			t.Errorf("%v is not ErrCompressed", err)
		}
	})
}
