package codec

import (
	"errors"
	"fmt"
)

// Error locates a failure in an image: the file, the entry and the byte
// offset where the entry (or the head, for Entry -1) starts, and the kind.
// Err says what went wrong; it is often a [*SizeError] or wraps
// [io.ErrUnexpectedEOF].
type Error struct {
	File   string // file name as given to the reader, or "<stdin>"
	Kind   string // crit's name of the kind, when known
	Entry  int    // entry index, -1 for the head magics
	Offset int64  // offset of the entry's size word, or of the magic
	Err    error
}

func (e *Error) Error() string {
	var b []byte
	if e.File != "" {
		b = append(b, e.File...)
		b = append(b, ": "...)
	}
	if e.Entry < 0 {
		b = fmt.Appendf(b, "magic at offset %d: ", e.Offset)
	} else {
		if e.Kind != "" {
			b = append(b, e.Kind...)
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "entry %d at offset %d: ", e.Entry, e.Offset)
	}
	b = append(b, e.Err.Error()...)
	return string(b)
}

func (e *Error) Unwrap() error { return e.Err }

// SizeError reports a size read from an image that is larger than the bytes
// left in the file or than the reader's limit.
type SizeError struct {
	What  string // "size", "extra", ...
	Size  uint64
	Limit int64
	Left  bool // whether Limit is the number of bytes left in the file
}

func (e *SizeError) Error() string {
	if e.Left {
		return fmt.Sprintf("%s %d exceeds the %d bytes left in the file", e.What, e.Size, e.Limit)
	}
	return fmt.Sprintf("%s %d exceeds limit %d", e.What, e.Size, e.Limit)
}

// MagicError reports a file whose first bytes are no magic of the table.
type MagicError struct {
	Magic uint32
	Raw   string // a RAW kind the file name suggests ("PAGES"), if any
	What  string // what that raw kind holds
}

func (e *MagicError) Error() string {
	if e.Raw != "" {
		return fmt.Sprintf("raw image (%s, %s): it has no magic and no entries to decode", e.Raw, e.What)
	}
	return fmt.Sprintf("unknown magic %#x: not a CRIU image, or a raw image such as pages-*.img", e.Magic)
}

// ErrNoDecoder is returned for kinds that have a magic but no message type
// (KDAT, CRTOOLS_IMAGES_V1_1).
var ErrNoDecoder = errors.New("kind has no entries critq can decode")
