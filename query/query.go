package query

import (
	"context"
	"errors"
	"sort"
	"sync/atomic"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"
)

// DefaultCostLimit bounds the cost of one evaluation unless [CostLimit]
// says otherwise: a few seconds of CPU at most (on a loaded 2-core
// machine, 1.9 s for a 7-deep nest of maps over 10-element lists, 3.6 s
// for a query that pairs each VMA of a 12,152-VMA task with every other,
// 2.9 s for the same over 5,000 VMAs). The cookbook's recipes cost at most
// 3 million on that dump (maps, mems: about 250 a VMA), so a task of
// 100,000 VMAs still has room; overlapping (lib.go) keeps the pairing of
// pagemaps with VMAs linear.
const DefaultCostLimit = 50_000_000

// interruptEvery is how many comprehension iterations pass between checks
// of the context.
const interruptEvery = 1000

// Option configures Compile.
type Option func(*config)

type config struct {
	costLimit uint64
	maxMemory uint64          // MaxMemory (limits.go)
	declared  []cel.EnvOption // Declare (session.go)
	noFast    bool            // noFastPath (fast.go)
}

// CostLimit bounds the cost of each evaluation, in cel-go's cost units (one
// per operation, more for strings and lists). An evaluation that exceeds it
// fails with an *EvalError. 0 removes the limit.
func CostLimit(n uint64) Option { return func(c *config) { c.costLimit = n } }

// Query is a compiled expression. It is safe for concurrent use: one Query
// may be evaluated against many dumps at the same time.
type Query struct {
	src   string
	env   *cel.Env
	ast   *cel.Ast
	prg   cel.Program
	needs *needs
	fast  *fastPlan

	costLimit, maxMemory uint64        // limits.go
	built                atomic.Uint64 // Progress
}

// Compile parses and checks src in critq's environment and plans its
// evaluation. A syntax or type error is returned as the dialect's
// *CompileError, whose message shows the expression with a caret under the
// fault.
func Compile(src string, opts ...Option) (*Query, error) {
	cfg := config{costLimit: DefaultCostLimit, maxMemory: DefaultMaxMemory}
	for _, o := range opts {
		o(&cfg)
	}
	env, err := queryEnv()
	if err == nil && len(cfg.declared) > 0 {
		env, err = env.Extend(cfg.declared...)
	}
	if err != nil {
		return nil, err
	}
	ast, err := compileExpr(env, src)
	if err != nil {
		return nil, err
	}
	q := &Query{src: src, env: env, ast: ast, costLimit: cfg.costLimit, maxMemory: cfg.maxMemory}
	popts := append([]cel.ProgramOption{cel.InterruptCheckFrequency(interruptEvery)}, q.allocationCost()...)
	if cfg.costLimit > 0 {
		popts = append(popts, cel.CostLimit(cfg.costLimit))
	}
	fast := &fastPlan{}
	if !cfg.noFast {
		fast = planFast(env, ast.NativeRep())
		popts = append(popts, fast.programOptions()...)
	}
	prg, err := env.Program(ast, popts...)
	if err != nil {
		return nil, err
	}
	declared := map[string]bool{}
	for _, v := range Vars() {
		declared[v.Name] = true
	}
	q.prg, q.needs, q.fast = prg, analyze(ast.NativeRep(), declared), fast
	return q, nil
}

// String returns the source of the query.
func (q *Query) String() string { return q.src }

// OutputType returns the CEL type of the query's result.
func (q *Query) OutputType() *cel.Type { return q.ast.OutputType() }

// Vars returns the top-level names the query reads, sorted. Only the
// images behind them are read by Eval.
func (q *Query) Vars() []string {
	out := make([]string, 0, len(q.needs.vars))
	for v := range q.needs.vars {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// Eval evaluates the query against d. It reads the images the query needs
// (in parallel, once per Dump) and evaluates the expression under ctx and
// the cost limit. A dump that cannot be read gives a *DumpError; a failed
// evaluation, a cancelled ctx included, an *EvalError that wraps the cause
// (errors.Is(err, context.DeadlineExceeded) works).
func (q *Query) Eval(ctx context.Context, d *Dump) (ref.Val, error) {
	return q.EvalWith(ctx, d, nil)
}

// EvalWith is Eval with values for the variables declared with [Declare].
func (q *Query) EvalWith(ctx context.Context, d *Dump, vars map[string]ref.Val) (ref.Val, error) {
	errs := &loadErrors{}
	act, err := d.activation(ctx, q.env.CELTypeAdapter(), q.needs, errs)
	if err != nil {
		return nil, err
	}
	for name, v := range vars {
		act[name] = v
	}
	bound, err := d.withMemory(act, q.needs)
	if err != nil {
		return nil, err
	}
	wctx, stop := watchMemory(ctx, q.maxMemory)
	val, _, err := q.prg.ContextEval(wctx, bound)
	if le := stoppedBy(wctx); le != nil {
		err = le
	}
	stop()
	err = q.limitError(err)
	if lerr := errs.first(); lerr != nil {
		return nil, &DumpError{Dump: d.Name(), Err: lerr}
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = errors.Join(cause, err)
		}
		return nil, &EvalError{Dump: d.Name(), Err: err}
	}
	return val, nil
}
