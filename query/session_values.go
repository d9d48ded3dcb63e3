package query

import (
	"context"
	"fmt"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// EvalValues is [Bindings.Eval] with vals, the values of variables declared
// with [Declare] that are not bindings (critq repl --diff binds changes, a
// and b so): q and the bindings it uses see them. vals are the same for
// every evaluation that shares memo.
func (b *Bindings) EvalValues(ctx context.Context, q *Query, d *Dump, memo, vals map[string]ref.Val) (ref.Val, error) {
	var all map[string]ref.Val
	for _, name := range q.References() {
		v, ok := vals[name]
		if !ok {
			l := b.Lookup(name)
			if l == nil {
				continue
			}
			if v, ok = memo[name]; !ok {
				var err error
				t := d.Track()
				v, err = b.EvalValues(ctx, l.Query, d, memo, vals)
				ws := t.warnings()
				t.Stop()
				if err != nil {
					return nil, fmt.Errorf("let %s: %w", name, err)
				}
				memo[name] = v
				if len(ws) > 0 {
					memo[memoWarnings+name] = warningsValue(ws)
				}
			} else if w, ok := memo[memoWarnings+name]; ok {
				d.tell(valueWarnings(w)...)
			}
		}
		if all == nil {
			all = map[string]ref.Val{}
		}
		all[name] = v
	}
	return q.EvalWith(ctx, d, all)
}

// memoWarnings prefixes the key under which a memo keeps what made a
// binding's value partial, told again whenever the value is used: no
// binding's name starts with a NUL.
const memoWarnings = "\x00warnings:"

func warningsValue(ws []warning) ref.Val {
	s := make([]string, 0, 2*len(ws))
	for _, w := range ws {
		s = append(s, w.key, w.line)
	}
	return types.NewStringList(types.DefaultTypeAdapter, s)
}

func valueWarnings(v ref.Val) []warning {
	s, _ := v.Value().([]string)
	var out []warning
	for i := 0; i+1 < len(s); i += 2 {
		out = append(out, warning{s[i], s[i+1]})
	}
	return out
}
