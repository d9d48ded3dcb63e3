package critjson

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/magic"
)

// Options select crit's JSON form.
type Options struct {
	// Pretty selects crit's pretty conversions (decode --pretty, show):
	// hex, flag names, device numbers, dict names, IP addresses. Whole
	// documents are then indented by 4 spaces.
	Pretty bool
	// Order is the byte order of the dumping host. It gives the address
	// bytes of (criu).ipadd words and, when writing images, the order of
	// the framing. nil is little-endian; Encode uses the image's own order
	// when Order is nil.
	Order codec.ByteOrder
	// NoPayload replaces extras by their size, as crit show --nopl does.
	NoPayload bool
	// Unknown, when not nil, is set to true by Encode if the image holds
	// fields that the schema does not know (written by a newer CRIU).
	// crit's JSON has no place for them, so they are left out and an
	// image encoded from the JSON will not have them.
	Unknown *bool
}

func (o *Options) order() codec.ByteOrder {
	if o.Order == nil {
		return binary.LittleEndian
	}
	return o.Order
}

// maxDepth bounds the nesting of messages, in images and in JSON.
const maxDepth = 64

// errNonCanonical stops the fast walk over a payload whose fields are not
// laid out as a marshaller writes them (out of order, repeated, packed,
// over-long varints); the payload is then normalized and walked again.
var errNonCanonical = errors.New("non-canonical wire data")

// enc renders wire data as crit's JSON.
type enc struct {
	pretty  bool
	order   codec.ByteOrder
	words   []uint32 // (criu).ipadd words being collected
	scratch []byte   // the text of a pretty integer
	unknown bool     // a field not in the schema was left out
}

// AppendMessage appends m as one JSON object in crit's plain or pretty
// conversions, on one line with Python's separators (", " and ": "). Only
// set fields appear, in field-number order. Indenting the result with
// json.Indent(dst, src, "", "    ") gives crit's pretty layout. A message
// that cannot be marshalled is written as "{}".
func AppendMessage(dst []byte, m protoreflect.Message, o Options) []byte {
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m.Interface())
	if err != nil {
		return append(dst, "{}"...)
	}
	e := enc{pretty: o.Pretty, order: o.order()}
	out, err := e.appendObject(dst, b, planFor(m.Descriptor()), false)
	if err != nil {
		return append(dst, "{}"...)
	}
	return out
}

// AppendPayload appends the serialized message payload of type md as one
// JSON object, as AppendMessage does. It fails only on malformed wire data.
func AppendPayload(dst, payload []byte, md protoreflect.MessageDescriptor, o Options) ([]byte, error) {
	e := enc{pretty: o.Pretty, order: o.order()}
	return e.appendObject(dst, payload, planFor(md), false)
}

func (e *enc) appendObject(dst, b []byte, p *msgPlan, hex bool) ([]byte, error) {
	dst = append(dst, '{')
	dst, _, err := e.appendFieldsOrNormalized(dst, b, p, hex)
	if err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

// appendFieldsOrNormalized appends the fields of b, normalizing b first if
// the fast walk finds it non-canonical. It returns the number of fields
// written.
func (e *enc) appendFieldsOrNormalized(dst, b []byte, p *msgPlan, hex bool) ([]byte, int, error) {
	mark := len(dst)
	dst, n, err := e.appendFields(dst, b, p, hex, 0)
	if err != errNonCanonical {
		return dst, n, err
	}
	norm, err := normalize(nil, b, p, 0)
	if err != nil {
		return dst[:mark], 0, err
	}
	dst, n, err = e.appendFields(dst[:mark], norm, p, hex, 0)
	if err == errNonCanonical {
		err = errors.New("payload cannot be normalized")
	}
	return dst, n, err
}

// appendFields walks the wire data b of a message of plan p and appends its
// fields as `"key": value` pairs separated by ", ". hex is inherited from
// an enclosing field.
func (e *enc) appendFields(dst, b []byte, p *msgPlan, hex bool, depth int) ([]byte, int, error) {
	if depth > maxDepth {
		return dst, 0, errors.New("messages nested too deep")
	}
	var open *fieldPlan // repeated field whose array is open
	prev := protowire.Number(0)
	count := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return dst, count, wireError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return dst, count, wireError(m)
		}
		val := b[n : n+m] // one whole, valid value of wire type typ
		b = b[n+m:]
		f := p.field(num)
		if f == nil {
			e.unknown = true
			continue // unknown fields are not shown, as in crit
		}
		if typ != f.wire || num < prev || num == prev && !f.list {
			return dst, count, errNonCanonical // packed, wrong wire type, out of order
		}
		prev = num
		fhex := hex || f.Hex
		collect := f.list && f.IPAdd && e.pretty
		if open != f {
			if open != nil {
				dst = e.closeList(dst, open, hex)
				open = nil
			}
			if count > 0 {
				dst = append(dst, ", "...)
			}
			count++
			dst = append(dst, f.key...)
			if f.list {
				open = f
				if collect {
					e.words = e.words[:0]
				} else {
					dst = append(dst, '[')
				}
			}
		} else if !collect {
			dst = append(dst, ", "...)
		}
		var err error
		switch f.wire {
		case protowire.VarintType:
			v, _ := protowire.ConsumeVarint(val)
			if len(val) != protowire.SizeVarint(v) || canonVarint(f.kind, v) != v {
				return dst, count, errNonCanonical
			}
			if collect {
				e.words = append(e.words, uint32(v))
				continue
			}
			dst = e.appendVarint(dst, f, v, fhex)
		case protowire.Fixed32Type:
			v, _ := protowire.ConsumeFixed32(val)
			if collect {
				e.words = append(e.words, v)
				continue
			}
			switch f.kind {
			case protoreflect.FloatKind:
				dst = appendFloat(dst, float64(math.Float32frombits(v)))
			case protoreflect.Sfixed32Kind:
				dst = e.appendInt(dst, f, uint64(int64(int32(v))), true, fhex)
			default:
				dst = e.appendInt(dst, f, uint64(v), false, fhex)
			}
		case protowire.Fixed64Type:
			v, _ := protowire.ConsumeFixed64(val)
			switch f.kind {
			case protoreflect.DoubleKind:
				dst = appendFloat(dst, math.Float64frombits(v))
			default:
				dst = e.appendInt(dst, f, v, f.kind == protoreflect.Sfixed64Kind, fhex)
			}
		case protowire.BytesType:
			v, _ := protowire.ConsumeBytes(val)
			switch f.kind {
			case protoreflect.StringKind:
				dst = appendString(dst, v)
			case protoreflect.BytesKind:
				if f.unixName {
					dst = appendString(dst, appendQP(nil, v))
				} else {
					dst = append(dst, '"')
					dst = appendMIME(dst, v)
					dst = append(dst, '"')
				}
			default:
				dst = append(dst, '{')
				dst, _, err = e.appendFields(dst, v, f.msg, fhex, depth+1)
				if err != nil {
					return dst, count, err
				}
				dst = append(dst, '}')
			}
		default:
			return dst, count, errors.New("groups are not supported")
		}
	}
	if open != nil {
		dst = e.closeList(dst, open, hex)
	}
	return dst, count, nil
}

// closeList ends the array of a repeated field. Collected (criu).ipadd
// words are written as crit does: one address in a one-element list.
func (e *enc) closeList(dst []byte, f *fieldPlan, hex bool) []byte {
	if !(f.IPAdd && e.pretty) {
		return append(dst, ']')
	}
	if a, ok := annot.IPAddr(e.words, e.order); ok {
		dst = append(dst, '[')
		dst = appendString(dst, a.String())
		return append(dst, ']')
	}
	// crit fails on 2 or 3 words (bug B14); critq shows the numbers.
	dst = append(dst, '[')
	for i, w := range e.words {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = e.appendInt(dst, f, uint64(w), false, hex || f.Hex)
	}
	return append(dst, ']')
}

// canonVarint returns the value a marshaller writes for varint v read as a
// field of kind k.
func canonVarint(k protoreflect.Kind, v uint64) uint64 {
	switch k {
	case protoreflect.BoolKind:
		if v != 0 {
			return 1
		}
		return 0
	case protoreflect.Int32Kind, protoreflect.EnumKind:
		return uint64(int64(int32(v)))
	case protoreflect.Uint32Kind, protoreflect.Sint32Kind:
		return uint64(uint32(v))
	}
	return v
}

func (e *enc) appendVarint(dst []byte, f *fieldPlan, v uint64, hex bool) []byte {
	switch f.kind {
	case protoreflect.BoolKind:
		if v != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case protoreflect.EnumKind:
		if name, ok := f.enumNames[int32(v)]; ok {
			dst = append(dst, '"')
			dst = append(dst, name...)
			return append(dst, '"')
		}
		// crit fails on numbers without a name (bug B9); critq shows them.
		return strconv.AppendInt(dst, int64(int32(v)), 10)
	case protoreflect.Int32Kind, protoreflect.Int64Kind:
		return e.appendInt(dst, f, v, true, hex)
	case protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		return e.appendInt(dst, f, uint64(protowire.DecodeZigZag(v)), true, hex)
	}
	return e.appendInt(dst, f, v, false, hex)
}

// appendInt appends an integer value; signed says v holds an int64. In
// pretty mode crit's conversions apply (package annot).
func (e *enc) appendInt(dst []byte, f *fieldPlan, v uint64, signed, hex bool) []byte {
	if !e.pretty {
		if signed {
			return strconv.AppendInt(dst, int64(v), 10)
		}
		return strconv.AppendUint(dst, v, 10)
	}
	text, str := f.AppendText(e.scratch[:0], v, signed, hex)
	e.scratch = text
	if str {
		return appendString(dst, text)
	}
	return append(dst, text...)
}

// appendFloat writes a float as Python's repr does for the usual cases.
// CRIU's schema has no floating-point fields.
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
	for _, c := range dst[start:] {
		if c == '.' || c == 'e' {
			return dst
		}
	}
	return append(dst, ".0"...)
}

func wireError(n int) error {
	return fmt.Errorf("payload: %w", protowire.ParseError(n))
}

// Entry renders one entry of an image of kind k as a JSON object (compact,
// Python separators), with its extra in crit's shape for the kind as the
// last key.
func AppendEntry(dst []byte, k *magic.Kind, ent *codec.Entry, o Options) ([]byte, error) {
	e := enc{pretty: o.Pretty, order: o.order()}
	return e.appendEntry(dst, k, ent, &o)
}

func (e *enc) appendEntry(dst []byte, k *magic.Kind, ent *codec.Entry, o *Options) ([]byte, error) {
	mark := len(dst)
	dst = append(dst, '{')
	dst, n, err := e.appendFieldsOrNormalized(dst, ent.Payload, planFor(ent.Type.Descriptor()), false)
	if err != nil {
		return dst[:mark], err
	}
	if !hasExtraKey(k, ent, o.NoPayload) {
		return append(dst, '}'), nil
	}
	if n > 0 {
		dst = append(dst, ", "...)
	}
	dst = append(dst, `"extra": `...)
	parts, err := codec.SplitExtra(k, e.order, ent)
	if err != nil {
		return dst[:mark], err
	}
	if o.NoPayload {
		dst = appendString(dst, "... <"+annot.CritSize(payloadSize(k, parts))+">")
		return append(dst, '}'), nil
	}
	switch k.Extra {
	case magic.ExtraTCPStream:
		dst = append(dst, `{"inq": "`...)
		dst = appendMIME(dst, parts.InQ)
		dst = append(dst, `", "outq": "`...)
		dst = appendMIME(dst, parts.OutQ)
		dst = append(dst, `"}`...)
	case magic.ExtraIPCSem:
		dst = append(dst, '[')
		for i, v := range parts.Sems {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = strconv.AppendUint(dst, uint64(v), 10)
		}
		dst = append(dst, ']')
	case magic.ExtraIPCMsg:
		plain := enc{order: e.order} // crit shows messages in plain form
		msgPlan := planFor(ipcMsgDesc())
		dst = append(dst, '[')
		for i, m := range parts.Msgs {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			if dst, err = plain.appendObject(dst, m, msgPlan, false); err != nil {
				return dst[:mark], fmt.Errorf("message %d: %w", i, err)
			}
			dst = append(dst, `, "`...)
			dst = appendMIME(dst, parts.MsgTexts[i])
			dst = append(dst, '"')
		}
		dst = append(dst, ']')
	default:
		dst = append(dst, '"')
		dst = appendMIME(dst, parts.Data)
		dst = append(dst, '"')
	}
	return append(dst, '}'), nil
}

// hasExtraKey reports whether crit's JSON of the entry has an "extra" key.
// Ghost files have it on entry 0 when not chunked and on chunk entries;
// IPC shm entries only when the segment is inline (not in_pagemaps: crit
// misreads those, bug B8). show --nopl drops it for ghost files.
func hasExtraKey(k *magic.Kind, ent *codec.Entry, noPayload bool) bool {
	switch k.Extra {
	case magic.ExtraNone:
		return false
	case magic.ExtraGhostFile:
		return ent.Extra != nil && !noPayload
	case magic.ExtraIPCShm:
		return ent.Extra != nil
	}
	return true
}

// payloadSize is the size crit's show --nopl prints for an extra.
func payloadSize(k *magic.Kind, p codec.ExtraParts) uint64 {
	switch k.Extra {
	case magic.ExtraTCPStream:
		return uint64(len(p.InQ) + len(p.OutQ))
	case magic.ExtraIPCSem:
		return 2 * uint64(len(p.Sems))
	case magic.ExtraIPCMsg:
		var n uint64
		for i := range p.Msgs {
			n += uint64(len(p.Msgs[i]) + len(p.MsgTexts[i]))
		}
		return n
	}
	return uint64(len(p.Data))
}

func ipcMsgDesc() protoreflect.MessageDescriptor {
	mt, err := protoregistry.GlobalTypes.FindMessageByName("critq.images.ipc_msg")
	if err != nil {
		panic("critjson: the schema has no ipc_msg")
	}
	return mt.Descriptor()
}

// Encode writes the image read by r as crit's JSON document
// {"magic": NAME, "entries": [...]}: on one line with Python's separators,
// or indented by 4 spaces when o.Pretty is set. No newline follows the
// document. It stops at the first error of r or w.
func Encode(w io.Writer, r *codec.Reader, o Options) error {
	if o.Order == nil {
		o.Order = r.Header().Order
	}
	k := r.Kind()
	e := enc{pretty: o.Pretty, order: o.order()}
	var buf, entry []byte
	if o.Pretty {
		buf = append(buf, "{\n    \"magic\": "...)
		buf = appendString(buf, k.Name)
		buf = append(buf, ",\n    \"entries\": ["...)
	} else {
		buf = append(buf, `{"magic": `...)
		buf = appendString(buf, k.Name)
		buf = append(buf, `, "entries": [`...)
	}
	n := 0
	for {
		ent, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		// Grow once to about the size of the entry's JSON: a large entry
		// (the VMAs of an mm image) would otherwise be copied at each
		// doubling.
		est := min(6*len(ent.Payload)+2*len(ent.Extra), 1<<28)
		if o.Pretty {
			entry = slices.Grow(entry[:0], est)
			buf = slices.Grow(buf, 3*est)
			entry, err = e.appendEntry(entry, k, ent, &o)
			if err != nil {
				return entryError(r, ent, err)
			}
			if n > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, "\n        "...)
			buf = appendIndent(buf, entry, 2)
		} else {
			if n > 0 {
				buf = append(buf, ", "...)
			}
			buf = slices.Grow(buf, est)
			buf, err = e.appendEntry(buf, k, ent, &o)
			if err != nil {
				return entryError(r, ent, err)
			}
		}
		n++
		if len(buf) >= 64<<10 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	switch {
	case !o.Pretty:
		buf = append(buf, "]}"...)
	case n == 0:
		buf = append(buf, "]\n}"...)
	default:
		buf = append(buf, "\n    ]\n}"...)
	}
	if e.unknown && o.Unknown != nil {
		*o.Unknown = true
	}
	_, err := w.Write(buf)
	return err
}

func entryError(r *codec.Reader, ent *codec.Entry, err error) error {
	h := r.Header()
	return &codec.Error{File: r.Name(), Kind: h.Kind.Name, Entry: ent.Index, Offset: ent.Offset, Err: err}
}

// appendIndent appends compact JSON src (as this package writes it) laid
// out as Python's json.dump with indent=4 does, starting at depth levels of
// indentation: one value per line, "," and ": " separators, [] and {} for
// empty containers.
func appendIndent(dst, src []byte, depth int) []byte {
	const indent = "                                                                "
	newline := func(dst []byte) []byte {
		dst = append(dst, '\n')
		for n := 4 * depth; n > 0; n -= len(indent) {
			dst = append(dst, indent[:min(n, len(indent))]...)
		}
		return dst
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case '"':
			j := i + 1
			for ; j < len(src) && src[j] != '"'; j++ {
				if src[j] == '\\' {
					j++
				}
			}
			dst = append(dst, src[i:j+1]...)
			i = j
		case '{', '[':
			if i+1 < len(src) && (src[i+1] == '}' || src[i+1] == ']') {
				dst = append(dst, c, src[i+1])
				i++
				continue
			}
			dst = append(dst, c)
			depth++
			dst = newline(dst)
		case '}', ']':
			depth--
			dst = newline(dst)
			dst = append(dst, c)
		case ',':
			dst = append(dst, ',')
			dst = newline(dst)
			if i+1 < len(src) && src[i+1] == ' ' {
				i++
			}
		case ':':
			dst = append(dst, ':', ' ')
			if i+1 < len(src) && src[i+1] == ' ' {
				i++
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
