package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec/critjson"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/query"
)

// rulePool holds compiled copies of a script's rules. A compiled rule keeps
// evaluation state while it runs over a dump, so every dump evaluated at
// the same time takes its own copy.
type rulePool struct {
	srcs []query.RuleSource
	free chan []*query.Rule
}

// newRulePool compiles the rules once, which reports their errors, and
// keeps up to jobs copies.
func newRulePool(srcs []query.RuleSource, jobs int) (*rulePool, error) {
	rules, err := query.CompileRules(srcs, query.RuleOptions{})
	if err != nil {
		return nil, err
	}
	p := &rulePool{srcs: srcs, free: make(chan []*query.Rule, max(jobs, 1))}
	p.put(rules)
	return p, nil
}

func (p *rulePool) get() ([]*query.Rule, error) {
	select {
	case r := <-p.free:
		return r, nil
	default:
		return query.CompileRules(p.srcs, query.RuleOptions{})
	}
}

func (p *rulePool) put(rules []*query.Rule) {
	select {
	case p.free <- rules:
	default:
	}
}

// previewRules applies the rules to d, writing nothing, and returns for
// each rule its counts and the changes it makes, as compact JSON. Rules
// apply in order, as critq transform applies them: a rule sees what the
// rules before it of the same kind made of an entry, and its changes are
// told from theirs.
func (p *scriptProgram) previewRules(ctx context.Context, d *dump.Dump) ([]json.RawMessage, error) {
	rules, err := p.rules.get()
	if err != nil {
		return nil, withCode(exitCompile, err)
	}
	defer p.rules.put(rules)
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, p.timeout, fmt.Errorf("timeout after %v", p.timeout))
		defer cancel()
	}
	out := make([]json.RawMessage, len(rules))
	chains := map[*magic.Kind][]*query.Rule{}
	before := map[*magic.Kind]*query.RuleResult{}
	for i, r := range rules {
		chain := append(chains[r.Kind], r)
		chains[r.Kind] = chain
		res, err := query.ApplyRules(ctx, d, chain)
		if err != nil {
			// A rule's error names the rule and the image; a bad image,
			// only the image.
			var ee *query.RuleEvalError
			if errors.As(err, &ee) || ctx.Err() != nil {
				return nil, withCode(exitError, fmt.Errorf("%s: %w", d.Name, err))
			}
			return nil, withCode(exitBadImage, fmt.Errorf("rule %s: %s: %w", r.Source.Where, d.Name, err))
		}
		out[i] = appendRulePreview(nil, res.Stats[len(chain)-1], stepChanges(before[r.Kind], res))
		before[r.Kind] = res
	}
	return out, nil
}

// stepChanges returns what the last rule of a chain changed: the entries
// whose value after the chain (after) differs from their value after the
// rules before it (before, nil for none), in file and entry order.
func stepChanges(before, after *query.RuleResult) []*query.EntryChange {
	type key struct {
		file  string
		index int
	}
	prev := map[key]*query.EntryChange{}
	if before != nil {
		for _, c := range before.Changes {
			prev[key{c.File, c.Index}] = c
		}
	}
	var out []*query.EntryChange
	for _, c := range after.Changes {
		k := key{c.File, c.Index}
		b := prev[k]
		delete(prev, k)
		step := &query.EntryChange{File: c.File, Kind: c.Kind, Index: c.Index, Order: c.Order, Old: c.Old, OldExtra: c.OldExtra}
		switch {
		case b != nil && b.Drop:
			continue // dropped before: the rule never saw it
		case b != nil:
			step.Old, step.OldExtra = b.New, b.NewExtra
			if !c.Drop && proto.Equal(b.New, c.New) && bytes.Equal(b.Extra, c.Extra) {
				continue
			}
		}
		step.Drop, step.New, step.NewExtra = c.Drop, c.New, c.NewExtra
		out = append(out, step)
	}
	// Entries the rule set back to their value in the image.
	for _, b := range prev {
		if !b.Drop {
			out = append(out, &query.EntryChange{File: b.File, Kind: b.Kind, Index: b.Index, Order: b.Order,
				Old: b.New, OldExtra: b.NewExtra, New: b.Old, NewExtra: b.OldExtra})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].File < out[j].File || out[i].File == out[j].File && out[i].Index < out[j].Index
	})
	return out
}

// appendRulePreview appends the value of a rule's record:
// {"kind", "entries", "matched", "changed", "dropped", "changes": [{"image",
// "entry", "field", "old", "new"}, ...]}, old and new in crit's pretty form
// (null for a value that is not there). A dropped entry is one change with
// field null, old the whole entry and new null.
func appendRulePreview(b []byte, st query.RuleStats, changes []*query.EntryChange) []byte {
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
	change := func(c *query.EntryChange, field, old, nw []byte) {
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
