package query

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types/ref"

	"github.com/critq/critq/internal/celwalk"
)

// This file holds what the REPL and batch scripts add to the query API:
// variables declared on top of critq's environment, and let bindings.

// Declare declares a variable name of type t on top of critq's environment,
// for the let bindings of scripts and of the REPL. Its value is passed to
// [Query.EvalWith].
func Declare(name string, t *cel.Type) Option {
	return func(c *config) { c.declared = append(c.declared, cel.Variable(name, t)) }
}

// References returns the names the query refers to as variables, sorted:
// top-level names of the environment and declared variables. A name read
// only where a comprehension binds it (v in vmas.filter(v, v.prot > 0)) is
// the comprehension's variable, not a reference.
func (q *Query) References() []string {
	a := q.ast.NativeRep()
	bound := map[int64]bool{}
	boundIdents(a.Expr(), bound)
	seen := map[string]bool{}
	for id, r := range a.ReferenceMap() {
		if r.Name != "" && r.Value == nil && !bound[id] {
			seen[r.Name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// boundIdents adds to bound the ids of the identifiers of e that name a
// variable of an enclosing comprehension (see celwalk.Children for what a
// comprehension binds).
func boundIdents(e celast.Expr, bound map[int64]bool) {
	celwalk.Walk(e, celwalk.Scope{}, func(x celast.Expr, sc celwalk.Scope) bool {
		if x.Kind() == celast.IdentKind && sc.Bound(x.AsIdent()) {
			bound[x.ID()] = true
		}
		return true
	})
}

// Binding is a name bound to an expression over a dump, as by
// `let NAME = EXPR`.
type Binding struct {
	Name  string
	Query *Query
	// Uses are the bindings the expression refers to.
	Uses []string
}

// Bindings is an ordered set of let bindings. Later expressions, and later
// bindings, may use the names bound; a binding's value is computed against
// a dump when an expression needs it, and kept in the memo the caller
// passes to Eval. Bindings is not safe for concurrent modification, but
// Compile and Eval may run concurrently once it is no longer changed.
type Bindings struct {
	opts []Option
	lets []*Binding
}

// NewBindings returns an empty set of bindings whose expressions are
// compiled with opts.
func NewBindings(opts ...Option) *Bindings { return &Bindings{opts: opts} }

// List returns the bindings in the order they were first made.
func (b *Bindings) List() []*Binding { return append([]*Binding(nil), b.lets...) }

// Lookup returns the binding of name, or nil.
func (b *Bindings) Lookup(name string) *Binding {
	for _, l := range b.lets {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// Compile compiles src with every binding declared.
func (b *Bindings) Compile(src string) (*Query, error) {
	return b.compile(src, b.lets, "")
}

// Options returns the compile options of b: its own and a declaration of
// every binding.
func (b *Bindings) Options() []Option { return b.options(b.lets, "") }

func (b *Bindings) options(lets []*Binding, skip string) []Option {
	opts := append([]Option(nil), b.opts...)
	for _, l := range lets {
		if l.Name != skip {
			opts = append(opts, Declare(l.Name, l.Query.OutputType()))
		}
	}
	return opts
}

func (b *Bindings) compile(src string, lets []*Binding, skip string) (*Query, error) {
	return Compile(src, b.options(lets, skip)...)
}

// BindingError is a binding that was refused. Err is the *CompileError of
// the expression, or of a binding that uses the name (User) and no longer
// compiles with its new type.
type BindingError struct {
	Name string
	User string // the binding that broke, "" when the expression itself fails
	Err  error
}

func (e *BindingError) Error() string {
	if e.User != "" {
		return fmt.Sprintf("let %s: %s uses it and no longer compiles:\n%v", e.Name, e.User, e.Err)
	}
	return fmt.Sprintf("let %s: %v", e.Name, e.Err)
}

func (e *BindingError) Unwrap() error { return e.Err }

// Let binds name to the expression src. Redefining a name recompiles the
// bindings that use it, in order, with its new type; if one of them no
// longer compiles, or src uses a binding that uses name, nothing changes and
// the error is a *BindingError. A name of critq's environment cannot be
// bound.
func (b *Bindings) Let(name, src string) error {
	if err := checkBindingName(name); err != nil {
		return &BindingError{Name: name, Err: err}
	}
	q, err := b.compile(src, b.lets, name)
	if err != nil {
		return &BindingError{Name: name, Err: err}
	}
	nl := &Binding{Name: name, Query: q, Uses: b.uses(q, name)}
	users := b.users(name)
	for _, u := range nl.Uses {
		if users[u] {
			return &BindingError{Name: name, Err: fmt.Errorf("%s uses %s: a binding cannot use itself", u, name)}
		}
	}
	next := make([]*Binding, len(b.lets), len(b.lets)+1)
	copy(next, b.lets)
	i := b.index(name)
	if i < 0 {
		b.lets = append(next, nl)
		return nil
	}
	next[i] = nl
	for j, l := range next {
		if !users[l.Name] {
			continue
		}
		q, err := b.compile(l.Query.String(), next, l.Name)
		if err != nil {
			return &BindingError{Name: name, User: l.Name, Err: err}
		}
		next[j] = &Binding{Name: l.Name, Query: q, Uses: l.Uses}
	}
	b.lets = next
	return nil
}

// Unlet removes the binding of name. It fails while another binding uses
// it.
func (b *Bindings) Unlet(name string) error {
	i := b.index(name)
	if i < 0 {
		return fmt.Errorf("unlet %s: no such binding", name)
	}
	var users []string
	for _, l := range b.lets {
		for _, u := range l.Uses {
			if u == name {
				users = append(users, l.Name)
			}
		}
	}
	if len(users) > 0 {
		return fmt.Errorf("unlet %s: used by %s", name, strings.Join(users, ", "))
	}
	b.lets = append(b.lets[:i:i], b.lets[i+1:]...)
	return nil
}

func (b *Bindings) index(name string) int {
	for i, l := range b.lets {
		if l.Name == name {
			return i
		}
	}
	return -1
}

// uses returns the bindings q refers to, other than skip.
func (b *Bindings) uses(q *Query, skip string) []string {
	var out []string
	for _, r := range q.References() {
		if r != skip && b.index(r) >= 0 {
			out = append(out, r)
		}
	}
	return out
}

// users returns the bindings that use name, directly or not.
func (b *Bindings) users(name string) map[string]bool {
	users := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for _, l := range b.lets {
			if users[l.Name] {
				continue
			}
			for _, u := range l.Uses {
				if u == name || users[u] {
					users[l.Name] = true
					changed = true
					break
				}
			}
		}
	}
	return users
}

// Eval evaluates q against d with the values of the bindings it uses.
// memo holds the values already computed against d, by name; Eval adds
// those it computes. The caller keeps one memo per dump and clears it when
// the bindings change.
func (b *Bindings) Eval(ctx context.Context, q *Query, d *Dump, memo map[string]ref.Val) (ref.Val, error) {
	return b.EvalValues(ctx, q, d, memo, nil)
}

// checkBindingName rejects a name that is not a CEL identifier, is a
// reserved word, or is taken by critq's environment.
func checkBindingName(name string) error {
	if name == "" || !isIdent(name) {
		return fmt.Errorf("%q is not an identifier", name)
	}
	if isReserved(name) {
		return fmt.Errorf("%s is a reserved word", name)
	}
	for _, v := range Vars() {
		if v.Name == name {
			return fmt.Errorf("%s is a name of the environment (%s)", name, v.Doc)
		}
	}
	for _, c := range Constants() {
		if c.Name == name {
			return fmt.Errorf("%s is a constant of the environment", name)
		}
	}
	return nil
}

func isIdent(s string) bool {
	for i, c := range s {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// isReserved reports whether name is one of CEL's keywords or reserved
// words.
func isReserved(name string) bool {
	switch name {
	case "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
		"function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
		"void", "while":
		return true
	}
	return false
}
