package critjson

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/magic"
)

// Image is an image parsed from crit's JSON: its kind and its entries as
// they go into the file.
type Image struct {
	Kind    *magic.Kind
	Entries []Entry
}

// Entry is one entry of an Image: the serialized message and the raw bytes
// that follow it (padding included; nil for none).
type Entry struct {
	Payload []byte
	Extra   []byte
}

// Write writes the image to w with the magics of hdr; use
// codec.HeaderFor(img.Kind) for what CRIU writes. Every entry is checked by
// the codec.Writer before it is written.
func (img *Image) Write(w io.Writer, hdr codec.Header) error {
	hdr.Kind = img.Kind
	cw, err := codec.NewWriter(w, hdr)
	if err != nil {
		return err
	}
	for _, e := range img.Entries {
		if err := cw.WriteEntry(e.Payload, e.Extra); err != nil {
			return err
		}
	}
	return cw.Flush()
}

// Decode parses a crit JSON document, plain or pretty, into an image. Both
// forms and both spellings of task states are accepted (see the package
// documentation); o.Order gives the byte order of ipadd words and of IPC
// extras, and o.Pretty is ignored. Errors are a [*SyntaxError] or a
// [*ValueError].
func Decode(doc []byte, o Options) (*Image, error) {
	d := &decoder{scanner: scanner{data: doc}, order: o.order()}
	var magicAt, entriesAt = -1, -1
	var name []byte
	err := d.object(func(key []byte, at int) error {
		switch string(key) {
		case "magic", "entries":
			if (key[0] == 'm' && magicAt >= 0) || (key[0] == 'e' && entriesAt >= 0) {
				return d.valueErr(at, "duplicate key %q", key)
			}
		}
		switch string(key) {
		case "magic":
			magicAt = d.pos
			var err error
			d.push("magic", -1)
			if d.peek() != '"' {
				return d.valueErr(d.pos, "expected a string, got %s", d.kindOf())
			}
			name, err = d.str()
			d.pop()
			return err
		case "entries":
			entriesAt = d.pos
			return d.skip(0)
		}
		return d.valueErr(at, "unknown key %q", key)
	})
	if err != nil {
		return nil, err
	}
	if err := d.trailing(); err != nil {
		return nil, err
	}
	if magicAt < 0 {
		return nil, d.valueErr(0, `no "magic" key`)
	}
	k, ok := magic.ByName(string(name))
	if !ok {
		d.push("magic", -1)
		return nil, d.valueErr(magicAt, "unknown magic %q", name)
	}
	if k.Raw || k.Entry == nil {
		d.push("magic", -1)
		return nil, d.valueErr(magicAt, "kind %s has no entries to encode", name)
	}
	img := &Image{Kind: k}
	if entriesAt < 0 {
		return img, nil // crit writes "entries" always; no entries is an empty image
	}
	d.pos = entriesAt
	d.push("entries", -1)
	err = d.array(func(i int) error {
		d.push("", i)
		defer d.pop()
		if i > 0 && k.OneEntry() {
			return d.valueErr(d.pos, "a %s image holds one entry (CRIU reads only the first)", k.Name)
		}
		e, err := d.entry(k, i, len(img.Entries) > 0 && img.chunked())
		if err != nil {
			return err
		}
		img.Entries = append(img.Entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return img, nil
}

// chunked reports whether entry 0 of a ghost file says chunks.
func (img *Image) chunked() bool {
	if img.Kind.Extra != magic.ExtraGhostFile {
		return false
	}
	return fieldValue(img.Kind.MessageFor(0).Descriptor(), img.Entries[0].Payload, "chunks") != 0
}

func (d *decoder) trailing() error {
	if d.peek() != 0 {
		return d.syntaxErr(d.pos, "data after the document")
	}
	return nil
}

// UnmarshalMessage parses one JSON object in crit's plain or pretty form
// into m, which it resets first.
func UnmarshalMessage(b []byte, m protoreflect.Message, o Options) error {
	d := &decoder{scanner: scanner{data: b}, order: o.order()}
	payload, _, err := d.message(nil, planFor(m.Descriptor()), 0, false)
	if err != nil {
		return err
	}
	if err := d.trailing(); err != nil {
		return err
	}
	proto.Reset(m.Interface())
	return proto.UnmarshalOptions{AllowPartial: true}.Unmarshal(payload, m.Interface())
}

type decoder struct {
	scanner
	order codec.ByteOrder
	bufs  [][]byte // scratch for message bodies, per depth
	segs  [][]seg  // fields written, per depth
}

// seg is a field written to the output: its number and byte range.
type seg struct {
	num        protowire.Number
	start, end int
	key        int // offset of the key, for errors
}

// entry parses one entry object and its extra.
func (d *decoder) entry(k *magic.Kind, i int, chunked bool) (Entry, error) {
	payload, extraAt, err := d.message(nil, planFor(k.MessageFor(i).Descriptor()), 0, k.Extra != magic.ExtraNone)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Payload: payload}
	if k.Extra == magic.ExtraNone {
		return e, nil
	}
	end := d.pos
	if extraAt >= 0 {
		d.pos = extraAt
	}
	d.push("extra", -1)
	e.Extra, err = d.extra(k, i, chunked, payload, extraAt >= 0)
	d.pop()
	d.pos = end
	return e, err
}

// message parses an object of plan p and appends its wire form to dst,
// fields in number order. With extraOK the key "extra" is allowed and its
// value's offset returned (-1 when absent); the value is skipped.
func (d *decoder) message(dst []byte, p *msgPlan, depth int, extraOK bool) ([]byte, int, error) {
	if depth > maxDepth {
		return dst, -1, d.valueErr(d.pos, "nested too deep")
	}
	if d.peek() != '{' {
		return dst, -1, d.valueErr(d.pos, "expected an object, got %s", d.kindOf())
	}
	for len(d.segs) <= depth {
		d.segs = append(d.segs, nil)
	}
	segs := d.segs[depth][:0]
	base := len(dst)
	extraAt := -1
	err := d.object(func(key []byte, at int) error {
		f := p.byName[string(key)]
		if f == nil {
			if extraOK && string(key) == "extra" {
				if extraAt >= 0 {
					return d.valueErr(at, "duplicate key \"extra\"")
				}
				extraAt = d.pos
				return d.skip(depth + 1)
			}
			d.push(string(key), -1)
			defer d.pop()
			return d.valueErr(at, "unknown field of %s", p.desc.Name())
		}
		d.push(f.name, -1)
		defer d.pop()
		s := seg{num: f.num, start: len(dst), key: at}
		var err error
		if dst, err = d.field(dst, f, depth); err != nil {
			return err
		}
		s.end = len(dst)
		segs = append(segs, s)
		return nil
	})
	d.segs[depth] = segs
	if err != nil {
		return dst, -1, err
	}
	sorted := true
	for i := 1; i < len(segs); i++ {
		if segs[i].num <= segs[i-1].num {
			sorted = false
			break
		}
	}
	if sorted {
		return dst, extraAt, nil
	}
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].num < segs[j].num })
	for i := 1; i < len(segs); i++ {
		if segs[i].num == segs[i-1].num {
			return dst, -1, d.valueErr(segs[i].key, "duplicate field %s", p.field(segs[i].num).name)
		}
	}
	tmp := append([]byte(nil), dst[base:]...)
	dst = dst[:base]
	for _, s := range segs {
		dst = append(dst, tmp[s.start-base:s.end-base]...)
	}
	return dst, extraAt, nil
}

// field parses the value of field f and appends it with its tag.
func (d *decoder) field(dst []byte, f *fieldPlan, depth int) ([]byte, error) {
	if !f.list {
		return d.one(dst, f, depth)
	}
	if d.peek() != '[' {
		return dst, d.valueErr(d.pos, "expected an array, got %s", d.kindOf())
	}
	if f.IPAdd {
		save := d.pos
		d.pos++
		if d.peek() == '"' {
			return d.ipadd(dst, f, save)
		}
		d.pos = save
	}
	err := d.array(func(i int) error {
		d.push("", i)
		defer d.pop()
		var err error
		dst, err = d.one(dst, f, depth)
		return err
	})
	return dst, err
}

// ipadd parses ["1.2.3.4"] or ["::1"] into one or four words whose bytes,
// in the image's byte order, are the address.
func (d *decoder) ipadd(dst []byte, f *fieldPlan, at int) ([]byte, error) {
	d.pos = at
	var addrs [][]byte
	err := d.array(func(i int) error {
		s, err := d.str()
		addrs = append(addrs, s)
		return err
	})
	if err != nil {
		return dst, err
	}
	if len(addrs) != 1 {
		return dst, d.valueErr(at, "expected one address, got %d", len(addrs))
	}
	words, err := annot.ParseIP(string(addrs[0]), d.order)
	if err != nil {
		return dst, d.valueErr(at, "invalid IP address %q", addrs[0])
	}
	for _, w := range words {
		dst = protowire.AppendTag(dst, f.num, f.wire)
		dst = protowire.AppendVarint(dst, uint64(w))
	}
	return dst, nil
}

// one parses one value of field f (an element, for repeated fields).
func (d *decoder) one(dst []byte, f *fieldPlan, depth int) ([]byte, error) {
	at := d.pos
	if f.msg != nil {
		for len(d.bufs) <= depth+1 {
			d.bufs = append(d.bufs, nil)
		}
		body, _, err := d.message(d.bufs[depth+1][:0], f.msg, depth+1, false)
		d.bufs[depth+1] = body
		if err != nil {
			return dst, err
		}
		dst = protowire.AppendTag(dst, f.num, protowire.BytesType)
		return protowire.AppendBytes(dst, body), nil
	}
	dst = protowire.AppendTag(dst, f.num, f.wire)
	switch f.kind {
	case protoreflect.StringKind, protoreflect.BytesKind:
		if d.peek() != '"' {
			return dst, d.valueErr(at, "expected a string, got %s", d.kindOf())
		}
		s, err := d.str()
		if err != nil {
			return dst, err
		}
		switch {
		case f.kind == protoreflect.StringKind:
		case f.unixName:
			s = decodeQP(s)
		default:
			if s, err = decodeBase64(s); err != nil {
				return dst, d.valueErr(at, "%v", err)
			}
		}
		return protowire.AppendBytes(dst, s), nil
	case protoreflect.BoolKind:
		lit, err := d.literal()
		if err != nil || lit == "null" {
			d.pos = at
			return dst, d.valueErr(at, "expected true or false, got %s", d.kindOf())
		}
		return protowire.AppendVarint(dst, protowire.EncodeBool(lit == "true")), nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		num, err := d.number()
		if err != nil {
			return dst, d.valueErr(at, "expected a number, got %s", d.kindOf())
		}
		v, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			return dst, d.valueErr(at, "invalid number %s", num)
		}
		if f.kind == protoreflect.FloatKind {
			return protowire.AppendFixed32(dst, math.Float32bits(float32(v))), nil
		}
		return protowire.AppendFixed64(dst, math.Float64bits(v)), nil
	case protoreflect.EnumKind:
		if d.peek() == '"' {
			s, err := d.str()
			if err != nil {
				return dst, err
			}
			v, ok := f.enumValues[string(s)]
			if !ok {
				return dst, d.valueErr(at, "unknown %s value %q", f.name, s)
			}
			return protowire.AppendVarint(dst, uint64(int64(v))), nil
		}
	}
	v, err := d.integer(f, at)
	if err != nil {
		return dst, err
	}
	switch f.kind {
	case protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		return protowire.AppendVarint(dst, protowire.EncodeZigZag(int64(v))), nil
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		return protowire.AppendFixed32(dst, uint32(v)), nil
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return protowire.AppendFixed64(dst, v), nil
	}
	return protowire.AppendVarint(dst, v), nil
}

// integer parses an integer value of field f: a JSON number, or a string
// as crit's encoder reads it (7.9): "major:minor" for dev fields, flag names
// and literals joined by "|" for flags, dict names, task states in both
// spellings, else Python's int(s, 0). The result is the value as a
// marshaller writes it for f's type (sign-extended for signed types).
func (d *decoder) integer(f *fieldPlan, at int) (uint64, error) {
	var (
		neg bool
		mag uint64
		ok  bool
	)
	switch d.peek() {
	case '"':
		s, err := d.str()
		if err != nil {
			return 0, err
		}
		if neg, mag, ok = f.ParseText(string(s)); !ok {
			return 0, d.valueErr(at, "invalid value %q for %s", s, f.name)
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		num, err := d.number()
		if err != nil {
			return 0, err
		}
		if neg, mag, ok = annot.PyInt(string(num)); !ok || bytes.ContainsAny(num, ".eE") {
			return 0, d.valueErr(at, "%s is not an integer", num)
		}
	default:
		return 0, d.valueErr(at, "expected an integer, got %s", d.kindOf())
	}
	v, ok := fitKind(f.kind, neg, mag)
	if !ok {
		sign := ""
		if neg {
			sign = "-"
		}
		return 0, d.valueErr(at, "%s%d out of range for %s", sign, mag, f.kind)
	}
	return v, nil
}

// fitKind checks that ±mag fits a field of kind k and returns it as a
// marshaller writes it.
func fitKind(k protoreflect.Kind, neg bool, mag uint64) (uint64, bool) {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.EnumKind:
		if neg {
			return uint64(-int64(mag)), mag <= 1<<31
		}
		return mag, mag < 1<<31
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return mag, !neg && mag <= math.MaxUint32
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if neg {
			return -mag, mag <= 1<<63
		}
		return mag, mag < 1<<63
	}
	return mag, !neg
}

// extra parses the "extra" value of entry i (given says whether the key is
// present) and returns the bytes that follow the entry.
func (d *decoder) extra(k *magic.Kind, i int, chunked bool, payload []byte, given bool) ([]byte, error) {
	at := d.pos
	mt := k.MessageFor(i).Descriptor()
	var p codec.ExtraParts
	switch k.Extra {
	case magic.ExtraTCPStream:
		if !given {
			break
		}
		err := d.objectKeys(map[string]*[]byte{"inq": &p.InQ, "outq": &p.OutQ})
		if err != nil {
			return nil, err
		}
		inq, outq := fieldValue(mt, payload, "inq_len"), fieldValue(mt, payload, "outq_len")
		if uint64(len(p.InQ)) != inq || uint64(len(p.OutQ)) != outq {
			return nil, d.valueErr(at, "queues of %d and %d bytes, the entry says inq_len %d and outq_len %d", len(p.InQ), len(p.OutQ), inq, outq)
		}
	case magic.ExtraIPCSem:
		if given {
			err := d.array(func(j int) error {
				d.push("", j)
				defer d.pop()
				v, err := d.integer(&fieldPlan{name: "semaphore", kind: protoreflect.Uint32Kind}, d.pos)
				if err == nil && v > math.MaxUint16 {
					err = d.valueErr(d.pos, "semaphore value %d exceeds 65535", v)
				}
				p.Sems = append(p.Sems, uint16(v))
				return err
			})
			if err != nil {
				return nil, err
			}
		}
		if n := fieldValue(mt, payload, "nsems"); uint64(len(p.Sems)) != n {
			return nil, d.valueErr(at, "%d semaphore values, the entry says nsems %d", len(p.Sems), n)
		}
	case magic.ExtraIPCMsg:
		if given {
			if err := d.messages(&p); err != nil {
				return nil, err
			}
		}
		if n := fieldValue(mt, payload, "qnum"); uint64(len(p.Msgs)) != n {
			return nil, d.valueErr(at, "%d messages, the entry says qnum %d", len(p.Msgs), n)
		}
	default:
		data, err := d.data(given)
		if err != nil {
			return nil, err
		}
		switch k.Extra {
		case magic.ExtraIPCShm:
			if fieldValue(mt, payload, "in_pagemaps") != 0 {
				if len(data) > 0 {
					return nil, d.valueErr(at, "the segment is in pagemaps (in_pagemaps): no data may follow")
				}
				return nil, nil // crit writes "" here (bug B8)
			}
			if size := fieldValue(mt, payload, "size"); uint64(len(data)) != size {
				return nil, d.valueErr(at, "%d bytes of segment, the entry says size %d", len(data), size)
			}
			if data == nil {
				data = []byte{}
			}
		case magic.ExtraGhostFile:
			if i == 0 && fieldValue(mt, payload, "chunks") != 0 {
				if len(data) > 0 {
					return nil, d.valueErr(at, "a chunked ghost file has its data after the chunk entries")
				}
				return nil, nil
			}
			if i > 0 && !chunked {
				return nil, d.valueErr(at, "only chunked ghost files have more than one entry")
			}
		}
		p.Data = data
	}
	return codec.JoinExtra(k, d.order, p), nil
}

// data parses an extra given as one base64 string.
func (d *decoder) data(given bool) ([]byte, error) {
	if !given {
		return nil, nil
	}
	at := d.pos
	if d.peek() != '"' {
		return nil, d.valueErr(at, "expected a base64 string, got %s", d.kindOf())
	}
	s, err := d.str()
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(s, []byte("... <")) {
		return nil, d.valueErr(at, "the data was left out (show --nopl): nothing to encode")
	}
	b, err := decodeBase64(s)
	if err != nil {
		return nil, d.valueErr(at, "%v", err)
	}
	return b, nil
}

// objectKeys parses an object whose keys are all in fields, each holding
// base64 data.
func (d *decoder) objectKeys(fields map[string]*[]byte) error {
	if d.peek() != '{' {
		return d.valueErr(d.pos, "expected an object, got %s", d.kindOf())
	}
	seen := map[string]bool{}
	return d.object(func(key []byte, at int) error {
		d.push(string(key), -1)
		defer d.pop()
		dst, ok := fields[string(key)]
		if !ok {
			return d.valueErr(at, "unknown key")
		}
		if seen[string(key)] {
			return d.valueErr(at, "duplicate key")
		}
		seen[string(key)] = true
		b, err := d.data(true)
		*dst = b
		return err
	})
}

// messages parses IPCNS_MSG's flat array [msg, text, msg, text, ...].
func (d *decoder) messages(p *codec.ExtraParts) error {
	msgPlan := planFor(ipcMsgDesc())
	if d.peek() != '[' {
		return d.valueErr(d.pos, "expected an array, got %s", d.kindOf())
	}
	return d.array(func(j int) error {
		d.push("", j)
		defer d.pop()
		at := d.pos
		if j%2 == 0 {
			msg, _, err := d.message(nil, msgPlan, 1, false)
			p.Msgs = append(p.Msgs, msg)
			return err
		}
		text, err := d.data(true)
		if err != nil {
			return err
		}
		msize := fieldValue(msgPlan.desc, p.Msgs[len(p.Msgs)-1], "msize")
		if uint64(len(text)) != msize {
			return d.valueErr(at, "%d bytes of text, the message says msize %d", len(text), msize)
		}
		p.MsgTexts = append(p.MsgTexts, text)
		return nil
	})
}

// fieldValue returns the value of a named varint field of a payload of
// type md, 0 when unset.
func fieldValue(md protoreflect.MessageDescriptor, payload []byte, name string) uint64 {
	f := planFor(md).byName[name]
	if f == nil {
		return 0
	}
	var v uint64
	for b := payload; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return v
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return v
		}
		if num == f.num && typ == protowire.VarintType {
			v, _ = protowire.ConsumeVarint(b)
		}
		b = b[m:]
	}
	return v
}

// String returns a short description of the image, for tests and logs.
func (img *Image) String() string {
	return fmt.Sprintf("%s image of %d entries", img.Kind.Name, len(img.Entries))
}
