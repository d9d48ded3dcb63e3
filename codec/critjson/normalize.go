package critjson

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// normalize appends to dst the canonical form of the wire data b of a
// message of plan p, the bytes a marshaller writes for the message b
// parses into: known fields in field-number order, the last value of a
// singular scalar, the merge of every occurrence of a singular message,
// packed repeated scalars unpacked, varints minimal and truncated to the
// field's type. Unknown fields and fields of a wrong wire type are dropped,
// as crit does not show them. It is the slow path of the encoder, taken
// only for payloads no marshaller wrote; Canonical exposes it to tests.
func normalize(dst, b []byte, p *msgPlan, depth int) ([]byte, error) {
	if depth > maxDepth {
		return dst, errors.New("messages nested too deep")
	}
	for _, f := range p.fields {
		var (
			have   bool
			last   uint64
			lastB  []byte
			merged []byte
		)
		emit := func(dst []byte, v uint64, raw []byte) ([]byte, error) {
			if !f.list {
				have, last, lastB = true, v, raw
				if f.msg != nil {
					merged = append(merged, raw...)
				}
				return dst, nil
			}
			return appendCanon(dst, f, v, raw, depth)
		}
		for rest := b; len(rest) > 0; {
			num, typ, n := protowire.ConsumeTag(rest)
			if n < 0 {
				return dst, wireError(n)
			}
			rest = rest[n:]
			m := protowire.ConsumeFieldValue(num, typ, rest)
			if m < 0 {
				return dst, wireError(m)
			}
			val := rest[:m]
			rest = rest[m:]
			if num != f.num {
				continue
			}
			var err error
			switch {
			case typ == f.wire:
				v, raw, err := scalar(f.wire, val)
				if err != nil {
					return dst, err
				}
				if dst, err = emit(dst, v, raw); err != nil {
					return dst, err
				}
			case f.list && typ == protowire.BytesType && f.wire != protowire.BytesType && f.wire != protowire.StartGroupType:
				packed, _ := protowire.ConsumeBytes(val)
				for len(packed) > 0 {
					k := protowire.ConsumeFieldValue(f.num, f.wire, packed)
					if k < 0 {
						return dst, wireError(k)
					}
					v, _, err := scalar(f.wire, packed[:k])
					if err != nil {
						return dst, err
					}
					packed = packed[k:]
					if dst, err = emit(dst, v, nil); err != nil {
						return dst, err
					}
				}
			}
			if err != nil {
				return dst, err
			}
		}
		if have {
			if f.msg != nil {
				lastB = merged
			}
			var err error
			if dst, err = appendCanon(dst, f, last, lastB, depth); err != nil {
				return dst, err
			}
		}
	}
	return dst, nil
}

// scalar decodes one whole, valid field value of wire type t: the number
// of a varint or fixed field, or the contents of a length-delimited one.
func scalar(t protowire.Type, val []byte) (uint64, []byte, error) {
	switch t {
	case protowire.VarintType:
		v, _ := protowire.ConsumeVarint(val)
		return v, nil, nil
	case protowire.Fixed32Type:
		v, _ := protowire.ConsumeFixed32(val)
		return uint64(v), nil, nil
	case protowire.Fixed64Type:
		v, _ := protowire.ConsumeFixed64(val)
		return v, nil, nil
	case protowire.BytesType:
		v, _ := protowire.ConsumeBytes(val)
		return 0, v, nil
	}
	return 0, nil, errors.New("groups are not supported")
}

// appendCanon appends one canonical field: tag and value.
func appendCanon(dst []byte, f *fieldPlan, v uint64, raw []byte, depth int) ([]byte, error) {
	dst = protowire.AppendTag(dst, f.num, f.wire)
	switch f.wire {
	case protowire.VarintType:
		return protowire.AppendVarint(dst, canonVarint(f.kind, v)), nil
	case protowire.Fixed32Type:
		return protowire.AppendFixed32(dst, uint32(v)), nil
	case protowire.Fixed64Type:
		return protowire.AppendFixed64(dst, v), nil
	}
	if f.msg == nil {
		return protowire.AppendBytes(dst, raw), nil
	}
	body, err := normalize(nil, raw, f.msg, depth+1)
	if err != nil {
		return dst, err
	}
	return protowire.AppendBytes(dst, body), nil
}
