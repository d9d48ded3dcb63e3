package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/critq/critq/codec/critjson"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/rules"
)

// previewRules applies the rules to d, writing nothing, and returns for
// each rule its counts and the changes it makes, as compact JSON. Rules
// apply in order, as critq transform applies them: a rule sees what the
// rules before it of the same kind made of an entry, and its changes are
// told from theirs (one pass: RuleResult.Steps).
func (p *scriptProgram) previewRules(ctx context.Context, d *dump.Dump) ([]json.RawMessage, error) {
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, p.timeout, fmt.Errorf("timeout after %v", p.timeout))
		defer cancel()
	}
	res, err := rules.ApplyRulesWith(ctx, d, p.rules, rules.ApplyOptions{Steps: true})
	if err != nil {
		// A rule's error names the rule and the image; a bad image,
		// only the image.
		var ee *rules.RuleEvalError
		if errors.As(err, &ee) || ctx.Err() != nil {
			return nil, withCode(exitError, fmt.Errorf("%s: %w", d.Name, err))
		}
		return nil, withCode(exitBadImage, fmt.Errorf("%s: %w", d.Name, err))
	}
	out := make([]json.RawMessage, len(p.rules))
	for i := range p.rules {
		out[i] = appendRulePreview(nil, res.Stats[i], res.Steps[i])
	}
	return out, nil
}

// appendRulePreview appends the value of a rule's record:
// {"kind", "entries", "matched", "changed", "dropped", "changes": [{"image",
// "entry", "field", "old", "new"}, ...]}, old and new in crit's pretty form
// (null for a value that is not there). A dropped entry is one change with
// field null, old the whole entry and new null.
func appendRulePreview(b []byte, st rules.RuleStats, changes []*rules.EntryChange) []byte {
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
	change := func(c *rules.EntryChange, field, old, nw []byte) {
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
