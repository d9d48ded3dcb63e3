package query

import (
	"math"
	"math/bits"
	"strings"
	"unicode/utf8"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/functions"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// This file compiles the predicate or transform of a comprehension into
// Go closures over one element (fast.go says when). Each compiled
// expression has a static kind, the CEL type the checker gave it, and
// evaluates to a fastVal without boxing: the interpreter's per-node
// ref.Val allocations, attribute lookups and overload dispatch are gone.
//
// The semantics are CEL's, error values included. Where CEL would produce
// an error (an overflow, a division by zero, a negative int with a uint),
// or for operations on doubles, the closures call the very binding the
// interpreter would call, so the error value is the one CEL gives, labelled
// with the same expression id.

// fastKind is the static kind of a compiled expression.
type fastKind uint8

const (
	fastBool fastKind = iota + 1
	fastInt
	fastUint
	fastDouble
	fastString
)

// fastVal is a value of the fast path. n holds a bool (0 or 1), an int, a
// uint or the bits of a double; s a string. A non-nil err is a CEL error
// value, and then n and s mean nothing.
type fastVal struct {
	n   uint64
	s   string
	err ref.Val
}

// fastFn evaluates a compiled expression against one element.
type fastFn func(m protoreflect.Message) fastVal

// fastExpr is a compiled expression.
type fastExpr struct {
	kind fastKind
	eval fastFn
	// konst is set for literals and named constants; eval returns it.
	konst *fastVal
	// cost is the number of operations CEL would charge for one
	// evaluation, roughly: one per field read and per call.
	cost uint64
}

var fastTrue = fastVal{n: 1}

func boolVal(b bool) fastVal {
	if b {
		return fastTrue
	}
	return fastVal{}
}

func errVal(v ref.Val) fastVal { return fastVal{err: v} }

// kindOfType returns the fast kind of a CEL type, or 0.
func kindOfType(t *types.Type) fastKind {
	if t == nil {
		return 0
	}
	switch t.Kind() {
	case types.BoolKind:
		return fastBool
	case types.IntKind:
		return fastInt
	case types.UintKind:
		return fastUint
	case types.DoubleKind:
		return fastDouble
	case types.StringKind:
		return fastString
	}
	return 0
}

// toRef boxes v of kind k as a CEL value.
func toRef(k fastKind, v fastVal) ref.Val {
	if v.err != nil {
		return v.err
	}
	switch k {
	case fastBool:
		return types.Bool(v.n != 0)
	case fastInt:
		return types.Int(int64(v.n))
	case fastUint:
		return types.Uint(v.n)
	case fastDouble:
		return types.Double(math.Float64frombits(v.n))
	}
	return types.String(v.s)
}

// fromRef unboxes a CEL value of kind k; a value of another type becomes
// the error CEL gives for a value no overload takes.
func fromRef(k fastKind, v ref.Val) fastVal {
	switch x := v.(type) {
	case types.Bool:
		if k == fastBool {
			return boolVal(bool(x))
		}
	case types.Int:
		if k == fastInt {
			return fastVal{n: uint64(x)}
		}
	case types.Uint:
		if k == fastUint {
			return fastVal{n: uint64(x)}
		}
	case types.Double:
		if k == fastDouble {
			return fastVal{n: math.Float64bits(float64(x))}
		}
	case types.String:
		if k == fastString {
			return fastVal{s: string(x)}
		}
	}
	if types.IsError(v) {
		return errVal(v)
	}
	return errVal(types.MaybeNoSuchOverloadErr(v))
}

// fastCompiler compiles the expressions of one comprehension whose
// iteration variable ranges over messages of type elem.
type fastCompiler struct {
	a       *celast.AST
	iterVar string
	elem    protoreflect.MessageDescriptor
	// lookup returns the bindings of a function, as the dispatcher has them.
	lookup func(fn string) []*functions.Overload
}

// compile returns the compiled form of e, or false when e is outside the
// subset the fast path knows.
func (c *fastCompiler) compile(e celast.Expr) (*fastExpr, bool) {
	k := kindOfType(c.a.GetType(e.ID()))
	if k == 0 {
		return nil, false
	}
	if r := c.a.ReferenceMap()[e.ID()]; r != nil && r.Value != nil {
		return constExpr(k, r.Value)
	}
	switch e.Kind() {
	case celast.LiteralKind:
		return constExpr(k, e.AsLiteral())
	case celast.SelectKind:
		return c.compileSelect(e, k)
	case celast.CallKind:
		return c.compileCall(e, k)
	}
	return nil, false
}

func constExpr(k fastKind, v ref.Val) (*fastExpr, bool) {
	fv := fromRef(k, v)
	if fv.err != nil {
		return nil, false
	}
	return &fastExpr{kind: k, konst: &fv, eval: func(protoreflect.Message) fastVal { return fv }}, true
}

// compileSelect compiles v.a.b... and has(v.a.b...): a path of singular
// fields from the iteration variable.
func (c *fastCompiler) compileSelect(e celast.Expr, k fastKind) (*fastExpr, bool) {
	test := e.AsSelect().IsTestOnly()
	var names []string
	x := e
	for x.Kind() == celast.SelectKind {
		s := x.AsSelect()
		if s.IsTestOnly() && x != e {
			return nil, false
		}
		if r := c.a.ReferenceMap()[x.ID()]; r != nil {
			return nil, false // a qualified name, not a field
		}
		names = append(names, s.FieldName())
		x = s.Operand()
	}
	if x.Kind() != celast.IdentKind || x.AsIdent() != c.iterVar {
		return nil, false
	}
	path := make([]protoreflect.FieldDescriptor, len(names))
	md := c.elem
	for i := range names {
		name := names[len(names)-1-i]
		if md == nil {
			return nil, false
		}
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return nil, false
		}
		path[i] = fd
		last := i == len(names)-1
		if last && test {
			break
		}
		if fd.IsList() || fd.IsMap() {
			return nil, false
		}
		md = nil
		if !last {
			if fd.Kind() != protoreflect.MessageKind || strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.") {
				return nil, false
			}
			md = fd.Message()
		}
	}
	outer, last := path[:len(path)-1], path[len(path)-1]
	walk := func(m protoreflect.Message) protoreflect.Message {
		for _, fd := range outer {
			m = m.Get(fd).Message()
		}
		return m
	}
	cost := uint64(1)
	if test {
		if k != fastBool {
			return nil, false
		}
		return &fastExpr{kind: k, cost: cost, eval: func(m protoreflect.Message) fastVal {
			return boolVal(walk(m).Has(last))
		}}, true
	}
	var eval fastFn
	switch fieldKind(last) {
	case fastBool:
		eval = func(m protoreflect.Message) fastVal { return boolVal(walk(m).Get(last).Bool()) }
	case fastInt:
		if last.Kind() == protoreflect.EnumKind {
			eval = func(m protoreflect.Message) fastVal { return fastVal{n: uint64(walk(m).Get(last).Enum())} }
		} else {
			eval = func(m protoreflect.Message) fastVal { return fastVal{n: uint64(walk(m).Get(last).Int())} }
		}
	case fastUint:
		eval = func(m protoreflect.Message) fastVal { return fastVal{n: walk(m).Get(last).Uint()} }
	case fastDouble:
		eval = func(m protoreflect.Message) fastVal { return fastVal{n: math.Float64bits(walk(m).Get(last).Float())} }
	case fastString:
		eval = func(m protoreflect.Message) fastVal { return fastVal{s: walk(m).Get(last).String()} }
	}
	if eval == nil || fieldKind(last) != k {
		return nil, false
	}
	if len(outer) == 0 {
		// The common case, without the walk.
		eval = directField(last, k)
	}
	return &fastExpr{kind: k, cost: cost, eval: eval}, true
}

// directField reads a scalar field of the element itself.
func directField(fd protoreflect.FieldDescriptor, k fastKind) fastFn {
	switch k {
	case fastBool:
		return func(m protoreflect.Message) fastVal { return boolVal(m.Get(fd).Bool()) }
	case fastInt:
		if fd.Kind() == protoreflect.EnumKind {
			return func(m protoreflect.Message) fastVal { return fastVal{n: uint64(m.Get(fd).Enum())} }
		}
		return func(m protoreflect.Message) fastVal { return fastVal{n: uint64(m.Get(fd).Int())} }
	case fastUint:
		return func(m protoreflect.Message) fastVal { return fastVal{n: m.Get(fd).Uint()} }
	case fastDouble:
		return func(m protoreflect.Message) fastVal { return fastVal{n: math.Float64bits(m.Get(fd).Float())} }
	}
	return func(m protoreflect.Message) fastVal { return fastVal{s: m.Get(fd).String()} }
}

// fieldKind returns the fast kind of a singular scalar field, as CEL
// types it: enums are ints, 32-bit numbers widen, floats are doubles.
func fieldKind(fd protoreflect.FieldDescriptor) fastKind {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return fastBool
	case protoreflect.EnumKind, protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return fastInt
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return fastUint
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return fastDouble
	case protoreflect.StringKind:
		return fastString
	}
	return 0
}

// compileCall compiles a call whose overload the checker resolved.
func (c *fastCompiler) compileCall(e celast.Expr, k fastKind) (*fastExpr, bool) {
	call := e.AsCall()
	ovs := c.a.GetOverloadIDs(e.ID())
	if len(ovs) != 1 {
		return nil, false
	}
	ov := ovs[0]
	argExprs := call.Args()
	if call.IsMemberFunction() {
		argExprs = append([]celast.Expr{call.Target()}, argExprs...)
	}
	args := make([]*fastExpr, len(argExprs))
	cost := uint64(1)
	for i, a := range argExprs {
		x, ok := c.compile(a)
		if !ok {
			return nil, false
		}
		args[i] = x
		cost += x.cost
	}
	id := e.ID()
	fn := call.FunctionName()
	var eval fastFn
	switch {
	case fn == fnTruthy && len(args) == 1 && k == fastBool:
		eval = truthyFn(args[0])
	case fn == operators.LogicalAnd || fn == operators.LogicalOr:
		eval = logicFn(id, fn == operators.LogicalAnd, args)
	case fn == operators.LogicalNot && len(args) == 1 && args[0].kind == fastBool:
		a := args[0].eval
		eval = func(m protoreflect.Message) fastVal {
			x := a(m)
			if x.err != nil {
				return x
			}
			return boolVal(x.n == 0)
		}
	case fn == operators.Conditional:
		eval = condFn(id, args, k)
	default:
		eval = c.nativeCall(id, fn, ov, args, k)
	}
	if eval == nil {
		eval = c.delegate(id, fn, ov, args, k)
	}
	if eval == nil {
		return nil, false
	}
	return &fastExpr{kind: k, eval: eval, cost: cost}, true
}

// truthyFn is the dialect's @truthy: a non-zero number is true.
func truthyFn(a *fastExpr) fastFn {
	f := a.eval
	switch a.kind {
	case fastBool:
		return f
	case fastInt, fastUint:
		return func(m protoreflect.Message) fastVal {
			x := f(m)
			if x.err != nil {
				return x
			}
			return boolVal(x.n != 0)
		}
	case fastDouble:
		return func(m protoreflect.Message) fastVal {
			x := f(m)
			if x.err != nil {
				return x
			}
			return boolVal(math.Float64frombits(x.n) != 0)
		}
	}
	return nil
}

// logicFn is && and || as the interpreter evaluates them: left to right, a
// deciding operand wins over an error, and otherwise the first error is
// the result, labelled with the call's id.
func logicFn(id int64, and bool, args []*fastExpr) fastFn {
	if len(args) != 2 || args[0].kind != fastBool || args[1].kind != fastBool {
		return nil
	}
	a, b := args[0].eval, args[1].eval
	var decide uint64 // the operand value that decides
	if !and {
		decide = 1
	}
	return func(m protoreflect.Message) fastVal {
		x := a(m)
		if x.err == nil && x.n == decide {
			return x
		}
		y := b(m)
		if y.err == nil && y.n == decide {
			return y
		}
		if x.err != nil {
			return errVal(types.LabelErrNode(id, x.err))
		}
		if y.err != nil {
			return errVal(types.LabelErrNode(id, y.err))
		}
		return boolVal(and)
	}
}

// condFn is c ? t : f; an error condition is the result.
func condFn(id int64, args []*fastExpr, k fastKind) fastFn {
	if len(args) != 3 || args[0].kind != fastBool || args[1].kind != k || args[2].kind != k {
		return nil
	}
	c, t, f := args[0].eval, args[1].eval, args[2].eval
	return func(m protoreflect.Message) fastVal {
		x := c(m)
		if x.err != nil {
			return errVal(types.LabelErrNode(id, x.err))
		}
		var r fastVal
		if x.n != 0 {
			r = t(m)
		} else {
			r = f(m)
		}
		if r.err != nil {
			r.err = types.LabelErrNode(id, r.err)
		}
		return r
	}
}

// binaryOp computes a binary operation on two plain values; ok false asks
// for the CEL binding (an error, or a case left to it).
type binaryOp func(x, y fastVal) (r fastVal, ok bool)

// nativeCall returns the Go form of the common operators on ints, uints,
// bools and strings, or nil.
func (c *fastCompiler) nativeCall(id int64, fn, ov string, args []*fastExpr, k fastKind) fastFn {
	if len(args) == 1 {
		return c.nativeUnary(id, fn, ov, args[0], k)
	}
	if len(args) != 2 {
		return nil
	}
	ka, kb := args[0].kind, args[1].kind
	var op binaryOp
	switch fn {
	case operators.Equals, operators.NotEquals, fnEq, fnNe:
		if k != fastBool {
			return nil
		}
		eq := equalOp(ka, kb)
		if eq == nil {
			return nil
		}
		want := fn == operators.Equals || fn == fnEq
		op = func(x, y fastVal) (fastVal, bool) { return boolVal(eq(x, y) == want), true }
	case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		cmp := compareOp(ka, kb)
		if cmp == nil || k != fastBool {
			return nil
		}
		op = orderOp(fn, cmp)
	case operators.Add, operators.Subtract, operators.Multiply, operators.Divide, operators.Modulo:
		if ka != kb || ka != k {
			return nil
		}
		op = arithOp(fn, k)
	case fnBitAnd, fnBitOr, fnBitXor:
		op = bitOp(id, opSymbol(fn), ka, kb, k)
	case fnShl, fnShr:
		op = shiftOp(id, fn == fnShl, ka, kb, k)
	case overloads.StartsWith, overloads.EndsWith, overloads.Contains:
		if ka != fastString || kb != fastString || k != fastBool {
			return nil
		}
		var f func(s, t string) bool
		switch fn {
		case overloads.StartsWith:
			f = strings.HasPrefix
		case overloads.EndsWith:
			f = strings.HasSuffix
		default:
			f = strings.Contains
		}
		op = func(x, y fastVal) (fastVal, bool) { return boolVal(f(x.s, y.s)), true }
	}
	if op == nil {
		return nil
	}
	if f := integerFn(fn, args[0], args[1]); f != nil {
		return f
	}
	slow := c.binding(ov, fn)
	a, b := args[0].eval, args[1].eval
	return func(m protoreflect.Message) fastVal {
		x := a(m)
		if x.err != nil {
			return x
		}
		y := b(m)
		if y.err != nil {
			return y
		}
		if r, ok := op(x, y); ok {
			return r
		}
		if slow == nil || slow.Binary == nil {
			return errVal(types.NewErrWithNodeID(id, "no such overload: %s", fn))
		}
		return fromRef(k, types.LabelErrNode(id, slow.Binary(toRef(ka, x), toRef(kb, y))))
	}
}

func (c *fastCompiler) nativeUnary(id int64, fn, ov string, a *fastExpr, k fastKind) fastFn {
	f := a.eval
	var op func(x fastVal) (fastVal, bool)
	switch {
	case fn == fnBitNot && a.kind == k && (k == fastInt || k == fastUint):
		op = func(x fastVal) (fastVal, bool) { return fastVal{n: ^x.n}, true }
	case fn == operators.Negate && a.kind == fastInt && k == fastInt:
		op = func(x fastVal) (fastVal, bool) { return fastVal{n: -x.n}, int64(x.n) != math.MinInt64 }
	case fn == overloads.Size && a.kind == fastString && k == fastInt:
		op = func(x fastVal) (fastVal, bool) { return fastVal{n: uint64(utf8.RuneCountInString(x.s))}, true }
	case fn == overloads.TypeConvertInt && a.kind == fastUint && k == fastInt:
		op = func(x fastVal) (fastVal, bool) { return x, x.n <= math.MaxInt64 }
	case fn == overloads.TypeConvertUint && a.kind == fastInt && k == fastUint:
		op = func(x fastVal) (fastVal, bool) { return x, int64(x.n) >= 0 }
	case (fn == overloads.TypeConvertInt || fn == overloads.TypeConvertUint) && a.kind == k:
		op = func(x fastVal) (fastVal, bool) { return x, true }
	default:
		return nil
	}
	slow := c.binding(ov, fn)
	return func(m protoreflect.Message) fastVal {
		x := f(m)
		if x.err != nil {
			return x
		}
		if r, ok := op(x); ok {
			return r
		}
		if slow == nil || slow.Unary == nil {
			return errVal(types.NewErrWithNodeID(id, "no such overload: %s", fn))
		}
		return fromRef(k, types.LabelErrNode(id, slow.Unary(toRef(a.kind, x))))
	}
}

// equalOp returns equality of kinds a and b as CEL's == (or the dialect's
// @eq between ints and uints) decides it; nil leaves doubles to CEL.
func equalOp(a, b fastKind) func(x, y fastVal) bool {
	switch {
	case a == b && a != fastDouble && a != fastString:
		return func(x, y fastVal) bool { return x.n == y.n }
	case a == b && a == fastString:
		return func(x, y fastVal) bool { return x.s == y.s }
	case a == fastInt && b == fastUint:
		return func(x, y fastVal) bool { return int64(x.n) >= 0 && x.n == y.n }
	case a == fastUint && b == fastInt:
		return func(x, y fastVal) bool { return int64(y.n) >= 0 && x.n == y.n }
	}
	return nil
}

// compareOp returns the ordering of kinds a and b (-1, 0, 1), or nil for
// doubles, which CEL's bindings order.
func compareOp(a, b fastKind) func(x, y fastVal) int {
	switch {
	case a == b && (a == fastUint || a == fastBool):
		return func(x, y fastVal) int { return cmp3(x.n, y.n) }
	case a == b && a == fastInt:
		return func(x, y fastVal) int { return cmp3(int64(x.n), int64(y.n)) }
	case a == b && a == fastString:
		return func(x, y fastVal) int { return strings.Compare(x.s, y.s) }
	case a == fastInt && b == fastUint:
		return func(x, y fastVal) int {
			if int64(x.n) < 0 {
				return -1
			}
			return cmp3(x.n, y.n)
		}
	case a == fastUint && b == fastInt:
		return func(x, y fastVal) int {
			if int64(y.n) < 0 {
				return 1
			}
			return cmp3(x.n, y.n)
		}
	}
	return nil
}

func cmp3[T int64 | uint64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func orderOp(fn string, cmp func(x, y fastVal) int) binaryOp {
	var test func(int) bool
	switch fn {
	case operators.Less:
		test = func(c int) bool { return c < 0 }
	case operators.LessEquals:
		test = func(c int) bool { return c <= 0 }
	case operators.Greater:
		test = func(c int) bool { return c > 0 }
	default:
		test = func(c int) bool { return c >= 0 }
	}
	return func(x, y fastVal) (fastVal, bool) { return boolVal(test(cmp(x, y))), true }
}

// arithOp returns +, -, *, / and % on ints or uints, declining (ok false)
// exactly where CEL gives an error: overflow, division by zero.
func arithOp(fn string, k fastKind) binaryOp {
	switch k {
	case fastInt:
		switch fn {
		case operators.Add:
			return func(x, y fastVal) (fastVal, bool) {
				a, b := int64(x.n), int64(y.n)
				s := a + b
				return fastVal{n: uint64(s)}, (s > a) == (b > 0)
			}
		case operators.Subtract:
			return func(x, y fastVal) (fastVal, bool) {
				a, b := int64(x.n), int64(y.n)
				d := a - b
				return fastVal{n: uint64(d)}, (d < a) == (b > 0)
			}
		case operators.Multiply:
			return func(x, y fastVal) (fastVal, bool) {
				a, b := int64(x.n), int64(y.n)
				const lim = 1 << 31
				return fastVal{n: uint64(a * b)}, a > -lim && a < lim && b > -lim && b < lim
			}
		case operators.Divide:
			return func(x, y fastVal) (fastVal, bool) {
				a, b := int64(x.n), int64(y.n)
				if b == 0 || b == -1 && a == math.MinInt64 {
					return fastVal{}, false
				}
				return fastVal{n: uint64(a / b)}, true
			}
		case operators.Modulo:
			return func(x, y fastVal) (fastVal, bool) {
				a, b := int64(x.n), int64(y.n)
				if b == 0 || b == -1 && a == math.MinInt64 {
					return fastVal{}, false
				}
				return fastVal{n: uint64(a % b)}, true
			}
		}
	case fastUint:
		switch fn {
		case operators.Add:
			return func(x, y fastVal) (fastVal, bool) {
				s, carry := bits.Add64(x.n, y.n, 0)
				return fastVal{n: s}, carry == 0
			}
		case operators.Subtract:
			return func(x, y fastVal) (fastVal, bool) { return fastVal{n: x.n - y.n}, y.n <= x.n }
		case operators.Multiply:
			return func(x, y fastVal) (fastVal, bool) {
				hi, lo := bits.Mul64(x.n, y.n)
				return fastVal{n: lo}, hi == 0
			}
		case operators.Divide:
			return func(x, y fastVal) (fastVal, bool) {
				if y.n == 0 {
					return fastVal{}, false
				}
				return fastVal{n: x.n / y.n}, true
			}
		case operators.Modulo:
			return func(x, y fastVal) (fastVal, bool) {
				if y.n == 0 {
					return fastVal{}, false
				}
				return fastVal{n: x.n % y.n}, true
			}
		}
	}
	return nil
}

// bitOp is the dialect's &, | and ^ (dialect.go): int when both operands
// are ints, uint otherwise, and a negative int with a uint is an error.
func bitOp(id int64, op string, ka, kb, k fastKind) binaryOp {
	if !isIntegral(ka) || !isIntegral(kb) || k != resultOfBitwise(ka, kb) {
		return nil
	}
	mixed := ka != kb
	return func(x, y fastVal) (fastVal, bool) {
		if mixed {
			if ka == fastInt && int64(x.n) < 0 {
				return errVal(types.LabelErrNode(id, negativeWithUint(op, int64(x.n)))), true
			}
			if kb == fastInt && int64(y.n) < 0 {
				return errVal(types.LabelErrNode(id, negativeWithUint(op, int64(y.n)))), true
			}
		}
		return fastVal{n: bitwiseOp(op, x.n, y.n)}, true
	}
}

// shiftOp is the dialect's << and >>: the type of the left operand, a
// negative count is an error, 64 or more shifts every bit out.
func shiftOp(id int64, left bool, ka, kb, k fastKind) binaryOp {
	if !isIntegral(ka) || !isIntegral(kb) || k != ka {
		return nil
	}
	return func(x, y fastVal) (fastVal, bool) {
		if kb == fastInt && int64(y.n) < 0 {
			_, err := shiftCountOf(types.Int(int64(y.n)))
			return errVal(types.LabelErrNode(id, err)), true
		}
		n := min(y.n, 64)
		switch {
		case left:
			return fastVal{n: x.n << n}, true
		case ka == fastInt:
			return fastVal{n: uint64(int64(x.n) >> n)}, true
		}
		return fastVal{n: x.n >> n}, true
	}
}

func isIntegral(k fastKind) bool { return k == fastInt || k == fastUint }

func resultOfBitwise(a, b fastKind) fastKind {
	if a == fastInt && b == fastInt {
		return fastInt
	}
	return fastUint
}

// binding returns CEL's implementation of overload ov of fn, as the
// interpreter's dispatcher finds it, or nil.
func (c *fastCompiler) binding(ov, fn string) *functions.Overload {
	bs := c.lookup(fn)
	for _, b := range bs {
		if b.Operator == ov {
			return b
		}
	}
	for _, b := range bs {
		if b.Operator == fn {
			return b
		}
	}
	return nil
}

// delegate calls CEL's own binding for a call on fast values: the values
// are boxed, but the semantics are CEL's by construction. Late-bound,
// non-strict and asynchronous functions are left to the interpreter.
func (c *fastCompiler) delegate(id int64, fn, ov string, args []*fastExpr, k fastKind) fastFn {
	b := c.binding(ov, fn)
	if b == nil || b.NonStrict || b.LateBound || b.Async != nil {
		return nil
	}
	kinds := make([]fastKind, len(args))
	evals := make([]fastFn, len(args))
	for i, a := range args {
		kinds[i], evals[i] = a.kind, a.eval
	}
	// call evaluates the arguments in order; an error stops there.
	call := func(m protoreflect.Message, apply func([]ref.Val) ref.Val) fastVal {
		var buf [3]ref.Val
		vals := buf[:0]
		for i, f := range evals {
			x := f(m)
			if x.err != nil {
				return x
			}
			vals = append(vals, toRef(kinds[i], x))
		}
		return fromRef(k, types.LabelErrNode(id, apply(vals)))
	}
	switch {
	case len(args) == 1 && b.Unary != nil:
		return func(m protoreflect.Message) fastVal {
			return call(m, func(v []ref.Val) ref.Val { return b.Unary(v[0]) })
		}
	case len(args) == 2 && b.Binary != nil:
		return func(m protoreflect.Message) fastVal {
			return call(m, func(v []ref.Val) ref.Val { return b.Binary(v[0], v[1]) })
		}
	case b.Function != nil:
		return func(m protoreflect.Message) fastVal {
			return call(m, func(v []ref.Val) ref.Val { return b.Function(v...) })
		}
	}
	return nil
}

// integerFn returns a specialised form of the operations on two ints or
// two uints that cannot fail (bitwise &, |, ^, equality, order), the most
// common in predicates, with a constant right operand read once: one call
// per operation instead of three. nil when the operation is another.
//
// A uint with a constant int that is not negative is a uint with a uint for
// every one of them (dialect.go).
func integerFn(fn string, a, b *fastExpr) fastFn {
	mixed := a.kind == fastUint && b.kind == fastInt && b.konst != nil && int64(b.konst.n) >= 0
	if a.kind != b.kind && !mixed || !isIntegral(a.kind) {
		return nil
	}
	const (
		opAnd = iota
		opOr
		opXor
		opEq
		opNe
		opLt
		opLe
		opGt
		opGe
	)
	code := map[string]int{
		fnBitAnd: opAnd, fnBitOr: opOr, fnBitXor: opXor, operators.Equals: opEq, operators.NotEquals: opNe, fnEq: opEq, fnNe: opNe,
		operators.Less: opLt, operators.LessEquals: opLe, operators.Greater: opGt, operators.GreaterEquals: opGe,
	}
	op, ok := code[fn]
	if !ok {
		return nil
	}
	signed := a.kind == fastInt
	fa, fb, kb := a.eval, b.eval, b.konst
	return func(m protoreflect.Message) fastVal {
		x := fa(m)
		if x.err != nil {
			return x
		}
		var y fastVal
		if kb != nil {
			y = *kb
		} else if y = fb(m); y.err != nil {
			return y
		}
		if signed && op >= opLt {
			x.n ^= 1 << 63 // order signed values as unsigned ones
			y.n ^= 1 << 63
		}
		switch op {
		case opAnd:
			return fastVal{n: x.n & y.n}
		case opOr:
			return fastVal{n: x.n | y.n}
		case opXor:
			return fastVal{n: x.n ^ y.n}
		case opEq:
			return boolVal(x.n == y.n)
		case opNe:
			return boolVal(x.n != y.n)
		case opLt:
			return boolVal(x.n < y.n)
		case opLe:
			return boolVal(x.n <= y.n)
		case opGt:
			return boolVal(x.n > y.n)
		}
		return boolVal(x.n >= y.n)
	}
}
