package query

import (
	"sort"
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/critq/critq/internal/celwalk"
)

// needs is what a checked expression reads of a dump: the top-level names
// it refers to and, for each view message, the fields it selects. A view
// value that reaches the result, a comparison or a function other than
// size() is needed whole (all), and so are the views nested in it.
type needs struct {
	vars   map[string]bool
	fields map[string]*fieldSet // by view message full name
	funcs  map[string]bool      // names of the functions called (mem.go)
}

type fieldSet struct {
	all   bool
	names map[string]bool
}

func newNeeds() *needs {
	return &needs{vars: map[string]bool{}, fields: map[string]*fieldSet{}, funcs: map[string]bool{}}
}

// has reports whether the query reads field of view message msg.
func (n *needs) has(msg, field string) bool {
	fs := n.fields[msg]
	return fs != nil && (fs.all || fs.names[field])
}

// any reports whether the query reads any of the fields of msg.
func (n *needs) any(msg string, fields ...string) bool {
	for _, f := range fields {
		if n.has(msg, f) {
			return true
		}
	}
	return false
}

func (n *needs) set(msg string) *fieldSet {
	fs := n.fields[msg]
	if fs == nil {
		fs = &fieldSet{names: map[string]bool{}}
		n.fields[msg] = fs
	}
	return fs
}

// markAll marks every view message in type t as needed whole.
func (n *needs) markAll(t *types.Type) {
	if t == nil {
		return
	}
	switch t.Kind() {
	case types.ListKind, types.MapKind, types.OpaqueKind:
		for _, p := range t.Parameters() {
			n.markAll(p)
		}
	case types.StructKind:
		n.markMessageAll(t.TypeName())
	}
}

func (n *needs) markMessageAll(name string) {
	if !strings.HasPrefix(name, "critq.views.") {
		return
	}
	fs := n.set(name)
	if fs.all {
		return
	}
	fs.all = true
	// Views nested in a whole view are needed whole too.
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return
	}
	for i := 0; i < md.Fields().Len(); i++ {
		if m := md.Fields().Get(i).Message(); m != nil {
			n.markMessageAll(string(m.FullName()))
		}
	}
}

// signature renders the fields needed of msg, for cache keys.
func (n *needs) signature(msgs ...string) string {
	var b strings.Builder
	for _, m := range msgs {
		fs := n.fields[m]
		b.WriteString(m)
		if fs != nil {
			if fs.all {
				b.WriteString("=*")
			}
			// Names count even with all: they decide the memory fields.
			names := make([]string, 0, len(fs.names))
			for f := range fs.names {
				names = append(names, f)
			}
			sort.Strings(names)
			b.WriteString("=" + strings.Join(names, ","))
		}
		b.WriteByte(';')
	}
	return b.String()
}

// analyze walks a checked expression and returns what it reads. declared
// holds the names of the environment's variables.
func analyze(a *celast.AST, declared map[string]bool) *needs {
	w := &needsWalker{a: a, n: newNeeds(), declared: declared}
	w.walk(a.Expr(), true, celwalk.Scope{})
	return w.n
}

type needsWalker struct {
	a        *celast.AST
	n        *needs
	declared map[string]bool
}

// walk visits e, evaluated in sc. escapes says whether e's value leaves
// the reach of the analysis (the result, a comparison, an unknown
// function), in which case the views in its type are needed whole.
func (w *needsWalker) walk(e celast.Expr, escapes bool, sc celwalk.Scope) {
	if e == nil {
		return
	}
	if escapes {
		w.n.markAll(w.a.GetType(e.ID()))
	}
	switch e.Kind() {
	case celast.IdentKind:
		name := e.AsIdent()
		if !sc.Bound(name) && w.declared[name] {
			w.n.vars[name] = true
		}
		return
	case celast.SelectKind:
		s := e.AsSelect()
		if t := w.a.GetType(s.Operand().ID()); t != nil && t.Kind() == types.StructKind && strings.HasPrefix(t.TypeName(), "critq.views.") {
			w.n.set(t.TypeName()).names[s.FieldName()] = true
		}
	case celast.CallKind:
		w.walkCall(e, escapes, sc)
		return
	}
	for _, c := range celwalk.Children(e, sc) {
		w.walk(c.Expr, childEscapes(c.Role, escapes), c.Scope)
	}
}

// childEscapes says whether a child of a role escapes when its parent's
// value does (escapes) or not: a select's operand and a comprehension's
// range and condition never do, a map's keys and a message's fields always.
func childEscapes(r celwalk.Role, escapes bool) bool {
	switch r {
	case celwalk.Operand, celwalk.IterRange, celwalk.LoopCondition:
		return false
	case celwalk.Key, celwalk.Field:
		return true
	}
	return escapes
}

func (w *needsWalker) walkCall(e celast.Expr, escapes bool, sc celwalk.Scope) {
	call := e.AsCall()
	w.n.funcs[call.FunctionName()] = true
	// The target of a member call comes first, as an argument.
	for i, a := range celwalk.Children(e, sc) {
		switch call.FunctionName() {
		case "size":
			w.walk(a.Expr, false, a.Scope)
		case "_[_]", "_[?_]":
			// The operand's elements flow to the result; the index does not.
			w.walk(a.Expr, escapes && i == 0, a.Scope)
		case "_?_:_":
			w.walk(a.Expr, escapes && i > 0, a.Scope)
		case "_+_":
			w.walk(a.Expr, escapes, a.Scope)
		default:
			w.walk(a.Expr, true, a.Scope)
		}
	}
}
