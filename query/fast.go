package query

import (
	"math"
	"sync/atomic"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/decls"
	"cel.dev/cel-go/common/functions"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/critq/critq/internal/celwalk"
)

// The fast path evaluates the common list queries natively.
//
// cel-go evaluates a comprehension such as vmas.filter(v, v.prot & 4) one
// element at a time through its interpreter: each element becomes a CEL
// object, each field read a lookup by name, each operator a dispatch over
// boxed values, and the filter's result grows by list concatenation. Over
// 100,000 VMAs that is most of the time a query takes.
//
// At Compile, planFast finds the comprehensions that have the shape of the
// filter, map (with or without a filter), exists, all and exists_one
// macros, range over a list of messages, and whose predicate and transform
// fast_expr.go can compile: fields of the iteration variable (nested
// singular messages included), literals and named constants, the
// dialect's bitwise operators, truthiness and mixed-number equality,
// comparisons, logic, ?:, arithmetic, string tests, and any other strict
// function with a binding, called on boxed values. A decorator then
// replaces the interpreter's node of each such comprehension by a
// fastNode, which evaluates the range with the interpreter's own node,
// iterates the list (the Go slice itself for the views, see msgList) and
// returns the value the interpreter would: the same elements, the same
// error values, the same interruption by the context. Its cost counts
// against the cost limit at a rate close to the interpreter's.
//
// Anything else, and a range that is no list of the expected messages at
// run time, is left to cel-go unchanged.

// foldShape is the macro a comprehension was expanded from.
type foldShape uint8

const (
	shapeMap       foldShape = iota + 1 // map, filter, map with a filter
	shapeAll                            // all
	shapeExists                         // exists
	shapeExistsOne                      // exists_one
)

// fastFold is one comprehension the fast path evaluates.
type fastFold struct {
	id      int64
	rangeID int64
	stepID  int64 // the step's call, whose id labels predicate errors
	shape   foldShape
	elem    protoreflect.MessageDescriptor
	pred    *fastExpr // nil for a map without a filter
	// transform of a map; nil for the element itself (filter).
	transform *fastExpr
	adapter   types.Adapter
	// perElem and perHit are the cost units of an element and of an
	// element that enters the result.
	perElem, perHit uint64

	// runs and fallbacks count the evaluations done natively and those
	// handed back to the interpreter (tests read them).
	runs, fallbacks atomic.Int64
}

// fastPlan is the comprehensions of one checked expression that the fast
// path evaluates, by expression id.
type fastPlan struct {
	folds  map[int64]*fastFold
	ranges map[int64]bool
}

// noFastPath is an Option that leaves every comprehension to cel-go, for
// tests that compare both paths.
func noFastPath() Option { return func(c *config) { c.noFast = true } }

// fastCostOverload is the overload id under which a fastNode charges the
// cost tracker: its one argument is the number of units.
const fastCostOverload = "critq_fast_cost"

type fastCostCall struct{}

func (fastCostCall) Function() string   { return fastCostOverload }
func (fastCostCall) OverloadID() string { return fastCostOverload }

func fastCostTracker(args []ref.Val, _ ref.Val) *uint64 {
	n := uint64(args[0].(types.Uint))
	return &n
}

// planFast finds the comprehensions of a that the fast path evaluates.
func planFast(env *cel.Env, a *celast.AST) *fastPlan {
	p := &fastPlan{folds: map[int64]*fastFold{}, ranges: map[int64]bool{}}
	var funcs map[string]*decls.FunctionDecl
	bindings := map[string][]*functions.Overload{}
	lookup := func(fn string) []*functions.Overload {
		if b, ok := bindings[fn]; ok {
			return b
		}
		if funcs == nil {
			funcs = env.Functions()
		}
		b, err := funcs[fn].Bindings()
		if err != nil {
			b = nil
		}
		bindings[fn] = b
		return b
	}
	celast.PreOrderVisit(a.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.ComprehensionKind {
			return
		}
		if f := matchFold(a, e, env.CELTypeAdapter(), lookup); f != nil {
			p.folds[f.id] = f
			p.ranges[f.rangeID] = true
		}
	}))
	return p
}

// programOptions returns the options that hook the plan into a program.
func (p *fastPlan) programOptions() []cel.ProgramOption {
	if len(p.folds) == 0 {
		return nil
	}
	return []cel.ProgramOption{
		cel.CustomDecoratorV2(p.decorator()),
		cel.CostTrackerOptions(cost.OverloadTracker(fastCostOverload, fastCostTracker)),
	}
}

// decorator replaces the interpreter's node of each planned comprehension
// by a fastNode. The planner decorates nodes bottom-up, so the node of a
// comprehension's range is met before the comprehension's own.
func (p *fastPlan) decorator() interpreter.InterpretableDecoratorV2 {
	ranges := map[int64]interpreter.InterpretableV2{}
	done := map[int64]bool{}
	return func(i interpreter.InterpretableV2) (interpreter.InterpretableV2, error) {
		id := i.ID()
		if f := p.folds[id]; f != nil && !done[id] {
			done[id] = true // later nodes of the same id wrap this one
			if r := ranges[f.rangeID]; r != nil {
				i = &fastNode{fold: f, orig: i, rng: r}
			}
		}
		if p.ranges[id] {
			if _, seen := ranges[id]; !seen {
				ranges[id] = i
			}
		}
		return i, nil
	}
}

// matchFold returns the fast form of comprehension e, or nil.
func matchFold(a *celast.AST, e celast.Expr, adapter types.Adapter, lookup func(string) []*functions.Overload) *fastFold {
	c := e.AsComprehension()
	if c.HasIterVar2() {
		return nil
	}
	elem := listElemMessage(a.GetType(c.IterRange().ID()))
	if elem == nil {
		return nil
	}
	accu := c.AccuVar()
	fc := &fastCompiler{a: a, iterVar: c.IterVar(), elem: elem, lookup: lookup}
	f := &fastFold{id: e.ID(), rangeID: c.IterRange().ID(), elem: elem, stepID: c.LoopStep().ID(), adapter: adapter}
	init, cond, step, result := c.AccuInit(), c.LoopCondition(), c.LoopStep(), c.Result()
	var pred celast.Expr
	switch {
	case isEmptyList(init) && isLiteral(cond, types.True) && isIdentNamed(result, accu):
		f.shape = shapeMap
		item, ok := appendedItem(step, accu)
		if !ok {
			args, isCond := callArgs(step, operators.Conditional, 3)
			if !isCond || !isIdentNamed(args[2], accu) {
				return nil
			}
			if item, ok = appendedItem(args[1], accu); !ok {
				return nil
			}
			pred = args[0]
		}
		if !isIdentNamed(item, c.IterVar()) {
			t, ok := fc.compile(item)
			if !ok {
				return nil
			}
			f.transform = t
		}
	case isLiteral(init, types.True) && isNotStrictlyFalse(cond, func(x celast.Expr) bool { return isIdentNamed(x, accu) }) &&
		isIdentNamed(result, accu):
		args, ok := callArgs(step, operators.LogicalAnd, 2)
		if !ok || !isIdentNamed(args[0], accu) {
			return nil
		}
		f.shape, pred = shapeAll, args[1]
	case isLiteral(init, types.False) && isIdentNamed(result, accu) && isNotStrictlyFalse(cond, func(x celast.Expr) bool {
		args, ok := callArgs(x, operators.LogicalNot, 1)
		return ok && isIdentNamed(args[0], accu)
	}):
		args, ok := callArgs(step, operators.LogicalOr, 2)
		if !ok || !isIdentNamed(args[0], accu) {
			return nil
		}
		f.shape, pred = shapeExists, args[1]
	case isLiteral(init, types.IntZero) && isLiteral(cond, types.True):
		args, ok := callArgs(step, operators.Conditional, 3)
		if !ok || !isIdentNamed(args[2], accu) {
			return nil
		}
		inc, ok := callArgs(args[1], operators.Add, 2)
		if !ok || !isIdentNamed(inc[0], accu) || !isLiteral(inc[1], types.IntOne) {
			return nil
		}
		res, ok := callArgs(result, operators.Equals, 2)
		if !ok || !isIdentNamed(res[0], accu) || !isLiteral(res[1], types.IntOne) {
			return nil
		}
		f.shape, pred = shapeExistsOne, args[0]
	default:
		return nil
	}
	f.perElem = 2
	if pred != nil {
		p, ok := fc.compile(pred)
		if !ok || p.kind != fastBool {
			return nil
		}
		f.pred = p
		f.perElem += p.cost
	}
	if f.shape == shapeMap {
		f.perHit = 12 // a list of one, its concatenation
		if f.transform != nil {
			f.perHit += f.transform.cost
		}
	}
	return f
}

// listElemMessage returns the message descriptor of the elements of a
// list type, or nil when t is no list of messages (well-known types, which
// CEL converts, excluded).
func listElemMessage(t *types.Type) protoreflect.MessageDescriptor {
	if t == nil || t.Kind() != types.ListKind || len(t.Parameters()) != 1 {
		return nil
	}
	et := t.Parameters()[0]
	if et.Kind() != types.StructKind {
		return nil
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(et.TypeName()))
	if err != nil {
		return nil
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok || md.ParentFile().Package() == "google.protobuf" {
		return nil
	}
	return md
}

func isIdentNamed(e celast.Expr, name string) bool {
	return e.Kind() == celast.IdentKind && e.AsIdent() == name
}

func isLiteral(e celast.Expr, v ref.Val) bool {
	return e.Kind() == celast.LiteralKind && e.AsLiteral().Type() == v.Type() && e.AsLiteral().Equal(v) == types.True
}

func isEmptyList(e celast.Expr) bool {
	return e.Kind() == celast.ListKind && e.AsList().Size() == 0
}

// callArgs returns the arguments of a global call of fn with n arguments.
var callArgs = celwalk.CallArgs

func isNotStrictlyFalse(e celast.Expr, arg func(celast.Expr) bool) bool {
	args, ok := callArgs(e, operators.NotStrictlyFalse, 1)
	return ok && arg(args[0])
}

// appendedItem returns x of accu + [x].
func appendedItem(e celast.Expr, accu string) (celast.Expr, bool) {
	args, ok := callArgs(e, operators.Add, 2)
	if !ok || !isIdentNamed(args[0], accu) || args[1].Kind() != celast.ListKind {
		return nil, false
	}
	l := args[1].AsList()
	if l.Size() != 1 || len(l.OptionalIndices()) != 0 {
		return nil, false
	}
	return l.Elements()[0], true
}

// fastNode evaluates one comprehension natively; orig is the interpreter's
// node, used when the range is not what the plan expects.
type fastNode struct {
	fold *fastFold
	orig interpreter.InterpretableV2
	rng  interpreter.InterpretableV2
}

// ID implements interpreter.Interpretable.
func (n *fastNode) ID() int64 { return n.fold.id }

// Eval implements interpreter.Interpretable.
func (n *fastNode) Eval(a interpreter.Activation) ref.Val {
	return interpreter.EvalActivation(a, n.Exec)
}

// Exec implements interpreter.InterpretableV2.
func (n *fastNode) Exec(frame *interpreter.ExecutionFrame) ref.Val {
	rv := n.rng.Exec(frame)
	if types.IsUnknownOrError(rv) {
		return rv
	}
	var src fastRange
	switch r := rv.(type) {
	case fastRange:
		src = r
	case traits.Lister:
		if cr, ok := newCELRange(n.fold.adapter, r); ok {
			src = cr
		}
	}
	if src != nil {
		if v, ok := n.fold.run(frame, src); ok {
			n.fold.runs.Add(1)
			return v
		}
	}
	n.fold.fallbacks.Add(1)
	return n.orig.Exec(frame)
}

// costBatch is how many elements pass between two charges of the cost
// tracker.
const costBatch = 256

// run iterates src. It returns false, before any result is known, when an
// element is not a message of the planned type.
func (f *fastFold) run(frame *interpreter.ExecutionFrame, src fastRange) (ref.Val, bool) {
	costs := frame.CostTracker()
	var pending uint64
	charge := func() {
		if costs != nil && pending > 0 {
			costs.EvalUnary(frame, f.id, fastCostCall{}, types.Uint(pending), nil)
		}
		pending = 0
	}
	var (
		hits   []int
		out    fastResults
		err    ref.Val
		found  bool
		count  int
		pred   fastFn
		transf fastFn
	)
	if f.pred != nil {
		pred = f.pred.eval
	}
	if f.transform != nil {
		transf = f.transform.eval
		out.kind = f.transform.kind
	}
	n := src.len()
loop:
	for i := range n {
		m := src.at(i)
		if m == nil || m.Descriptor() != f.elem {
			return nil, false
		}
		pending += f.perElem
		if i%costBatch == costBatch-1 {
			charge()
		}
		switch f.shape {
		case shapeMap:
			// The interpreter's step is pred ? accu + [x] : accu: an error
			// of pred becomes the accumulator, and once it holds an error
			// the transform is no longer evaluated.
			if pred != nil {
				p := pred(m)
				if p.err != nil {
					err = types.LabelErrNode(f.stepID, p.err)
					break
				}
				if p.n == 0 {
					break
				}
			}
			if err != nil {
				if pred == nil {
					break loop // nothing can change the result any more
				}
				break
			}
			pending += f.perHit
			if transf == nil {
				hits = append(hits, i)
				break
			}
			x := transf(m)
			if x.err != nil {
				err = x.err
				break
			}
			out.add(x)
		case shapeExists, shapeAll:
			// accu || pred (accu && pred): the deciding value wins, else
			// the first error.
			p := pred(m)
			if p.err == nil && (p.n != 0) == (f.shape == shapeExists) {
				found = true
			} else if p.err != nil && err == nil {
				err = types.LabelErrNode(f.stepID, p.err)
			}
		case shapeExistsOne:
			// pred ? accu + 1 : accu: the last error wins.
			p := pred(m)
			switch {
			case p.err != nil:
				err = types.LabelErrNode(f.stepID, p.err)
			case p.n != 0:
				count++
			}
		}
		if frame.CheckInterrupt() {
			charge()
			return types.WrapErr(interpreter.InterruptError{}), true
		}
		if found {
			break
		}
	}
	charge()
	switch f.shape {
	case shapeMap:
		if err != nil {
			return err, true
		}
		if transf == nil {
			return src.pick(hits), true
		}
		return out.list(f.adapter), true
	case shapeExists, shapeAll:
		if found {
			return types.Bool(f.shape == shapeExists), true
		}
		if err != nil {
			return err, true
		}
		return types.Bool(f.shape == shapeAll), true
	}
	if err != nil {
		return err, true
	}
	return types.Bool(count == 1), true
}

// fastResults collects the values of a map in a slice of their Go type.
type fastResults struct {
	kind  fastKind
	bools []bool
	ints  []int64
	uints []uint64
	dbls  []float64
	strs  []string
}

func (r *fastResults) add(v fastVal) {
	switch r.kind {
	case fastBool:
		r.bools = append(r.bools, v.n != 0)
	case fastInt:
		r.ints = append(r.ints, int64(v.n))
	case fastUint:
		r.uints = append(r.uints, v.n)
	case fastDouble:
		r.dbls = append(r.dbls, math.Float64frombits(v.n))
	case fastString:
		r.strs = append(r.strs, v.s)
	}
}

// list returns the CEL list of the values.
func (r *fastResults) list(a types.Adapter) ref.Val {
	switch r.kind {
	case fastBool:
		return types.NewDynamicList(a, nonNilSlice(r.bools))
	case fastInt:
		return types.NewDynamicList(a, nonNilSlice(r.ints))
	case fastUint:
		return types.NewDynamicList(a, nonNilSlice(r.uints))
	case fastDouble:
		return types.NewDynamicList(a, nonNilSlice(r.dbls))
	}
	return types.NewDynamicList(a, nonNilSlice(r.strs))
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
