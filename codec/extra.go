package codec

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/critq/critq/magic"
)

// An extraRule reads the raw bytes that follow one entry. It gets the
// entry's payload and index and returns the bytes as they are in the file,
// padding included. One rule per magic.Extra serves the reader, the writer
// (which checks an entry's extra by reading it back with the same rule) and
// the splitters below.
type extraRule func(x *extraReader, payload []byte, index int) ([]byte, error)

var extraRules = [...]extraRule{
	magic.ExtraNone:      func(*extraReader, []byte, int) ([]byte, error) { return nil, nil },
	magic.ExtraPipeData:  lengthField("bytes", 2),
	magic.ExtraSkQueue:   lengthField("length", 2),
	magic.ExtraBPFMap:    sumFields(2, 3),
	magic.ExtraTCPStream: sumFields(1, 3),
	magic.ExtraGhostFile: readGhostExtra,
	magic.ExtraIPCSem:    readSemExtra,
	magic.ExtraIPCMsg:    readMsgExtra,
	magic.ExtraIPCShm:    readShmExtra,
}

// extraReader is what a rule reads from.
type extraReader struct {
	src      source
	order    ByteOrder
	maxExtra int64
	ghostRaw bool // GHOST_FILE entry 0 without chunks: rest of file follows
}

// take reads n bytes after checking n against the limits.
func (x *extraReader) take(what string, n uint64) ([]byte, error) {
	if left := x.src.left(); left >= 0 && n > uint64(left) {
		return nil, &SizeError{What: what, Size: n, Limit: left, Left: true}
	}
	if n > uint64(x.maxExtra) {
		return nil, &SizeError{What: what, Size: n, Limit: x.maxExtra}
	}
	b, err := x.src.take(int(n))
	if errors.Is(err, errEOF) {
		err = errUnexpectedEOF
	}
	return b, err
}

func lengthField(name string, num protowire.Number) extraRule {
	return func(x *extraReader, payload []byte, _ int) ([]byte, error) {
		n, err := wireUint(payload, num)
		if err != nil {
			return nil, err
		}
		return x.take(name, n)
	}
}

func sumFields(a, b protowire.Number) extraRule {
	return func(x *extraReader, payload []byte, _ int) ([]byte, error) {
		n1, err := wireUint(payload, a)
		if err != nil {
			return nil, err
		}
		n2, err := wireUint(payload, b)
		if err != nil {
			return nil, err
		}
		return x.take("extra", n1+n2)
	}
}

// readGhostExtra: entry 0 is a ghost_file_entry; without chunks the file's
// contents follow it up to the end of the image. With chunks, each later
// ghost_chunk_entry is followed by len bytes.
func readGhostExtra(x *extraReader, payload []byte, index int) ([]byte, error) {
	if index == 0 {
		chunks, err := wireUint(payload, 9)
		if err != nil {
			return nil, err
		}
		if chunks != 0 {
			return nil, nil
		}
		x.ghostRaw = true
		b, err := x.src.rest(x.maxExtra)
		if b == nil && err == nil {
			b = []byte{}
		}
		return b, err
	}
	n, err := wireUint(payload, 1)
	if err != nil {
		return nil, err
	}
	return x.take("chunk len", n)
}

func pad8(n uint64) uint64 { return (n + 7) &^ 7 }

func readSemExtra(x *extraReader, payload []byte, _ int) ([]byte, error) {
	n, err := wireUint(payload, 2)
	if err != nil {
		return nil, err
	}
	if n > 1<<40 {
		return nil, &SizeError{What: "nsems", Size: n, Limit: 1 << 40}
	}
	return x.take("semaphore values", pad8(2*n))
}

func readShmExtra(x *extraReader, payload []byte, _ int) ([]byte, error) {
	inPagemaps, err := wireUint(payload, 3)
	if err != nil {
		return nil, err
	}
	if inPagemaps != 0 {
		return nil, nil
	}
	size, err := wireUint(payload, 2)
	if err != nil {
		return nil, err
	}
	if size > 1<<62 {
		return nil, &SizeError{What: "segment size", Size: size, Limit: 1 << 62}
	}
	return x.take("segment", (size+3)&^3)
}

// readMsgExtra reads qnum messages: u32 size, an ipc_msg of that size, then
// msize bytes of text padded to 8.
func readMsgExtra(x *extraReader, payload []byte, _ int) ([]byte, error) {
	qnum, err := wireUint(payload, 3)
	if err != nil {
		return nil, err
	}
	var out []byte
	for i := uint64(0); i < qnum; i++ {
		hdr, err := x.take("message size", 4)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		size := uint64(x.order.Uint32(hdr))
		msg, err := x.take("message", size)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		msize, err := wireUint(msg, 2)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		text, err := x.take("message text", pad8(msize))
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		out = append(out, hdr...)
		out = append(out, msg...)
		out = append(out, text...)
	}
	return out, nil
}

// wireUint returns the last value of a varint field of a serialized message,
// or 0 when the field is absent. It decodes nothing else.
func wireUint(b []byte, want protowire.Number) (uint64, error) {
	var v uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, fmt.Errorf("payload: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num == want && typ == protowire.VarintType {
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, fmt.Errorf("payload: %w", protowire.ParseError(n))
			}
			v, b = x, b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, fmt.Errorf("payload: %w", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return v, nil
}

// ExtraParts splits the extra of an entry into the pieces crit shows.
type ExtraParts struct {
	Data     []byte   // PIPES_DATA, FIFO_DATA, SK_QUEUES, BPFMAP_DATA, GHOST_FILE, IPCNS_SHM (padding dropped)
	InQ      []byte   // TCP_STREAM receive queue
	OutQ     []byte   // TCP_STREAM send queue
	Sems     []uint16 // IPCNS_SEM values (padding dropped)
	Msgs     [][]byte // IPCNS_MSG: serialized ipc_msg of each message
	MsgTexts [][]byte // IPCNS_MSG: text of each message (padding dropped)
}

// SplitExtra splits e's extra by the rule of kind k.
func SplitExtra(k *magic.Kind, order ByteOrder, e *Entry) (ExtraParts, error) {
	var p ExtraParts
	switch k.Extra {
	case magic.ExtraTCPStream:
		inq, err := wireUint(e.Payload, 1)
		if err != nil {
			return p, err
		}
		if inq > uint64(len(e.Extra)) {
			return p, errors.New("inq_len exceeds the extra")
		}
		p.InQ, p.OutQ = e.Extra[:inq], e.Extra[inq:]
	case magic.ExtraIPCSem:
		n, err := wireUint(e.Payload, 2)
		if err != nil {
			return p, err
		}
		if 2*n > uint64(len(e.Extra)) {
			return p, errors.New("nsems exceeds the extra")
		}
		p.Sems = make([]uint16, n)
		for i := range p.Sems {
			p.Sems[i] = order.Uint16(e.Extra[2*i:])
		}
	case magic.ExtraIPCShm:
		size, err := wireUint(e.Payload, 2)
		if err != nil {
			return p, err
		}
		if e.Extra != nil {
			if size > uint64(len(e.Extra)) {
				return p, errors.New("size exceeds the extra")
			}
			p.Data = e.Extra[:size]
		}
	case magic.ExtraIPCMsg:
		b := e.Extra
		for len(b) > 0 {
			if len(b) < 4 {
				return p, errors.New("short message header")
			}
			size := uint64(order.Uint32(b))
			b = b[4:]
			if size > uint64(len(b)) {
				return p, errors.New("short message")
			}
			msg := b[:size]
			b = b[size:]
			msize, err := wireUint(msg, 2)
			if err != nil {
				return p, err
			}
			if pad8(msize) > uint64(len(b)) {
				return p, errors.New("short message text")
			}
			p.Msgs = append(p.Msgs, msg)
			p.MsgTexts = append(p.MsgTexts, b[:msize])
			b = b[pad8(msize):]
		}
	default:
		p.Data = e.Extra
	}
	return p, nil
}

// JoinExtra is the inverse of SplitExtra: it builds the bytes that follow an
// entry from its parts, adding CRIU's zero padding.
func JoinExtra(k *magic.Kind, order ByteOrder, p ExtraParts) []byte {
	switch k.Extra {
	case magic.ExtraTCPStream:
		out := make([]byte, 0, len(p.InQ)+len(p.OutQ))
		return append(append(out, p.InQ...), p.OutQ...)
	case magic.ExtraIPCSem:
		out := make([]byte, pad8(uint64(2*len(p.Sems))))
		for i, v := range p.Sems {
			order.PutUint16(out[2*i:], v)
		}
		return out
	case magic.ExtraIPCShm:
		if p.Data == nil {
			return nil
		}
		out := make([]byte, (len(p.Data)+3)&^3)
		copy(out, p.Data)
		return out
	case magic.ExtraIPCMsg:
		var out []byte
		for i, msg := range p.Msgs {
			out = order.AppendUint32(out, uint32(len(msg)))
			out = append(out, msg...)
			var text []byte
			if i < len(p.MsgTexts) {
				text = p.MsgTexts[i]
			}
			out = append(out, text...)
			out = append(out, make([]byte, pad8(uint64(len(text)))-uint64(len(text)))...)
		}
		return out
	}
	return p.Data
}
