package query

import (
	"context"
	"fmt"

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
				if v, err = b.EvalValues(ctx, l.Query, d, memo, vals); err != nil {
					return nil, fmt.Errorf("let %s: %w", name, err)
				}
				memo[name] = v
			}
		}
		if all == nil {
			all = map[string]ref.Val{}
		}
		all[name] = v
	}
	return q.EvalWith(ctx, d, all)
}
