package query

import (
	"sort"
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
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
	w.walk(a.Expr(), true, nil)
	return w.n
}

type needsWalker struct {
	a        *celast.AST
	n        *needs
	declared map[string]bool
}

// scope is the list of names bound by the enclosing comprehensions.
type scope []string

func (s scope) bound(name string) bool {
	for _, v := range s {
		if v == name {
			return true
		}
	}
	return false
}

// walk visits e. escapes says whether e's value leaves the reach of the
// analysis (the result, a comparison, an unknown function), in which case
// the views in its type are needed whole.
func (w *needsWalker) walk(e celast.Expr, escapes bool, sc scope) {
	if e == nil {
		return
	}
	if escapes {
		w.n.markAll(w.a.GetType(e.ID()))
	}
	switch e.Kind() {
	case celast.IdentKind:
		name := e.AsIdent()
		if !sc.bound(name) && w.declared[name] {
			w.n.vars[name] = true
		}
	case celast.SelectKind:
		s := e.AsSelect()
		op := s.Operand()
		if t := w.a.GetType(op.ID()); t != nil && t.Kind() == types.StructKind && strings.HasPrefix(t.TypeName(), "critq.views.") {
			w.n.set(t.TypeName()).names[s.FieldName()] = true
		}
		w.walk(op, false, sc)
	case celast.CallKind:
		w.walkCall(e, escapes, sc)
	case celast.ComprehensionKind:
		c := e.AsComprehension()
		w.walk(c.IterRange(), false, sc)
		w.walk(c.AccuInit(), escapes, sc)
		inner := append(append(scope{}, sc...), c.IterVar(), c.AccuVar())
		if c.HasIterVar2() {
			inner = append(inner, c.IterVar2())
		}
		w.walk(c.LoopCondition(), false, inner)
		w.walk(c.LoopStep(), escapes, inner)
		w.walk(c.Result(), escapes, inner)
	case celast.ListKind:
		for _, el := range e.AsList().Elements() {
			w.walk(el, escapes, sc)
		}
	case celast.MapKind:
		for _, ent := range e.AsMap().Entries() {
			me := ent.AsMapEntry()
			w.walk(me.Key(), true, sc)
			w.walk(me.Value(), escapes, sc)
		}
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			w.walk(f.AsStructField().Value(), true, sc)
		}
	}
}

func (w *needsWalker) walkCall(e celast.Expr, escapes bool, sc scope) {
	call := e.AsCall()
	w.n.funcs[call.FunctionName()] = true
	args := call.Args()
	if call.IsMemberFunction() {
		args = append([]celast.Expr{call.Target()}, args...)
	}
	switch call.FunctionName() {
	case "size":
		for _, a := range args {
			w.walk(a, false, sc)
		}
	case "_[_]", "_[?_]":
		// The operand's elements flow to the result; the index does not.
		for i, a := range args {
			w.walk(a, escapes && i == 0, sc)
		}
	case "_?_:_":
		for i, a := range args {
			w.walk(a, escapes && i > 0, sc)
		}
	case "_+_":
		for _, a := range args {
			w.walk(a, escapes, sc)
		}
	default:
		for _, a := range args {
			w.walk(a, true, sc)
		}
	}
}
