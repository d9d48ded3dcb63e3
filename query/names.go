package query

import (
	"strings"
	"sync"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/proto/images"
)

// ValueNames says which numbers of a query's result are values of an
// enum-like field (a task state, a socket's family, type, state or
// protocol, a file type) and how they are named: ALIVE, AF_INET,
// SOCK_STREAM, TCP_LISTEN, IPPROTO_TCP, REG. [Output] writes them as
// names when its Names is set: critq does so in pretty and table output,
// and in JSON under --names. It is found from the checked expression: a
// field selected on a message, through map, list and map literals, index
// and conditionals. A nil *ValueNames names nothing.
type ValueNames struct {
	leaf  func(uint64) (string, bool) // the value itself
	elem  *ValueNames                 // each element of a list
	items []*ValueNames               // the elements of a list literal
	keys  map[string]*ValueNames      // the values of a map literal
}

// ValueNames returns the names of the enum-like values of q's result, or
// nil when it holds none.
func (q *Query) ValueNames() *ValueNames {
	a := q.ast.NativeRep()
	return (&namesWalker{a: a}).walk(a.Expr(), nil)
}

// name returns the name of a number of the value n describes.
func (n *ValueNames) name(v ref.Val) (string, bool) {
	if n == nil || n.leaf == nil {
		return "", false
	}
	switch x := v.(type) {
	case types.Uint:
		return n.leaf(uint64(x))
	case types.Int:
		if x >= 0 {
			return n.leaf(uint64(x))
		}
	}
	return "", false
}

// element returns the names of element i of a list.
func (n *ValueNames) element(i int) *ValueNames {
	if n == nil {
		return nil
	}
	if i < len(n.items) {
		return n.items[i]
	}
	return n.elem
}

// key returns the names of the value at key k of a map.
func (n *ValueNames) key(k string) *ValueNames {
	if n == nil {
		return nil
	}
	return n.keys[k]
}

type namesWalker struct{ a *celast.AST }

type namesScope struct {
	name  string
	names *ValueNames
	up    *namesScope
}

func (s *namesScope) lookup(name string) (*ValueNames, bool) {
	for ; s != nil; s = s.up {
		if s.name == name {
			return s.names, true
		}
	}
	return nil, false
}

func (w *namesWalker) walk(e celast.Expr, sc *namesScope) *ValueNames {
	switch e.Kind() {
	case celast.IdentKind:
		n, _ := sc.lookup(e.AsIdent())
		return n
	case celast.SelectKind:
		s := e.AsSelect()
		if s.IsTestOnly() {
			return nil
		}
		if md := w.message(s.Operand()); md != nil {
			if fd := md.Fields().ByName(protoreflect.Name(s.FieldName())); fd != nil {
				return fieldNames(fd)
			}
			return nil
		}
		return w.walk(s.Operand(), sc).key(s.FieldName())
	case celast.CallKind:
		c := e.AsCall()
		args := c.Args()
		switch {
		case c.FunctionName() == operators.Index && len(args) == 2:
			base := w.walk(args[0], sc)
			if args[1].Kind() == celast.LiteralKind {
				switch k := args[1].AsLiteral().(type) {
				case types.String:
					return base.key(string(k))
				case types.Int:
					return base.element(int(k))
				}
			}
			return base.element(-1)
		case c.FunctionName() == operators.Conditional && len(args) == 3:
			if n := w.walk(args[1], sc); n != nil {
				return n
			}
			return w.walk(args[2], sc)
		}
	case celast.ListKind:
		var n ValueNames
		named := false
		for _, el := range e.AsList().Elements() {
			x := w.walk(el, sc)
			named = named || x != nil
			n.items = append(n.items, x)
		}
		if named {
			return &n
		}
	case celast.MapKind:
		n := ValueNames{keys: map[string]*ValueNames{}}
		for _, ent := range e.AsMap().Entries() {
			me := ent.AsMapEntry()
			if me.Key().Kind() != celast.LiteralKind {
				continue
			}
			if k, ok := me.Key().AsLiteral().(types.String); ok {
				if x := w.walk(me.Value(), sc); x != nil {
					n.keys[string(k)] = x
				}
			}
		}
		if len(n.keys) > 0 {
			return &n
		}
	case celast.ComprehensionKind:
		return w.comprehension(e, sc)
	}
	return nil
}

// comprehension follows map and filter: the result's elements are what
// the loop step appends to the accumulator.
func (w *namesWalker) comprehension(e celast.Expr, sc *namesScope) *ValueNames {
	c := e.AsComprehension()
	each := w.walk(c.IterRange(), sc).element(-1)
	inner := &namesScope{name: c.IterVar(), names: each, up: sc}
	var appended celast.Expr
	celast.PreOrderVisit(c.LoopStep(), celast.NewExprVisitor(func(x celast.Expr) {
		if appended != nil || x.Kind() != celast.CallKind {
			return
		}
		call := x.AsCall()
		if call.FunctionName() != operators.Add || len(call.Args()) != 2 {
			return
		}
		acc, add := call.Args()[0], call.Args()[1]
		if acc.Kind() == celast.IdentKind && acc.AsIdent() == c.AccuVar() && add.Kind() == celast.ListKind && len(add.AsList().Elements()) == 1 {
			appended = add.AsList().Elements()[0]
		}
	}))
	if appended == nil {
		return nil
	}
	if n := w.walk(appended, inner); n != nil {
		return &ValueNames{elem: n}
	}
	return nil
}

// message returns the message type of e's checked type, or nil.
func (w *namesWalker) message(e celast.Expr) protoreflect.MessageDescriptor {
	t := w.a.GetType(e.ID())
	if t == nil || t.Kind() != types.StructKind {
		return nil
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(t.TypeName()))
	if err != nil {
		return nil
	}
	md, _ := d.(protoreflect.MessageDescriptor)
	return md
}

// fieldNames returns the names of a field's values: an enum's value names,
// task states, and the C names of socket families, types, states and
// protocols (the dialect's constants). Other fields have none.
func fieldNames(fd protoreflect.FieldDescriptor) *ValueNames {
	var leaf func(uint64) (string, bool)
	switch o := images.FieldOptions(fd); {
	case fd.Kind() == protoreflect.EnumKind:
		vals := fd.Enum().Values()
		leaf = func(v uint64) (string, bool) {
			if ev := vals.ByNumber(protoreflect.EnumNumber(v)); ev != nil && v <= 1<<31 {
				return string(ev.Name()), true
			}
			return "", false
		}
	case o.Dict == "gen":
		leaf = func(v uint64) (string, bool) {
			s := annot.TaskStateName(v)
			return s, !strings.ContainsAny(s[:1], "0123456789")
		}
	case o.Dict == "sk":
		names := socketConstants()["inet_sk_entry."+string(fd.Name())]
		if names == nil {
			return nil
		}
		leaf = func(v uint64) (string, bool) { s, ok := names[v]; return s, ok }
	default:
		return nil
	}
	n := &ValueNames{leaf: leaf}
	if fd.IsList() {
		return &ValueNames{elem: n}
	}
	return n
}

// socketConstants are the dialect's socket constants by group and value
// (the first name of a value wins).
var socketConstants = sync.OnceValue(func() map[string]map[uint64]string {
	out := map[string]map[uint64]string{}
	for _, c := range Constants() {
		u, ok := c.Value.(types.Uint)
		if !ok || !strings.HasPrefix(c.Group, "inet_sk_entry.") {
			continue
		}
		if out[c.Group] == nil {
			out[c.Group] = map[uint64]string{}
		}
		if _, dup := out[c.Group][uint64(u)]; !dup {
			out[c.Group][uint64(u)] = c.Name
		}
	}
	return out
})
