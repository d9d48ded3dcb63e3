package rules

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/critq/critq/codec/critjson"
)

// FieldChange is one changed field of an entry, its values in crit's pretty
// JSON form ("127.0.0.1", "O_RDWR", 0x1f). Old or New is "(unset)" for a
// field or element that is absent on that side.
type FieldChange struct {
	Path     string // "reg.name", "isk.src_addr[0]", "extra"
	Old, New string
}

// unset stands for an absent value in a FieldChange.
const unset = "(unset)"

// Fields returns the changed fields of a change that is not a drop, in
// field order: the leaves that differ between crit's pretty JSON of the old
// and the new entry. A repeated field whose length changed shows the
// elements removed and added between the common head and tail.
func (c *EntryChange) Fields() []FieldChange {
	if c.Drop {
		return nil
	}
	o := critjson.Options{Pretty: true, Order: c.Order}
	old := critjson.AppendMessage(nil, c.Old.ProtoReflect(), o)
	nw := critjson.AppendMessage(nil, c.New.ProtoReflect(), o)
	var out []FieldChange
	a, errA := parseJSONTree(old)
	b, errB := parseJSONTree(nw)
	if errA != nil || errB != nil {
		out = append(out, FieldChange{Path: "(entry)", Old: string(old), New: string(nw)})
	} else {
		out = diffJSON(out, "", a, b)
	}
	for _, x := range []struct {
		name string
		a, b []byte
	}{{extraData, c.OldExtra.Data, c.NewExtra.Data}, {extraInQ, c.OldExtra.InQ, c.NewExtra.InQ}, {extraOutQ, c.OldExtra.OutQ, c.NewExtra.OutQ}} {
		if !bytes.Equal(x.a, x.b) {
			out = append(out, FieldChange{Path: x.name, Old: bytesJSON(x.a), New: bytesJSON(x.b)})
		}
	}
	return out
}

// DiffJSON compares two JSON documents (crit's, or critq's in crit's form)
// and returns the leaves that differ, with paths such as
// "entries[3].reg.name". Object keys are compared by name, arrays as Fields
// does. It fails when either document is not JSON.
func DiffJSON(a, b []byte) ([]FieldChange, error) {
	ta, err := parseJSONTree(a)
	if err != nil {
		return nil, err
	}
	tb, err := parseJSONTree(b)
	if err != nil {
		return nil, err
	}
	return diffJSON(nil, "", ta, tb), nil
}

// bytesJSON renders bytes as crit renders extras: a base64 string.
func bytesJSON(b []byte) string {
	return strconv.Quote(base64.StdEncoding.EncodeToString(b))
}

// jsonNode is a parsed JSON value that keeps the order of object keys.
type jsonNode struct {
	keys []string    // object keys, in order
	kids []*jsonNode // object values or array elements
	arr  bool
	obj  bool
	raw  string // compact JSON of the whole value
}

// parseJSONTree parses one JSON value.
func parseJSONTree(b []byte) (*jsonNode, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := parseJSONNode(dec, b, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return n, nil
}

func parseJSONNode(dec *json.Decoder, src []byte, depth int) (*jsonNode, error) {
	if depth > 100 {
		return nil, errors.New("too deep")
	}
	start := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	n := &jsonNode{}
	switch tok {
	case json.Delim('{'):
		n.obj = true
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			kid, err := parseJSONNode(dec, src, depth+1)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k)
			n.kids = append(n.kids, kid)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
	case json.Delim('['):
		n.arr = true
		for dec.More() {
			kid, err := parseJSONNode(dec, src, depth+1)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, kid)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	raw := bytes.TrimLeft(src[start:dec.InputOffset()], " ,:\t\n")
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	n.raw = buf.String()
	return n, nil
}

func (n *jsonNode) get(key string) *jsonNode {
	for i, k := range n.keys {
		if k == key {
			return n.kids[i]
		}
	}
	return nil
}

func (n *jsonNode) text() string {
	if n == nil {
		return unset
	}
	return n.raw
}

// diffJSON appends the leaves that differ between a and b.
func diffJSON(out []FieldChange, path string, a, b *jsonNode) []FieldChange {
	switch {
	case a == nil && b == nil, a != nil && b != nil && a.raw == b.raw:
		return out
	case a != nil && b != nil && a.obj && b.obj:
		for i, k := range a.keys {
			out = diffJSON(out, joinPath(path, k), a.kids[i], b.get(k))
		}
		for i, k := range b.keys {
			if a.get(k) == nil {
				out = diffJSON(out, joinPath(path, k), nil, b.kids[i])
			}
		}
		return out
	case a != nil && b != nil && a.arr && b.arr:
		// Common head and tail; what is between is changed element by
		// element when the lengths agree, removed and added otherwise.
		la, lb := len(a.kids), len(b.kids)
		p := 0
		for p < la && p < lb && a.kids[p].raw == b.kids[p].raw {
			p++
		}
		s := 0
		for s < la-p && s < lb-p && a.kids[la-1-s].raw == b.kids[lb-1-s].raw {
			s++
		}
		if la == lb {
			for i := p; i < la-s; i++ {
				out = diffJSON(out, path+"["+strconv.Itoa(i)+"]", a.kids[i], b.kids[i])
			}
			return out
		}
		for i := p; i < la-s; i++ {
			out = append(out, FieldChange{Path: path + "[" + strconv.Itoa(i) + "]", Old: a.kids[i].raw, New: unset})
		}
		for i := p; i < lb-s; i++ {
			out = append(out, FieldChange{Path: path + "[" + strconv.Itoa(i) + "]", Old: unset, New: b.kids[i].raw})
		}
		return out
	}
	return append(out, FieldChange{Path: path, Old: a.text(), New: b.text()})
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// String returns what a rule did over a dump:
// "FILES: 20 entries, 3 matched, 3 changed (1 dropped)".
func (s RuleStats) String() string {
	out := fmt.Sprintf("%s: %d entries, %d matched, %d changed", s.Rule.Target(), s.Entries, s.Matched, s.Changed)
	if s.Dropped > 0 {
		out += fmt.Sprintf(" (%d dropped)", s.Dropped)
	}
	return out
}

// WriteDiff writes the changes of r as critq transform --dry-run prints
// them: a line "IMAGE: entry N" for each changed entry, then a line
// "    PATH: OLD -> NEW" for each changed field (see Fields), or
// "IMAGE: entry N: dropped".
func (r *RuleResult) WriteDiff(w io.Writer) error {
	var b []byte
	for _, ch := range r.Changes {
		b = fmt.Appendf(b, "%s: entry %d", ch.File, ch.Index)
		if ch.Drop {
			b = append(b, ": dropped\n"...)
			continue
		}
		b = append(b, '\n')
		for _, f := range ch.Fields() {
			b = fmt.Appendf(b, "    %s: %s -> %s\n", f.Path, f.Old, f.New)
		}
	}
	_, err := w.Write(b)
	return err
}
