package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/panics"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/query"
)

// RuleStats counts what one rule did over a dump.
type RuleStats struct {
	Rule    *Rule
	Entries int // entries the rule was evaluated on
	Matched int // entries it returned a with() result or drop() for
	Changed int // entries whose value it changed, dropped ones included
	Dropped int
}

// EntryChange is one entry that the rules change.
type EntryChange struct {
	File  string
	Kind  *magic.Kind
	Index int
	Order codec.ByteOrder // of the image
	// Rule is the last rule that changed or dropped the entry.
	Rule *Rule

	Old      proto.Message
	OldExtra codec.ExtraParts
	// New is the new message, nil when the entry is dropped.
	New      proto.Message
	NewExtra codec.ExtraParts
	Drop     bool

	// Payload and Extra are the new bytes of the entry (not Drop).
	Payload, Extra []byte
}

// RuleResult is what a list of rules does to a dump.
type RuleResult struct {
	Stats []RuleStats
	// Changes are the changed entries, by file name, then index.
	Changes []*EntryChange
	// Steps, with ApplyOptions.Steps, holds for each rule the entries it
	// changed, by file name, then index: Old is the entry as the rule got
	// it (from the image or the rules before it), New what it returned.
	Steps [][]*EntryChange
}

// ChangedFiles returns the names of the files with changes, in order.
func (r *RuleResult) ChangedFiles() []string {
	var out []string
	for _, c := range r.Changes {
		if len(out) == 0 || out[len(out)-1] != c.File {
			out = append(out, c.File)
		}
	}
	return out
}

// RuleEvalError is a rule that fails on an entry.
type RuleEvalError struct {
	Where  string // the rule
	File   string
	Entry  int
	Offset int64
	Err    error
}

func (e *RuleEvalError) Error() string {
	return fmt.Sprintf("%s: entry %d at offset 0x%x: %s: %v", e.File, e.Entry, e.Offset, e.Where, e.Err)
}

func (e *RuleEvalError) Unwrap() error { return e.Err }

// ApplyRules evaluates rules over the images of d. Rules of the same kind
// apply in order, each to what the ones before it made of an entry; a
// dropped entry is seen by no later rule. Nothing is written: the result
// holds the new bytes of each changed entry, checked (required fields set,
// sizes within the codec's limits, extras that match their entries).
// Errors are wrapped as a query's are: an image that cannot be read is a
// *query.DumpError (around the codec's error); a rule failing on an entry
// (a *RuleEvalError) and a cancelled ctx are a *query.EvalError. Both name
// the dump.
func ApplyRules(ctx context.Context, d *dump.Dump, rules []*Rule) (*RuleResult, error) {
	return ApplyRulesWith(ctx, d, rules, ApplyOptions{})
}

// ApplyOptions configure ApplyRulesWith.
type ApplyOptions struct {
	// AllowPartial accepts new entries whose required fields are not all
	// set (transform --force): they are encoded as they are.
	AllowPartial bool
	// Steps records what each rule changed in RuleResult.Steps.
	Steps bool
}

// ApplyRulesWith is ApplyRules with options.
func ApplyRulesWith(ctx context.Context, d *dump.Dump, rules []*Rule, o ApplyOptions) (*RuleResult, error) {
	res := &RuleResult{Stats: make([]RuleStats, len(rules))}
	var kinds []*magic.Kind
	byKind := map[*magic.Kind][]int{}
	for i, r := range rules {
		res.Stats[i].Rule = r
		if byKind[r.Kind] == nil {
			kinds = append(kinds, r.Kind)
		}
		byKind[r.Kind] = append(byKind[r.Kind], i)
	}
	var changes []*EntryChange
	var steps [][]*EntryChange
	if o.Steps {
		steps = make([][]*EntryChange, len(rules))
	}
	for _, k := range kinds {
		for _, f := range d.Kind(k.Name) {
			cs, err := applyFile(ctx, f, rules, byKind[k], res.Stats, steps, o)
			if err != nil {
				return nil, applyError(ctx, d, err)
			}
			changes = append(changes, cs...)
		}
	}
	// Files of different kinds come in kind order; sort by name.
	sortChanges(changes)
	res.Changes = changes
	for _, st := range steps {
		sortChanges(st)
	}
	res.Steps = steps
	return res, nil
}

func sortChanges(cs []*EntryChange) {
	// Within a file the changes are in index order already.
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].File < cs[j].File })
}

// parallelMin is the number of entries below which an image is evaluated
// by one goroutine.
const parallelMin = 4096

// applyError wraps an error of applying rules to d as [query.Query.Eval]
// wraps its errors.
func applyError(ctx context.Context, d *dump.Dump, err error) error {
	var ee *RuleEvalError
	if errors.As(err, &ee) || ctx.Err() != nil {
		return &query.EvalError{Dump: d.Name, Err: err}
	}
	return &query.DumpError{Dump: d.Name, Err: err}
}

// applyFile runs the rules idx over the entries of one image. Large images
// are split in contiguous ranges evaluated at once, one per CPU; the changes
// and counts are merged in entry order.
func applyFile(ctx context.Context, f *dump.File, rules []*Rule, idx []int, stats []RuleStats, steps [][]*EntryChange, o ApplyOptions) ([]*EntryChange, error) {
	img, err := f.Image()
	if err != nil {
		return nil, err
	}
	n := len(img.Entries)
	workers := min(runtime.GOMAXPROCS(0), max(1, n/parallelMin))
	type part struct {
		changes []*EntryChange
		stats   []RuleStats
		steps   [][]*EntryChange
		err     error
	}
	parts := make([]part, workers)
	var wg sync.WaitGroup
	for w := range parts {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &parts[w]
			p.stats = make([]RuleStats, len(stats))
			if steps != nil {
				p.steps = make([][]*EntryChange, len(steps))
			}
			p.err = panics.Call(func() (err error) {
				p.changes, err = applyRange(ctx, f, img, lo, hi, rules, idx, p.stats, p.steps, o)
				return err
			})
		}()
	}
	wg.Wait()
	var out []*EntryChange
	for _, p := range parts {
		if p.err != nil {
			return nil, p.err
		}
		out = append(out, p.changes...)
		for i, st := range p.steps {
			steps[i] = append(steps[i], st...)
		}
		for i, st := range p.stats {
			stats[i].Entries += st.Entries
			stats[i].Matched += st.Matched
			stats[i].Changed += st.Changed
			stats[i].Dropped += st.Dropped
		}
	}
	return out, nil
}

// applyRange runs the rules over entries lo to hi of an image. It stops at
// the first error.
func applyRange(ctx context.Context, f *dump.File, img *dump.Image, lo, hi int, rules []*Rule, idx []int, stats []RuleStats, steps [][]*EntryChange, o ApplyOptions) ([]*EntryChange, error) {
	marshal := proto.MarshalOptions{AllowPartial: o.AllowPartial}
	k := f.Kind
	order := img.Header.Order
	splitExtra := extraVars(k) != nil
	var out []*EntryChange
	for i := lo; i < hi; i++ {
		ent := img.Entries[i]
		if !anyApplies(rules, idx, i) {
			continue // the head of pagemap and ghost-file images, or the others
		}
		if i%256 == 0 {
			if err := context.Cause(ctx); err != nil {
				return nil, err
			}
		}
		if allSkip(rules, idx, i, ent.Payload, stats) {
			continue
		}
		fail := func(r *Rule, err error) error {
			return &RuleEvalError{Where: r.Source.Where, File: f.Name, Entry: i, Offset: ent.Offset, Err: err}
		}
		old, err := ent.Message()
		if err != nil {
			return nil, &codec.Error{File: f.Name, Kind: k.Name, Entry: i, Offset: ent.Offset, Err: err}
		}
		var x codec.ExtraParts
		if splitExtra {
			if x, err = codec.SplitExtra(k, order, ent); err != nil {
				return nil, err
			}
		}
		cur, curX, dropped := old, x, false
		var by *Rule // the last rule that changed the entry
		for _, ri := range idx {
			r := rules[ri]
			if !r.appliesTo(i) {
				continue
			}
			st := &stats[ri]
			st.Entries++
			o, err := r.Eval(ctx, cur, curX, order)
			if err != nil {
				return nil, fail(r, err)
			}
			if o.Matched {
				st.Matched++
			}
			step := func() {
				if steps != nil {
					steps[ri] = append(steps[ri], &EntryChange{File: f.Name, Kind: k, Index: i, Order: order, Rule: r,
						Old: cur, OldExtra: curX, New: o.Msg, NewExtra: o.Extra, Drop: o.Drop})
				}
			}
			if o.Drop {
				st.Changed++
				st.Dropped++
				dropped, by = true, r
				step()
				break
			}
			if o.Msg != cur && !(proto.Equal(o.Msg, cur) && extrasEqual(o.Extra, curX)) {
				st.Changed++
				by = r
				step()
			}
			cur, curX = o.Msg, o.Extra
		}
		c := &EntryChange{File: f.Name, Kind: k, Index: i, Order: order, Old: old, OldExtra: x, Rule: by}
		switch {
		case dropped:
			c.Drop = true
		case cur == old || proto.Equal(cur, old) && extrasEqual(curX, x):
			continue
		default:
			last := rules[idx[len(idx)-1]]
			if by != nil {
				last = by
			}
			c.New, c.NewExtra = cur, curX
			if c.Payload, err = marshal.Marshal(cur); err != nil {
				return nil, fail(last, explainIncomplete(old, cur, err))
			}
			if len(c.Payload) > codec.DefaultMaxSize {
				return nil, fail(last, fmt.Errorf("the new entry is %d bytes, more than the limit of %d", len(c.Payload), codec.DefaultMaxSize))
			}
			c.Extra = ent.Extra
			if splitExtra && !extrasEqual(curX, x) {
				c.Extra = codec.JoinExtra(k, order, curX)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// allSkip reports whether every rule of idx that applies to entry i leaves
// it unchanged without evaluating it (see Rule.skips), and then counts the
// entry as evaluated by each.
func allSkip(rules []*Rule, idx []int, i int, payload []byte, stats []RuleStats) bool {
	for _, ri := range idx {
		if r := rules[ri]; r.appliesTo(i) && !r.skips(payload) {
			return false
		}
	}
	for _, ri := range idx {
		if rules[ri].appliesTo(i) {
			stats[ri].Entries++
		}
	}
	return true
}

// anyApplies reports whether one of the rules idx rewrites entry i.
func anyApplies(rules []*Rule, idx []int, i int) bool {
	for _, ri := range idx {
		if rules[ri].appliesTo(i) {
			return true
		}
	}
	return false
}

func extrasEqual(a, b codec.ExtraParts) bool {
	return bytes.Equal(a.Data, b.Data) && bytes.Equal(a.InQ, b.InQ) && bytes.Equal(a.OutQ, b.OutQ)
}

// explainIncomplete is the error of an entry that cannot be marshalled.
// When a required field is missing, it names it and, when with() created
// the message that lacks it (a reg part set on a PIPE entry), the entry's
// type and that part.
func explainIncomplete(old, nw proto.Message, err error) error {
	steps := missingRequired(nw.ProtoReflect(), nil)
	if steps == nil {
		return fmt.Errorf("the new entry cannot be written: %v", err)
	}
	return &IncompleteError{Err: explainMissing(old, nw, steps)}
}

// IncompleteError is a new entry whose required fields are not all set
// (see [ApplyOptions.AllowPartial]).
type IncompleteError struct{ Err error }

func (e *IncompleteError) Error() string { return e.Err.Error() }
func (e *IncompleteError) Unwrap() error { return e.Err }

func explainMissing(old, nw proto.Message, steps []pathStep) error {
	path := stepsText(steps)
	what := "the entry"
	if t := entryType(nw.ProtoReflect()); t != "" {
		what = "the " + t + " entry"
	}
	// The first message on the path that the old entry did not have.
	o := old.ProtoReflect()
	for i, st := range steps[:len(steps)-1] {
		if st.index >= 0 {
			break
		}
		if !o.Has(st.fd) {
			part := stepsText(steps[:i+1])
			return fmt.Errorf("%s has no %s part: with() created one, and its required field %s is not set (set the whole %s, or apply the rule only to entries that have one)", what, part, path, part)
		}
		o = o.Get(st.fd).Message()
	}
	return fmt.Errorf("the new entry cannot be written: %s of %s is required but not set", path, what)
}

// missingRequired returns the path of the first required field of m that
// is not set, nil when there is none.
func missingRequired(m protoreflect.Message, prefix []pathStep) []pathStep {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Cardinality() == protoreflect.Required && !m.Has(fd) {
			return append(prefix, pathStep{fd: fd, index: -1})
		}
	}
	var found []pathStep
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap() || fd.Message() == nil:
		case fd.IsList():
			for j := 0; j < v.List().Len() && found == nil; j++ {
				found = missingRequired(v.List().Get(j).Message(), append(prefix[:len(prefix):len(prefix)], pathStep{fd: fd, index: j}))
			}
		default:
			found = missingRequired(v.Message(), append(prefix[:len(prefix):len(prefix)], pathStep{fd: fd, index: -1}))
		}
		return found == nil
	})
	return found
}

func stepsText(steps []pathStep) string {
	var b strings.Builder
	for i, st := range steps {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(string(st.fd.Name()))
		if st.index >= 0 {
			fmt.Fprintf(&b, "[%d]", st.index)
		}
	}
	return b.String()
}

// entryType returns the name of the value of an entry's enum field type
// (file_entry.type: "PIPE"), or "".
func entryType(m protoreflect.Message) string {
	fd := m.Descriptor().Fields().ByName("type")
	if fd == nil || fd.Kind() != protoreflect.EnumKind || !m.Has(fd) {
		return ""
	}
	if v := fd.Enum().Values().ByNumber(m.Get(fd).Enum()); v != nil {
		return string(v.Name())
	}
	return ""
}
