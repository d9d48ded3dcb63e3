package query

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/parser"

	"github.com/critq/critq/internal/celwalk"
)

// critq's CEL dialect is standard CEL plus:
//
//   - Go's bitwise operators &, |, ^, <<, >> and unary ~ (see rewrite.go), on
//     int and uint in any mix. The result is an int when both operands are
//     ints, a uint otherwise; a negative int combined with a uint is an
//     error. Shifts take the type of their left operand; the count may be an
//     int or a uint, a negative count is an error, and as in Go a count of 64
//     or more shifts every bit out (0, or -1 for >> of a negative int).
//   - Numbers as predicates: in filter, exists, all, exists_one and the
//     three-argument map, a predicate that is an int, uint or double counts
//     as true when it is not zero, and null counts as false, so
//     `vmas.filter(v, v.prot & PROT_EXEC)` works as written.
//   - int, uint and double compare with each other, == and != and in
//     included: `t.pid == 1` holds for a uint32 pid of 1.
//   - Compile errors that point into the text as the user wrote it, and
//     suggest a declared name for a misspelt identifier or field.
//   - The functions and constants of critq.lib (lib.go, constants.go).

// Names of the functions the dialect inserts into the AST. The leading @
// keeps them out of reach of the expression syntax.
const (
	fnTruthy   = celwalk.Truthy
	fnEq       = "@eq"
	fnNe       = "@ne"
	fnIn       = "@in_num"
	fnProbeEq  = "@probe_eq"
	fnProbeIn  = "@probe_in"
	fnProbeAny = "@probe_any"
)

// dialectOptions returns every cel.EnvOption of critq's CEL dialect:
// operators, macros, overloads, functions and constants. Compile with
// compileExpr to get the bitwise operators and the mixed-type equality.
func dialectOptions() []cel.EnvOption {
	return []cel.EnvOption{cel.Lib(dialectLib{}), cel.Lib(funcLib{})}
}

// Library returns critq's CEL dialect as one cel.EnvOption, for programs that
// build their own cel.Env. Expressions must be compiled with the query
// package to use the bitwise operators and mixed-type equality.
func Library() cel.EnvOption {
	return func(e *cel.Env) (*cel.Env, error) { return e.Extend(dialectOptions()...) }
}

// dialectLib holds the operators and macros of the dialect.
type dialectLib struct{}

// LibraryName implements cel.SingletonLibrary.
func (dialectLib) LibraryName() string { return "critq.dialect" }

// CompileOptions implements cel.Library.
func (dialectLib) CompileOptions() []cel.EnvOption {
	opts := []cel.EnvOption{
		cel.CrossTypeNumericComparisons(true),
		cel.Macros(
			truthyMacro(operators.Filter, 2, parser.MakeFilter),
			truthyMacro(operators.Exists, 2, parser.MakeExists),
			truthyMacro(operators.All, 2, parser.MakeAll),
			truthyMacro(operators.ExistsOne, 2, parser.MakeExistsOne),
			truthyMacro("existsOne", 2, parser.MakeExistsOne),
			truthyMacro(operators.Map, 3, parser.MakeMap),
		),
		cel.Function(fnTruthy,
			cel.Overload("critq_truthy_bool", []*cel.Type{cel.BoolType}, cel.BoolType,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return v })),
			cel.Overload("critq_truthy_int", []*cel.Type{cel.IntType}, cel.BoolType,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return types.Bool(v.(types.Int) != 0) })),
			cel.Overload("critq_truthy_uint", []*cel.Type{cel.UintType}, cel.BoolType,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return types.Bool(v.(types.Uint) != 0) })),
			cel.Overload("critq_truthy_double", []*cel.Type{cel.DoubleType}, cel.BoolType,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return types.Bool(v.(types.Double) != 0) })),
			cel.Overload("critq_truthy_null", []*cel.Type{cel.NullType}, cel.BoolType,
				cel.UnaryBinding(func(ref.Val) ref.Val { return types.False })),
		),
		cel.Function(fnProbeEq, cel.Overload("critq_probe_eq", []*cel.Type{cel.TypeParamType("A"), cel.TypeParamType("B")}, cel.BoolType,
			cel.BinaryBinding(func(a, b ref.Val) ref.Val { return a.Equal(b) }))),
		cel.Function(fnProbeIn, cel.Overload("critq_probe_in", []*cel.Type{cel.TypeParamType("A"), cel.TypeParamType("B")}, cel.BoolType,
			cel.BinaryBinding(func(a, b ref.Val) ref.Val { return types.False }))),
		cel.Function(fnProbeAny,
			cel.Overload("critq_probe_any", []*cel.Type{cel.TypeParamType("A")}, cel.DynType,
				cel.UnaryBinding(func(a ref.Val) ref.Val { return a })),
			cel.Overload("critq_probe_any0", nil, cel.DynType,
				cel.FunctionBinding(func(...ref.Val) ref.Val { return types.NullValue }))),
	}
	opts = append(opts, mixedEqualityFunctions()...)
	return append(opts, bitwiseFunctions()...)
}

// ProgramOptions implements cel.Library.
func (dialectLib) ProgramOptions() []cel.ProgramOption { return nil }

// truthyMacro replaces a comprehension macro with one that wraps its
// predicate (the argument before last) in @truthy. compileExpr removes the
// wrapper again where the predicate is a bool.
func truthyMacro(name string, args int, expand parser.MacroExpander) cel.Macro {
	return cel.ReceiverMacro(name, args, func(eh parser.ExprHelper, target ast.Expr, in []ast.Expr) (ast.Expr, *common.Error) {
		out := append([]ast.Expr(nil), in...)
		out[1] = eh.NewCall(fnTruthy, in[1])
		return expand(eh, target, out)
	})
}

// mixedEqualityFunctions declares ==, != and in between different numeric
// types, under names of their own: cel-go's _==_ has one overload for all
// types, (A, A), that no other overload may overlap.
func mixedEqualityFunctions() []cel.EnvOption {
	var eq, ne, in []cel.FunctionOpt
	numbers := []*cel.Type{cel.IntType, cel.UintType, cel.DoubleType}
	for _, a := range numbers {
		for _, b := range numbers {
			if a == b {
				continue
			}
			id := a.String() + "_" + b.String()
			eq = append(eq, cel.Overload("critq_eq_"+id, []*cel.Type{a, b}, cel.BoolType,
				cel.BinaryBinding(func(x, y ref.Val) ref.Val { return x.Equal(y) })))
			ne = append(ne, cel.Overload("critq_ne_"+id, []*cel.Type{a, b}, cel.BoolType,
				cel.BinaryBinding(func(x, y ref.Val) ref.Val { return !x.Equal(y).(types.Bool) })))
			in = append(in, cel.Overload("critq_in_"+id, []*cel.Type{a, cel.ListType(b)}, cel.BoolType,
				cel.BinaryBinding(func(x, y ref.Val) ref.Val { return y.(traits.Container).Contains(x) })))
		}
	}
	return []cel.EnvOption{cel.Function(fnEq, eq...), cel.Function(fnNe, ne...), cel.Function(fnIn, in...)}
}

// bitwiseFunctions declares the functions the bitwise operators become.
func bitwiseFunctions() []cel.EnvOption {
	var opts []cel.EnvOption
	for _, fn := range []string{fnBitAnd, fnBitOr, fnBitXor} {
		op := opSymbol(fn)
		opts = append(opts, cel.Function(fn,
			cel.Overload(fn+"int_int", []*cel.Type{cel.IntType, cel.IntType}, cel.IntType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val {
					return types.Int(int64(bitwiseOp(op, uint64(a.(types.Int)), uint64(b.(types.Int)))))
				})),
			cel.Overload(fn+"uint_uint", []*cel.Type{cel.UintType, cel.UintType}, cel.UintType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val {
					return types.Uint(bitwiseOp(op, uint64(a.(types.Uint)), uint64(b.(types.Uint))))
				})),
			cel.Overload(fn+"int_uint", []*cel.Type{cel.IntType, cel.UintType}, cel.UintType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val {
					x := a.(types.Int)
					if x < 0 {
						return negativeWithUint(op, int64(x))
					}
					return types.Uint(bitwiseOp(op, uint64(x), uint64(b.(types.Uint))))
				})),
			cel.Overload(fn+"uint_int", []*cel.Type{cel.UintType, cel.IntType}, cel.UintType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val {
					y := b.(types.Int)
					if y < 0 {
						return negativeWithUint(op, int64(y))
					}
					return types.Uint(bitwiseOp(op, uint64(a.(types.Uint)), uint64(y)))
				})),
		))
	}
	for _, fn := range []string{fnShl, fnShr} {
		left := fn == fnShl
		opts = append(opts, cel.Function(fn,
			cel.Overload(fn+"int_int", []*cel.Type{cel.IntType, cel.IntType}, cel.IntType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val { return shiftVal(left, a.(types.Int), b) })),
			cel.Overload(fn+"int_uint", []*cel.Type{cel.IntType, cel.UintType}, cel.IntType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val { return shiftVal(left, a.(types.Int), b) })),
			cel.Overload(fn+"uint_int", []*cel.Type{cel.UintType, cel.IntType}, cel.UintType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val { return shiftVal(left, a.(types.Uint), b) })),
			cel.Overload(fn+"uint_uint", []*cel.Type{cel.UintType, cel.UintType}, cel.UintType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val { return shiftVal(left, a.(types.Uint), b) })),
		))
	}
	opts = append(opts, cel.Function(fnBitNot,
		cel.Overload(fnBitNot+"int", []*cel.Type{cel.IntType}, cel.IntType,
			cel.UnaryBinding(func(a ref.Val) ref.Val { return ^a.(types.Int) })),
		cel.Overload(fnBitNot+"uint", []*cel.Type{cel.UintType}, cel.UintType,
			cel.UnaryBinding(func(a ref.Val) ref.Val { return ^a.(types.Uint) })),
	))
	return opts
}

func bitwiseOp(op string, a, b uint64) uint64 {
	switch op {
	case "&":
		return a & b
	case "|":
		return a | b
	}
	return a ^ b
}

func negativeWithUint(op string, v int64) ref.Val {
	return types.NewErr("negative int %d %s uint: convert one side with int() or uint()", v, op)
}

// shiftCountOf returns a shift count, or an error value for a negative one.
func shiftCountOf(b ref.Val) (uint64, ref.Val) {
	switch n := b.(type) {
	case types.Int:
		if n < 0 {
			return 0, types.NewErr("negative shift count %d", int64(n))
		}
		return uint64(n), nil
	case types.Uint:
		return uint64(n), nil
	}
	return 0, types.MaybeNoSuchOverloadErr(b)
}

// shiftVal shifts a by the count b; as in Go, a count of 64 or more shifts
// every bit out.
func shiftVal[T types.Int | types.Uint](left bool, a T, b ref.Val) ref.Val {
	n, err := shiftCountOf(b)
	if err != nil {
		return err
	}
	r := a >> min(n, 64)
	if left {
		r = a << min(n, 64)
	}
	return any(r).(ref.Val)
}

// CompileError is a compile error of a critq expression, located in the text
// as the user wrote it. Error returns cel-go's rendering, with a caret under
// the fault:
//
//	ERROR: <input>:1:8: undeclared reference to 'vmass'; did you mean 'vmas'?
//	 | size(vmass) > 0
//	 | .......^
type CompileError struct {
	// File names the expression in messages; empty reads <input>, as in
	// cel-go.
	File string
	Src  string // the expression
	Line int    // 1-based line of the fault, 0 if unknown
	Col  int    // 1-based column of the fault in characters, 0 if unknown
	Msg  string
	// More holds the compilation's further errors, in source order.
	More []*CompileError
}

// Error renders every error of the compilation, one caret rendering each.
func (e *CompileError) Error() string {
	var b strings.Builder
	e.render(&b)
	for _, m := range e.More {
		b.WriteByte('\n')
		m.render(&b)
	}
	return b.String()
}

func (e *CompileError) render(b *strings.Builder) {
	file := e.File
	if file == "" {
		file = "<input>"
	}
	if e.Line <= 0 {
		fmt.Fprintf(b, "ERROR: %s: %s", file, e.Msg)
		return
	}
	fmt.Fprintf(b, "ERROR: %s:%d:%d: %s", file, e.Line, e.Col, e.Msg)
	lines := strings.Split(e.Src, "\n")
	if e.Line > len(lines) {
		return
	}
	line := strings.ReplaceAll(strings.TrimSuffix(lines[e.Line-1], "\r"), "\t", " ")
	b.WriteString("\n | ")
	b.WriteString(line)
	b.WriteString("\n | ")
	rest := line
	for i := 1; i < e.Col && rest != ""; i++ {
		_, n := utf8.DecodeRuneInString(rest)
		rest = rest[n:]
		if n > 1 {
			b.WriteString("\uff0e")
		} else {
			b.WriteByte('.')
		}
	}
	if _, n := utf8.DecodeRuneInString(rest); n > 1 {
		b.WriteString("\uff3e")
	} else {
		b.WriteByte('^')
	}
}

// compileExpr rewrites, parses and checks src in env, which must include
// dialectOptions. It returns the checked AST, or a *CompileError.
func compileExpr(env *cel.Env, src string) (*cel.Ast, error) {
	rw := rewriteBitwise(src)
	parse := func() *cel.Ast {
		a, iss := env.Parse(rw.text)
		if iss.Err() != nil {
			return nil
		}
		spreadTruthy(a.NativeRep())
		return a
	}
	parsed := parse()
	if parsed == nil {
		_, iss := env.Parse(rw.text)
		if rw.standIn != "" {
			// The rewriter could not parse src: let CEL find the fault in a
			// stand-in of the same shape.
			if _, siss := env.Parse(rw.standIn); siss.Err() != nil {
				iss = siss
			}
		}
		return nil, newCompileError(env, src, &rw, nil, nil, iss)
	}
	var pr *typeProbe
	if sites := dialectSites(parsed.NativeRep()); len(sites) > 0 {
		pr = probeTypes(env, parse)
		if pr.typed != nil {
			if bad := adjustSites(sites, pr.typed, parsed.NativeRep().SourceInfo()); bad != nil {
				return nil, predicateError(src, &rw, parsed.NativeRep(), bad, pr.typed.GetType(bad.ID()))
			}
		}
	}
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		if pr == nil {
			pr = probeTypes(env, parse)
		}
		return nil, newCompileError(env, src, &rw, parsed.NativeRep(), pr, iss)
	}
	return checked, nil
}

// typeProbe is the outcome of type-checking an expression in a permissive form.
type typeProbe struct {
	typed    *ast.AST        // the checked probe AST, or nil
	operands map[int64]int64 // a select with an undefined field -> its operand
}

// probeTypes types the operands of an expression with a probe: ==, != and in
// become functions that take anything, and every expression the checker
// rejects becomes a dyn value, until the rest checks (a few rounds at most).
// The types found then decide the dialect's rewrites, and the fields a
// misspelt field name is suggested from.
func probeTypes(env *cel.Env, parse func() *cel.Ast) *typeProbe {
	bad := map[int64]bool{}
	for range 4 {
		p := parse()
		if p == nil {
			return &typeProbe{}
		}
		pr := &typeProbe{operands: map[int64]int64{}}
		fac := ast.NewExprFactory()
		ast.PreOrderVisit(p.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
			switch {
			case !bad[e.ID()]:
				toProbeCall(fac, e)
			case e.Kind() == ast.SelectKind:
				op := e.AsSelect().Operand()
				pr.operands[e.ID()] = op.ID()
				e.SetKindCase(fac.NewCall(e.ID(), fnProbeAny, op))
			default:
				e.SetKindCase(fac.NewCall(e.ID(), fnProbeAny))
			}
		}))
		checked, iss := env.Check(p)
		if iss.Err() == nil {
			pr.typed = checked.NativeRep()
			return pr
		}
		progress := false
		for _, e := range iss.Errors() {
			if e.ExprID != 0 && !bad[e.ExprID] {
				bad[e.ExprID] = true
				progress = true
			}
		}
		if !progress {
			break
		}
	}
	return &typeProbe{}
}

// spreadTruthy carries the truthiness of predicates into their logic: in
// @truthy(x), the operands of && and || and of ! and the condition of ?:
// are wrapped in @truthy too, so that a number counts as true there as well
// (`v.prot & PROT_READ && v.prot & PROT_EXEC`). New nodes get ids above the
// parser's, in a deterministic order, so every parse of a text agrees.
func spreadTruthy(a *ast.AST) {
	fac := ast.NewExprFactory()
	info := a.SourceInfo()
	next := ast.MaxID(a)
	wrap := func(x ast.Expr) ast.Expr {
		id := next
		next++
		if r, ok := info.GetOffsetRange(x.ID()); ok {
			info.SetOffsetRange(id, r)
		}
		return fac.NewCall(id, fnTruthy, x)
	}
	var spread func(x ast.Expr)
	spread = func(x ast.Expr) {
		if x.Kind() != ast.CallKind {
			return
		}
		c := x.AsCall()
		args := append([]ast.Expr(nil), c.Args()...)
		n := 0
		switch c.FunctionName() {
		case operators.LogicalAnd, operators.LogicalOr:
			n = len(args)
		case operators.LogicalNot, operators.Conditional:
			n = 1
		default:
			return
		}
		for i := range n {
			spread(args[i])
			args[i] = wrap(args[i])
		}
		x.SetKindCase(fac.NewCall(x.ID(), c.FunctionName(), args...))
	}
	var preds []ast.Expr
	ast.PreOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == fnTruthy && len(e.AsCall().Args()) == 1 {
			preds = append(preds, e.AsCall().Args()[0])
		}
	}))
	for _, p := range preds {
		spread(p)
	}
}

// dialectSites returns the calls whose form depends on operand types: ==,
// !=, in and @truthy, outer calls before inner ones.
func dialectSites(a *ast.AST) []ast.Expr {
	var out []ast.Expr
	ast.PreOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.CallKind || len(e.AsCall().Args()) == 0 {
			return
		}
		switch e.AsCall().FunctionName() {
		case operators.Equals, operators.NotEquals, operators.In, fnTruthy:
			out = append(out, e)
		}
	}))
	return out
}

// toProbeCall replaces ==, != and in by the probe's functions.
func toProbeCall(fac ast.ExprFactory, e ast.Expr) {
	if e.Kind() != ast.CallKind {
		return
	}
	c := e.AsCall()
	switch c.FunctionName() {
	case operators.Equals, operators.NotEquals:
		e.SetKindCase(fac.NewCall(e.ID(), fnProbeEq, c.Args()...))
	case operators.In:
		e.SetKindCase(fac.NewCall(e.ID(), fnProbeIn, c.Args()...))
	}
}

// adjustSites rewrites the dialect sites by the operand types found by the probe:
// == and != between different numeric types become @eq and @ne, in of a
// number in a list of another numeric type becomes @in_num, and @truthy
// around a bool goes.
//
// It returns a predicate whose type is neither bool, a number, null nor
// dyn (the checker lets any message pass for null), or nil.
func adjustSites(sites []ast.Expr, typeProbe *ast.AST, info *ast.SourceInfo) ast.Expr {
	fac := ast.NewExprFactory()
	// Inner sites first: unwrapping @truthy copies its operand.
	for i := len(sites) - 1; i >= 0; i-- {
		e := sites[i]
		c := e.AsCall()
		args := c.Args()
		typ := func(i int) *types.Type { return typeProbe.GetType(args[i].ID()) }
		switch c.FunctionName() {
		case fnTruthy:
			t := typ(0)
			if t == nil {
				continue
			}
			switch t.Kind() {
			case types.BoolKind:
				// The call's id now stands for the operand: so must its
				// place in the text.
				if r, ok := info.GetOffsetRange(args[0].ID()); ok {
					info.SetOffsetRange(e.ID(), r)
				}
				e.SetKindCase(args[0])
			case types.IntKind, types.UintKind, types.DoubleKind, types.NullTypeKind, types.DynKind:
			default:
				return args[0]
			}
		case operators.Equals, operators.NotEquals:
			if len(args) == 2 && mixedNumericTypes(typ(0), typ(1)) {
				fn := fnEq
				if c.FunctionName() == operators.NotEquals {
					fn = fnNe
				}
				e.SetKindCase(fac.NewCall(e.ID(), fn, args...))
			}
		case operators.In:
			if l := typ(1); len(args) == 2 && l != nil && l.Kind() == types.ListKind &&
				len(l.Parameters()) == 1 && mixedNumericTypes(typ(0), l.Parameters()[0]) {
				e.SetKindCase(fac.NewCall(e.ID(), fnIn, args...))
			}
		}
	}
	return nil
}

func isNumericType(t *types.Type) bool {
	if t == nil {
		return false
	}
	k := t.Kind()
	return k == types.IntKind || k == types.UintKind || k == types.DoubleKind
}

func mixedNumericTypes(a, b *types.Type) bool {
	return isNumericType(a) && isNumericType(b) && a.Kind() != b.Kind()
}

// newCompileError turns cel-go's issues into a *CompileError located in the
// user's text. parsed (the AST that failed to check) and pr (the probe) may
// be nil; they place predicate errors and find field suggestions.
func newCompileError(env *cel.Env, src string, rw *rewriteResult, parsed *ast.AST, pr *typeProbe, iss *cel.Issues) error {
	var out []*CompileError
	lines := lineStartOffsets(rw.text)
	for _, e := range iss.Errors() {
		ce := &CompileError{Src: src, Msg: e.Message}
		off := -1
		if parsed != nil {
			off = predicateOffset(parsed, e, rw.text, lines)
		}
		if off < 0 && e.Location != nil && e.Location.Line() > 0 {
			off = celOffset(rw.text, lines, e.Location.Line(), e.Location.Column())
		}
		if off >= 0 {
			ce.Line, ce.Col = srcLineCol(src, rw.pos.source(off))
			ce.Msg = restoreOperator(ce.Msg, src, rw.standIn, off)
		}
		ce.Msg = fixCELMessage(env, ce.Msg, probeFields(env, pr, e.ExprID))
		out = append(out, ce)
	}
	if len(out) == 0 {
		return &CompileError{Src: src, Msg: iss.Err().Error()}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Line < out[j].Line || out[i].Line == out[j].Line && out[i].Col < out[j].Col
	})
	first := out[0]
	first.More = out[1:]
	return first
}

// predicateError reports a predicate of a type that is no truth value.
func predicateError(src string, rw *rewriteResult, parsed *ast.AST, pred ast.Expr, t *types.Type) error {
	return errorAt(src, *rw, parsed, pred.ID(), "predicate must be a bool or a number, not "+t.String())
}

// restoreOperator puts the user's operator back into a syntax error that
// quotes its stand-in at offset off.
func restoreOperator(msg, src, standIn string, off int) string {
	if standIn == "" || off >= len(src) || src[off] == standIn[off] {
		return msg
	}
	op := src[off : off+1]
	if op == "<" || op == ">" {
		op = src[off : off+2]
	}
	return strings.Replace(msg, "'"+standIn[off:off+1]+"'", "'"+op+"'", 1)
}

// probeFields returns the fields of the message that the select id was
// applied to, as typed by the probe.
func probeFields(env *cel.Env, pr *typeProbe, id int64) []string {
	if pr == nil || pr.typed == nil {
		return nil
	}
	op, ok := pr.operands[id]
	if !ok {
		return nil
	}
	t := pr.typed.GetType(op)
	if t == nil || t.Kind() != types.StructKind {
		return nil
	}
	names, _ := env.CELTypeProvider().FindStructFieldNames(t.TypeName())
	return names
}

// predicateOffset returns the rewritten-text offset of an error about a predicate
// (@truthy), which is better shown at the predicate than at the macro, or
// -1.
func predicateOffset(a *ast.AST, e *common.Error, text string, lines []int) int {
	if e.ExprID == 0 || !strings.Contains(e.Message, "'"+fnTruthy+"'") {
		return -1
	}
	var arg ast.Expr
	ast.PreOrderVisit(a.Expr(), ast.NewExprVisitor(func(x ast.Expr) {
		if x.ID() == e.ExprID && x.Kind() == ast.CallKind && len(x.AsCall().Args()) == 1 {
			arg = x.AsCall().Args()[0]
		}
	}))
	if arg == nil {
		return -1
	}
	loc := a.SourceInfo().GetStartLocation(arg.ID())
	if loc.Line() <= 0 {
		return -1
	}
	return celOffset(text, lines, loc.Line(), loc.Column())
}

// lineStartOffsets returns the byte offset of each line of s.
func lineStartOffsets(s string) []int {
	starts := []int{0}
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// celOffset returns the byte offset of a cel-go location (1-based line,
// 0-based column in code points) in s.
func celOffset(s string, lines []int, line, col int) int {
	if line < 1 || line > len(lines) {
		return -1
	}
	off := lines[line-1]
	for ; col > 0 && off < len(s) && s[off] != '\n'; col-- {
		_, n := utf8.DecodeRuneInString(s[off:])
		off += n
	}
	return off
}

// srcLineCol returns the 1-based line and column (in code points) of byte
// offset off of s.
func srcLineCol(s string, off int) (int, int) {
	off = min(off, len(s))
	line := 1 + strings.Count(s[:off], "\n")
	start := strings.LastIndexByte(s[:off], '\n') + 1
	return line, 1 + utf8.RuneCountInString(s[start:off])
}

// fixCELMessage rewrites a cel-go message in the terms of the user's text:
// operators instead of the functions they became, and suggestions.
func fixCELMessage(env *cel.Env, msg string, fields []string) string {
	msg = strings.ReplaceAll(msg, " (in container '')", "")
	for _, fn := range []string{fnBitAnd, fnBitOr, fnBitXor, fnShl, fnShr, fnBitNot} {
		msg = strings.ReplaceAll(msg, "'"+fn+"'", "'"+opSymbol(fn)+"'")
	}
	if rest, ok := strings.CutPrefix(msg, "found no matching overload for '"+fnTruthy+"' applied to '("); ok {
		return "predicate must be a bool or a number, not " + strings.TrimSuffix(rest, ")'")
	}
	if name, ok := quotedAfter(msg, "undeclared reference to '"); ok && !strings.Contains(msg, "did you mean") {
		if s := suggestName(name, declaredCELNames(env)); s != "" {
			msg += "; did you mean '" + s + "'?"
		}
	}
	if name, ok := quotedAfter(msg, "undefined field '"); ok {
		if s := suggestName(name, fields); s != "" {
			msg += "; did you mean '" + s + "'?"
		}
	}
	if strings.Contains(msg, "applied to '(uint, int)'") || strings.Contains(msg, "applied to '(int, uint)'") {
		msg += " (write an unsigned literal as 4096u, or convert with uint() or int())"
	}
	return msg
}

// quotedAfter returns the name quoted after prefix at the start of msg.
func quotedAfter(msg, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, prefix)
	if !ok {
		return "", false
	}
	name, _, ok := strings.Cut(rest, "'")
	return name, ok
}

// declaredCELNames returns the identifiers, functions and macros of env that a
// user can write.
func declaredCELNames(env *cel.Env) []string {
	var names []string
	for _, v := range env.Variables() {
		names = append(names, v.Name())
	}
	for name := range env.Functions() {
		names = append(names, name)
	}
	for _, m := range env.Macros() {
		names = append(names, m.Function())
	}
	return names
}

// Suggest returns the candidate closest to name by edit distance, ignoring
// case, if it is close enough to be a likely misspelling; "" otherwise. It
// is the "did you mean" of compile errors, for other callers.
func Suggest(name string, candidates []string) string { return suggestName(name, candidates) }

// suggestName returns the candidate closest to name by edit distance, ignoring
// case, if it is close enough to be a likely misspelling; "" otherwise.
func suggestName(name string, candidates []string) string {
	limit := 2
	switch n := len(name); {
	case n <= 2:
		limit = 0
	case n <= 4:
		limit = 1
	}
	best, bestD := "", math.MaxInt
	lname := strings.ToLower(name)
	for _, c := range candidates {
		if c == name || c == "" || c[0] == '_' || c[0] == '@' {
			continue
		}
		d := nameDistance(lname, strings.ToLower(c))
		if d > limit {
			continue
		}
		if d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	return best
}

// nameDistance is the optimal string alignment distance between a and b
// (insertions, deletions, substitutions and transpositions of neighbours),
// on bytes.
func nameDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return math.MaxInt
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
