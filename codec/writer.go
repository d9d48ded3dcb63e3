package codec

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/magic"
)

// Writer writes an image. Entries are checked before they are written: a
// payload that is not well-formed protobuf wire data, or an extra whose
// length does not follow from the payload, is refused, so a Writer never
// writes an image its Reader would reject.
type Writer struct {
	w     *bufio.Writer
	hdr   Header
	index int
	off   int64
	err   error
	ghost bool // a ghost file's raw contents were written: nothing may follow
}

// NewWriter writes the magics of hdr to w. hdr.Head 0 writes no head magic
// (inventory.img, version 1 images); a nil hdr.Order is little-endian.
// Use [HeaderFor] for the header CRIU writes today.
func NewWriter(w io.Writer, hdr Header) (*Writer, error) {
	if hdr.Kind == nil || hdr.Kind.Raw || hdr.Kind.Entry == nil {
		return nil, fmt.Errorf("codec: cannot write kind %v", hdr.Kind)
	}
	if hdr.Order == nil {
		hdr.Order = binary.LittleEndian
	}
	wr := &Writer{w: bufio.NewWriterSize(w, 64<<10), hdr: hdr}
	b := hdr.Append(nil)
	if _, err := wr.w.Write(b); err != nil {
		return nil, err
	}
	wr.off = int64(len(b))
	return wr, nil
}

// HeaderFor returns the header CRIU 4.2 writes for kind k: IMG_SERVICE
// before STATS and IRMAP_CACHE, nothing before INVENTORY, IMG_COMMON before
// everything else; little-endian.
func HeaderFor(k *magic.Kind) Header {
	return Header{Kind: k, Head: k.HeadMagic(), Order: binary.LittleEndian}
}

// WriteEntry writes one entry: the size word, payload, then extra.
func (w *Writer) WriteEntry(payload, extra []byte) error {
	if w.err != nil {
		return w.err
	}
	if err := w.check(payload, extra); err != nil {
		return &Error{Kind: w.hdr.Kind.Name, Entry: w.index, Offset: w.off, Err: err}
	}
	var size [4]byte
	w.hdr.Order.PutUint32(size[:], uint32(len(payload)))
	for _, b := range [][]byte{size[:], payload, extra} {
		if _, err := w.w.Write(b); err != nil {
			w.err = err
			return err
		}
	}
	w.off += 4 + int64(len(payload)) + int64(len(extra))
	w.index++
	return nil
}

// WriteMessage marshals m and writes it with extra.
func (w *Writer) WriteMessage(m proto.Message, extra []byte) error {
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
	if err != nil {
		return &Error{Kind: w.hdr.Kind.Name, Entry: w.index, Offset: w.off, Err: err}
	}
	return w.WriteEntry(b, extra)
}

func (w *Writer) check(payload, extra []byte) error {
	if w.ghost {
		return fmt.Errorf("nothing may follow the contents of a ghost file without chunks")
	}
	if uint64(len(payload)) > 0xffffffff {
		return &SizeError{What: "size", Size: uint64(len(payload)), Limit: 0xffffffff}
	}
	if err := validWire(payload); err != nil {
		return fmt.Errorf("payload is not a valid %s: %w", w.hdr.Kind.MessageFor(w.index).Descriptor().Name(), err)
	}
	x := extraReader{src: &bytesSource{b: extra}, order: w.hdr.Order, maxExtra: int64(len(extra))}
	got, err := extraRules[w.hdr.Kind.Extra](&x, payload, w.index)
	if err != nil {
		return fmt.Errorf("extra does not match the entry: %w", err)
	}
	if len(got) != len(extra) {
		return fmt.Errorf("extra has %d bytes, the entry says %d", len(extra), len(got))
	}
	w.ghost = x.ghostRaw
	return nil
}

// validWire checks that b is a sequence of well-formed protobuf fields.
func validWire(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

// Flush writes buffered data to the underlying writer.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	w.err = w.w.Flush()
	return w.err
}
