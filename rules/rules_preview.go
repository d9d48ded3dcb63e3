package rules

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/critq/critq/codec/critjson"
	"github.com/critq/critq/internal/annot"
)

// Preview returns, as compact JSON, what rule i of the result did: its
// counts and the changes it made, each told from what the rules before it
// made of the entry. The result must have been made with
// ApplyOptions.Steps. The value is
//
//	{"kind", "entries", "matched", "changed", "dropped",
//	 "changes": [{"image", "entry", "field", "old", "new"}, ...]}
//
// with old and new in crit's pretty form (null for a value that is not
// there). A dropped entry is one change with field null, old the whole
// entry and new null. critq -f prints it for each rule of a script.
func (r *RuleResult) Preview(i int) json.RawMessage {
	var changes []*EntryChange
	if i < len(r.Steps) {
		changes = r.Steps[i]
	}
	return appendPreview(nil, r.Stats[i], changes)
}

func appendPreview(b []byte, st RuleStats, changes []*EntryChange) []byte {
	b = append(b, `{"kind":`...)
	b = annot.AppendJSONString(b, st.Rule.Kind.Name)
	for _, n := range []struct {
		name string
		v    int
	}{{"entries", st.Entries}, {"matched", st.Matched}, {"changed", st.Changed}, {"dropped", st.Dropped}} {
		b = append(b, `,"`...)
		b = append(b, n.name...)
		b = append(b, `":`...)
		b = strconv.AppendInt(b, int64(n.v), 10)
	}
	b = append(b, `,"changes":[`...)
	first := true
	change := func(c *EntryChange, field, old, nw []byte) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"image":`...)
		b = annot.AppendJSONString(b, c.File)
		b = append(b, `,"entry":`...)
		b = strconv.AppendInt(b, int64(c.Index), 10)
		b = append(b, `,"field":`...)
		b = append(b, field...)
		b = append(b, `,"old":`...)
		b = appendCompact(b, old)
		b = append(b, `,"new":`...)
		b = appendCompact(b, nw)
		b = append(b, '}')
	}
	for _, c := range changes {
		if c.Drop {
			old := critjson.AppendMessage(nil, c.Old.ProtoReflect(), critjson.Options{Pretty: true, Order: c.Order})
			change(c, []byte("null"), old, nil)
			continue
		}
		for _, f := range c.Fields() {
			change(c, annot.AppendJSONString(nil, f.Path), []byte(f.Old), []byte(f.New))
		}
	}
	return append(b, "]}"...)
}

// appendCompact appends the JSON value v compacted, or null when v is not
// JSON (a value that is not there).
func appendCompact(b, v []byte) []byte {
	var buf bytes.Buffer
	if len(v) == 0 || json.Compact(&buf, v) != nil {
		return append(b, "null"...)
	}
	return append(b, buf.Bytes()...)
}
