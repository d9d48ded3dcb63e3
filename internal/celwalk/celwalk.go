// Package celwalk holds what critq's packages that read checked CEL ASTs
// share: the names the dialect inserts into the AST and helpers to match
// calls.
package celwalk

import celast "cel.dev/cel-go/common/ast"

// Truthy is the function the dialect wraps around a condition that is not
// a bool (x & 4, a nullable field): true when not zero and not null. The
// leading @ keeps it out of reach of the expression syntax.
const Truthy = "@truthy"

// CallArgs returns the arguments of a global call of fn with n arguments.
func CallArgs(e celast.Expr, fn string, n int) ([]celast.Expr, bool) {
	if e.Kind() != celast.CallKind {
		return nil, false
	}
	call := e.AsCall()
	if call.IsMemberFunction() || call.FunctionName() != fn || len(call.Args()) != n {
		return nil, false
	}
	return call.Args(), true
}

// Scope is the names that the comprehensions around an expression bind.
// The zero Scope binds none.
type Scope struct{ names []string }

// Bound reports whether a comprehension around the expression binds name.
func (s Scope) Bound(name string) bool {
	for _, n := range s.names {
		if n == name {
			return true
		}
	}
	return false
}

func (s Scope) with(names ...string) Scope {
	out := Scope{names: make([]string, 0, len(s.names)+len(names))}
	out.names = append(out.names, s.names...)
	for _, n := range names {
		if n != "" {
			out.names = append(out.names, n)
		}
	}
	return out
}

// Role says what a child is to its parent expression.
type Role int

// The roles of children, by the kind of their parent.
const (
	Operand       Role = iota // of a select
	Target                    // of a member call
	Arg                       // of a call
	Element                   // of a list
	Key                       // of a map entry
	Value                     // of a map entry
	Field                     // the value of a field of a message literal
	IterRange                 // of a comprehension
	AccuInit                  // of a comprehension
	LoopCondition             // of a comprehension
	LoopStep                  // of a comprehension
	Result                    // of a comprehension
)

// Child is an operand of an expression, with the scope it is evaluated in.
type Child struct {
	Expr  celast.Expr
	Role  Role
	Scope Scope
}

// Children returns the operands of e, which is evaluated in sc, in the
// order of the source, each with its scope. This is the one place where
// critq says what a comprehension binds, as cel-go's checker does: its
// range and initial value are outside it; its condition and step see the
// iteration variables and the accumulator; its result the accumulator
// only. A call's target comes before its arguments.
func Children(e celast.Expr, sc Scope) []Child {
	var out []Child
	add := func(x celast.Expr, r Role, s Scope) { out = append(out, Child{Expr: x, Role: r, Scope: s}) }
	switch e.Kind() {
	case celast.SelectKind:
		add(e.AsSelect().Operand(), Operand, sc)
	case celast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			add(c.Target(), Target, sc)
		}
		for _, x := range c.Args() {
			add(x, Arg, sc)
		}
	case celast.ListKind:
		for _, x := range e.AsList().Elements() {
			add(x, Element, sc)
		}
	case celast.MapKind:
		for _, ent := range e.AsMap().Entries() {
			me := ent.AsMapEntry()
			add(me.Key(), Key, sc)
			add(me.Value(), Value, sc)
		}
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			add(f.AsStructField().Value(), Field, sc)
		}
	case celast.ComprehensionKind:
		c := e.AsComprehension()
		loop := sc.with(c.IterVar(), c.IterVar2(), c.AccuVar())
		add(c.IterRange(), IterRange, sc)
		add(c.AccuInit(), AccuInit, sc)
		add(c.LoopCondition(), LoopCondition, loop)
		add(c.LoopStep(), LoopStep, loop)
		add(c.Result(), Result, sc.with(c.AccuVar()))
	}
	return out
}

// Walk calls visit for e, evaluated in sc, and then, unless visit returns
// false, for each of its operands in turn (Children), depth first.
func Walk(e celast.Expr, sc Scope, visit func(e celast.Expr, sc Scope) bool) {
	if e == nil || !visit(e, sc) {
		return
	}
	for _, c := range Children(e, sc) {
		Walk(c.Expr, c.Scope, visit)
	}
}
