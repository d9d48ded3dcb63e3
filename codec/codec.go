// Package codec reads and writes CRIU image files: the head magics, the
// framing of entries (a 4-byte size and a serialized protobuf message) and
// the raw bytes that some kinds put after an entry (pipe and socket queue
// data, TCP queues, ghost-file contents, BPF map data, SysV IPC contents).
//
// A [Reader] yields [Entry] values that keep the bytes exactly as they are in
// the file, so that a [Writer] given the same entries writes the same bytes.
// Messages are unmarshalled only on request ([Entry.Message]). Which message
// type and which extra rule apply comes from the kind's row in package
// magic; the codec has no per-kind code besides the extra rules.
//
// Images are untrusted input. Every size read from an image is checked
// against the bytes left in the file (when the length of the input is known)
// and against a configurable limit before anything is allocated, and every
// failure is an [*Error] that names the file, the entry and its offset.
//
// The byte order of the framing is the dumping host's. A reader detects it
// from the first magic; images of s390x hosts are big-endian.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/magic"
)

var (
	errEOF           = io.EOF
	errUnexpectedEOF = io.ErrUnexpectedEOF
)

// Default limits of ReadOptions.
const (
	DefaultMaxSize  = 64 << 20 // one serialized message
	DefaultMaxExtra = 4 << 30  // the raw bytes after one entry
)

// ReadOptions configure a Reader. The zero value is ready to use.
type ReadOptions struct {
	// Name is the file name used in errors; "" for none.
	Name string
	// Size is the length of the input when known (a regular file), or 0
	// when unknown. Sizes in the image are checked against what is left.
	Size int64
	// MaxSize bounds the size of one message. 0 means DefaultMaxSize.
	MaxSize int64
	// MaxExtra bounds the raw bytes after one entry. 0 means DefaultMaxExtra.
	MaxExtra int64
	// Kind forces the kind when the magic is shared (SHMEM_PAGEMAP). The
	// magic read must still be Kind's magic.
	Kind *magic.Kind
}

// Header describes the magics at the start of an image.
type Header struct {
	Kind *magic.Kind
	// Head is the head magic found (magic.ImgCommon or magic.ImgService),
	// or 0 when the image has none (inventory.img, version 1 images).
	Head  uint32
	Order ByteOrder
}

// Len returns the number of bytes the magics take.
func (h Header) Len() int64 {
	if h.Head != 0 {
		return 8
	}
	return 4
}

// Append appends the magics to b.
func (h Header) Append(b []byte) []byte {
	if h.Head != 0 {
		b = h.Order.AppendUint32(b, h.Head)
	}
	return h.Order.AppendUint32(b, h.Kind.Magic)
}

// Entry is one entry of an image as it is in the file.
type Entry struct {
	Index  int   // position in the image, from 0
	Offset int64 // offset of the entry's size word
	// Payload is the serialized message.
	Payload []byte
	// Extra is the raw bytes that follow the message, padding included;
	// nil for kinds without extras.
	Extra []byte
	// Type is the message type of the payload.
	Type protoreflect.MessageType
}

// Len returns the number of bytes the entry takes in the file.
func (e *Entry) Len() int64 { return 4 + int64(len(e.Payload)) + int64(len(e.Extra)) }

// Message unmarshals the payload into a new message of e.Type.
func (e *Entry) Message() (proto.Message, error) {
	m := e.Type.New().Interface()
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(e.Payload, m); err != nil {
		return nil, err
	}
	return m, nil
}

// Reader reads the entries of one image.
type Reader struct {
	src   source
	hdr   Header
	name  string
	max   int64
	x     extraReader
	index int
	err   error
	slab  []Entry // entries are allocated in blocks
}

// NewReader reads the magics of an image from r and returns a Reader for its
// entries. r need not be seekable. When r holds the whole image in memory
// use [NewBytesReader], which does not copy.
func NewReader(r io.Reader, opts ReadOptions) (*Reader, error) {
	size := opts.Size
	if size <= 0 {
		size = -1
	}
	return newReader(newStreamSource(r, size), opts)
}

// NewBytesReader returns a Reader over an image held in memory. Entries
// share b's memory.
func NewBytesReader(b []byte, opts ReadOptions) (*Reader, error) {
	return newReader(&bytesSource{b: b}, opts)
}

func newReader(src source, opts ReadOptions) (*Reader, error) {
	rd := &Reader{src: src, name: opts.Name, max: opts.MaxSize}
	if rd.max <= 0 {
		rd.max = DefaultMaxSize
	}
	maxExtra := opts.MaxExtra
	if maxExtra <= 0 {
		maxExtra = DefaultMaxExtra
	}
	hdr, err := readHeader(src, opts.Kind)
	if err != nil {
		// The kind magic that failed follows a head magic, at offset 4.
		var off int64
		if hdr.Head != 0 {
			off = 4
		}
		return nil, &Error{File: opts.Name, Entry: -1, Offset: off, Err: err}
	}
	rd.hdr = hdr
	rd.x = extraReader{src: src, order: hdr.Order, maxExtra: maxExtra}
	return rd, nil
}

func readHeader(src source, want *magic.Kind) (Header, error) {
	b, err := src.take(4)
	if err != nil {
		if err == io.EOF {
			return Header{}, errors.New("empty file: no magic")
		}
		return Header{}, errors.New("file too short for a magic")
	}
	var h Header
	for _, order := range [...]ByteOrder{binary.LittleEndian, binary.BigEndian} {
		v := order.Uint32(b)
		if v == magic.ImgCommon || v == magic.ImgService {
			h.Head, h.Order = v, order
			break
		}
		if k, ok := magic.Lookup(v); ok {
			h.Kind, h.Order = k, order
			break
		}
	}
	if h.Order == nil {
		return h, &MagicError{Magic: binary.LittleEndian.Uint32(b)}
	}
	if h.Kind == nil {
		b, err := src.take(4)
		if err != nil {
			return h, errors.New("file ends after the head magic")
		}
		v := h.Order.Uint32(b)
		k, ok := magic.Lookup(v)
		if !ok {
			return h, &MagicError{Magic: v}
		}
		h.Kind = k
	}
	if want != nil {
		if want.Magic != h.Kind.Magic {
			return h, errors.New("magic " + h.Kind.Name + " where " + want.Name + " was expected")
		}
		h.Kind = want
	}
	if h.Kind.Entry == nil {
		return h, fmt.Errorf("%s: %w", h.Kind.Name, ErrNoDecoder)
	}
	return h, nil
}

// Header returns the magics read by NewReader.
func (r *Reader) Header() Header { return r.hdr }

// Name returns the file name given in ReadOptions.
func (r *Reader) Name() string { return r.name }

// Kind returns the kind of the image.
func (r *Reader) Kind() *magic.Kind { return r.hdr.Kind }

// Next returns the next entry. It returns io.EOF, unwrapped, only at a clean
// end of the image: after the last entry and before any byte of another.
// Any other failure, a truncated entry included, is an [*Error]; after an
// error Next returns the same error again.
func (r *Reader) Next() (*Entry, error) {
	if r.err != nil {
		return nil, r.err
	}
	e, err := r.next()
	if err != nil {
		if err != io.EOF {
			err = &Error{File: r.name, Kind: r.hdr.Kind.Name, Entry: r.index, Offset: e.Offset, Err: err}
		}
		r.err = err
		return nil, err
	}
	r.index++
	return e, nil
}

func (r *Reader) next() (*Entry, error) {
	if len(r.slab) == 0 {
		r.slab = make([]Entry, 64)
	}
	e := &r.slab[0]
	r.slab = r.slab[1:]
	*e = Entry{Index: r.index, Offset: r.src.offset(), Type: r.hdr.Kind.MessageFor(r.index)}
	if r.x.ghostRaw {
		return e, io.EOF
	}
	b, err := r.src.take(4)
	if err != nil {
		if err == io.EOF {
			return e, io.EOF
		}
		return e, errors.New("truncated size word")
	}
	size := uint64(r.hdr.Order.Uint32(b))
	if left := r.src.left(); left >= 0 && size > uint64(left) {
		return e, &SizeError{What: "size", Size: size, Limit: left, Left: true}
	}
	if size > uint64(r.max) {
		return e, &SizeError{What: "size", Size: size, Limit: r.max}
	}
	if e.Payload, err = r.src.take(int(size)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return e, err
	}
	if e.Payload == nil {
		e.Payload = []byte{}
	}
	if e.Extra, err = extraRules[r.hdr.Kind.Extra](&r.x, e.Payload, e.Index); err != nil {
		return e, err
	}
	return e, nil
}

// ReadAll reads every entry of an image.
func (r *Reader) ReadAll() ([]*Entry, error) {
	var out []*Entry
	for {
		e, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

// ByteOrder is binary.LittleEndian or binary.BigEndian.
type ByteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}
