package rules

import (
	"bytes"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/internal/celwalk"
)

// A rule of the common shape COND ? VALUE : e leaves an entry as it is when
// COND is false. When one of the conjuncts of COND compares a string field
// reached through singular messages with a non-empty string literal
// (e.reg.name == "/old/lib.so"), COND is false for every entry whose wire
// form does not hold the literal's bytes: a string field is stored as its
// bytes. Such entries are neither unmarshalled nor evaluated (false && x is
// false whatever x is, errors included).

// prefilterNeedle returns the bytes that an entry's payload must hold for
// the rule to change it, nil when the rule has no such shape.
func prefilterNeedle(a *celast.AST, md protoreflect.MessageDescriptor) []byte {
	args, ok := celwalk.CallArgs(a.Expr(), operators.Conditional, 3)
	if !ok || args[2].Kind() != celast.IdentKind || args[2].AsIdent() != "e" {
		return nil
	}
	var best []byte
	var visit func(x celast.Expr)
	visit = func(x celast.Expr) {
		if in, ok := celwalk.CallArgs(x, celwalk.Truthy, 1); ok {
			x = in[0]
		}
		if and, ok := celwalk.CallArgs(x, operators.LogicalAnd, 2); ok {
			visit(and[0])
			visit(and[1])
			return
		}
		eq, ok := celwalk.CallArgs(x, operators.Equals, 2)
		if !ok {
			return
		}
		for i := range 2 {
			lit, sel := eq[i], eq[1-i]
			if lit.Kind() != celast.LiteralKind {
				continue
			}
			s, ok := lit.AsLiteral().(types.String)
			if ok && len(s) > len(best) && stringFieldOfEntry(sel, md) {
				best = []byte(s)
			}
		}
	}
	visit(args[0])
	return best
}

// stringFieldOfEntry reports whether x is e.a.b...z where every step but
// the last is a singular message field and z a singular string field.
func stringFieldOfEntry(x celast.Expr, md protoreflect.MessageDescriptor) bool {
	var names []protoreflect.Name
	for x.Kind() == celast.SelectKind {
		sel := x.AsSelect()
		if sel.IsTestOnly() {
			return false
		}
		names = append(names, protoreflect.Name(sel.FieldName()))
		x = sel.Operand()
	}
	if x.Kind() != celast.IdentKind || x.AsIdent() != "e" || len(names) == 0 {
		return false
	}
	cur := md
	for i := len(names) - 1; i >= 0; i-- {
		fd := cur.Fields().ByName(names[i])
		if fd == nil || fd.IsList() || fd.IsMap() {
			return false
		}
		if i == 0 {
			return fd.Kind() == protoreflect.StringKind
		}
		if cur = fd.Message(); cur == nil {
			return false
		}
	}
	return false
}

// skips reports whether the rule leaves unchanged the entry with this
// payload, without evaluating it.
func (r *Rule) skips(payload []byte) bool {
	return r.needle != nil && !bytes.Contains(payload, r.needle)
}
