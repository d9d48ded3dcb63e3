package repl

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/decls"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/critq/critq/magic"
	"github.com/critq/critq/query"
	"github.com/critq/critq/rules"
)

// Complete returns completions for line with the cursor at byte pos, in
// the form of liner's WordCompleter: the text before the word completed
// (head), the candidates for the word, and the text after the cursor
// (tail). Candidates come from the static types: after a '.', the fields of
// the message type of the expression before it (at any depth:
// tasks[0].core.tc. offers tc's fields), then the member functions and
// macros whose receiver fits that type (after a string, string functions;
// after a list, list functions and filter; after a message, only its
// fields), or after a namespace its functions (math.bitAnd); elsewhere the variables, bindings, constants, functions and macros; at the
// start of a line the REPL's commands; after :load, directories; after
// :transform, image kinds, then the fields of the kind's entry after "e.".
func (e *Evaluator) Complete(line string, pos int) (head string, completions []string, tail string) {
	if pos < 0 || pos > len(line) {
		pos = len(line)
	}
	head, tail = line[:pos], line[pos:]
	trimmed := strings.TrimLeft(head, " ")
	if strings.HasPrefix(trimmed, ":") {
		if !strings.ContainsAny(trimmed, " \t") {
			return head[:len(head)-len(trimmed)], prefixed(commandNames(), trimmed), tail
		}
		cmd, arg, _ := strings.Cut(trimmed, " ")
		switch name, _ := lookupCommand(cmd); name {
		case ":load":
			return head[:len(head)-len(arg)], completeDir(arg), tail
		case ":transform":
			before, cands := e.completeRule(arg)
			return head[:len(head)-len(arg)] + before, cands, tail
		}
	}
	word := identSuffix(head)
	before := head[:len(head)-len(word)]
	if strings.HasSuffix(before, ".") {
		recv := receiver(before[:len(before)-1])
		if recv == "" {
			return before, nil, tail
		}
		names := e.members(head[:len(before)-1-len(recv)], recv)
		return before, prefixed(names, word), tail
	}
	return before, prefixed(e.globals(), word), tail
}

// members returns what may follow "recv." where recv is the expression
// before the dot and ctx the text before recv: the fields of its message
// type, then the member functions and macros whose receiver fits its static
// type (a string gets string functions, a list list functions and filter,
// a message only its fields). A receiver with no type that is a name, such
// as math, gets the functions and macros of that namespace (math.bitAnd,
// math.greatest).
func (e *Evaluator) members(ctx, recv string) []string {
	t := e.typeOf(bindRange(ctx, recv))
	if t == nil {
		return e.namespace(recv)
	}
	var names []string
	if t.Kind() == cel.StructKind {
		names = fieldNames(t.TypeName())
	}
	return append(names, e.memberFunctions(t)...)
}

// memberFunctions returns the functions with a member overload whose
// receiver type fits t and the receiver-style macros that apply to t,
// sorted. A dyn receiver fits every one.
func (e *Evaluator) memberFunctions(t *cel.Type) []string {
	dyn := t.Kind() == cel.DynKind || t.Kind() == cel.AnyKind
	return e.callables(
		func(_ string, o *decls.OverloadDecl) bool {
			return o.IsMemberFunction() && (dyn || o.ArgTypes()[0].IsAssignableType(t))
		},
		func(m cel.Macro) bool { return m.IsReceiverStyle() && macroApplies(m.Function(), t.Kind(), dyn) })
}

// macroApplies reports whether the receiver-style macro name applies to a
// value of kind k: the comprehensions to lists and maps, sortBy to lists.
// The other receiver-style macros hang off a namespace (see
// [macroNamespace]), never off a value.
func macroApplies(name string, k cel.Kind, dyn bool) bool {
	switch name {
	case "all", "exists", "exists_one", "existsOne", "filter", "map":
		return dyn || k == cel.ListKind || k == cel.MapKind
	case "sortBy":
		return dyn || k == cel.ListKind
	}
	return false
}

// macroNamespace returns the name a receiver-style macro is called on when
// that is a namespace and not a value (cel.bind, math.greatest), or "".
func macroNamespace(name string) string {
	switch name {
	case "bind":
		return "cel"
	case "greatest", "least":
		return "math"
	}
	return ""
}

// namespace returns what may follow "ns.": the global functions named
// ns.NAME (math.bitAnd gives bitAnd) and the macros of namespace ns,
// sorted; nothing when ns is not a plain name.
func (e *Evaluator) namespace(ns string) []string {
	if ns == "" || identPrefix(ns) != ns {
		return nil
	}
	names := e.callables(
		func(name string, o *decls.OverloadDecl) bool {
			return !o.IsMemberFunction() && strings.HasPrefix(name, ns+".")
		},
		func(m cel.Macro) bool { return m.IsReceiverStyle() && macroNamespace(m.Function()) == ns })
	for i, n := range names {
		names[i] = strings.TrimPrefix(n, ns+".")
	}
	return names
}

// typeOf returns the static type of expression src, or nil.
func (e *Evaluator) typeOf(src string) *cel.Type {
	q, err := e.lets.Compile(src)
	if err != nil {
		return nil
	}
	return q.OutputType()
}

// fieldNames returns the field names of the message called name.
func fieldNames(name string) []string {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil
	}
	return messageFields(md)
}

// messageFields returns the field names of md, sorted.
func messageFields(md protoreflect.MessageDescriptor) []string {
	var out []string
	for i := 0; i < md.Fields().Len(); i++ {
		out = append(out, string(md.Fields().Get(i).Name()))
	}
	sort.Strings(out)
	return out
}

// globals returns the names that may start an expression.
func (e *Evaluator) globals() []string {
	var out []string
	for _, l := range e.lets.List() {
		out = append(out, l.Name)
	}
	for _, v := range query.Vars() {
		out = append(out, v.Name)
	}
	for _, c := range query.Constants() {
		out = append(out, c.Name)
	}
	return append(out, e.globalFunctions()...)
}

// globalFunctions returns the functions and macros called without a
// receiver, sorted.
func (e *Evaluator) globalFunctions() []string {
	return e.callables(
		func(_ string, o *decls.OverloadDecl) bool { return !o.IsMemberFunction() },
		func(m cel.Macro) bool { return !m.IsReceiverStyle() })
}

// callables returns the names of the functions of the environment with an
// overload that fn accepts and of the macros that macro accepts, sorted.
// Operators and the dialect's internal functions are left out.
func (e *Evaluator) callables(fn func(name string, o *decls.OverloadDecl) bool, macro func(cel.Macro) bool) []string {
	seen := map[string]bool{}
	for name, f := range e.env.Functions() {
		if !isIdentStart(name) {
			continue
		}
		for _, o := range f.OverloadDecls() {
			if fn(name, o) {
				seen[name] = true
				break
			}
		}
	}
	for _, m := range e.env.Macros() {
		if isIdentStart(m.Function()) && macro(m) {
			seen[m.Function()] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func isIdentStart(s string) bool {
	return s != "" && (s[0] == '_' && len(s) > 1 && s[len(s)-1] != '_' || s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z')
}

// prefixed returns the names that start with prefix, without duplicates,
// in order.
func prefixed(names []string, prefix string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// identPrefix returns the identifier characters at the start of s.
func identPrefix(s string) string {
	i := 0
	for i < len(s) && isIdentByte(s[i]) {
		i++
	}
	return s[:i]
}

// identSuffix returns the identifier characters at the end of s.
func identSuffix(s string) string {
	i := len(s)
	for i > 0 && isIdentByte(s[i-1]) {
		i--
	}
	return s[i:]
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// receiver returns the operand expression that ends s: identifiers joined
// by dots, with balanced [...] and (...) groups, as in
// size(tasks[0].core.tc -> tasks[0].core.tc.
func receiver(s string) string {
	i := len(s)
	for i > 0 {
		c := s[i-1]
		switch {
		case isIdentByte(c) || c == '.':
			i--
		case c == ']' || c == ')':
			open := byte('[')
			if c == ')' {
				open = '('
			}
			depth := 0
			j := i - 1
			for ; j >= 0; j-- {
				if s[j] == c {
					depth++
				} else if s[j] == open {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			if j < 0 {
				return ""
			}
			i = j
		default:
			return strings.TrimLeft(s[i:], ".")
		}
	}
	return strings.TrimLeft(s[i:], ".")
}

// macroVar matches the opening of a comprehension: RANGE.filter(VAR, ...
var macroVar = regexp.MustCompile(`^\.(?:filter|map|all|exists|exists_one|sortBy)\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,`)

// bindRange rewrites recv when its first identifier is the variable of an
// enclosing comprehension in ctx: in "vmas.filter(v, v.pr" the receiver v
// stands for an element of vmas, so its type is that of vmas[0].
func bindRange(ctx, recv string) string {
	for range 8 { // nested comprehensions: tasks.map(t, t.vmas.filter(v, v.
		off := len(recv) - len(strings.TrimLeft(recv, "("))
		root := identPrefix(recv[off:])
		if root == "" {
			return recv
		}
		at := lastMacro(ctx, root)
		if at < 0 {
			return recv
		}
		rng := receiver(ctx[:at])
		if rng == "" {
			return recv
		}
		ctx, recv = ctx[:at-len(rng)], recv[:off]+"("+rng+")[0]"+recv[off+len(root):]
		if !isIdentByte(rng[0]) {
			return recv
		}
	}
	return recv
}

// lastMacro finds the innermost comprehension of ctx whose variable is
// name and whose parentheses are still open; it returns the offset of its
// ".macro(", or -1.
func lastMacro(ctx, name string) int {
	for end := len(ctx); end > 0; {
		i := strings.LastIndex(ctx[:end], ".")
		if i < 0 {
			return -1
		}
		if m := macroVar.FindStringSubmatchIndex(ctx[i:]); m != nil && ctx[i+m[2]:i+m[3]] == name && open(ctx[i:]) {
			return i
		}
		end = i
	}
	return -1
}

// open reports whether s leaves a parenthesis open.
func open(s string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		}
	}
	return depth > 0
}

// completeDir completes a directory path.
func completeDir(prefix string) []string {
	dir, base := filepath.Split(prefix)
	d := dir
	if d == "" {
		d = "."
	}
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil
	}
	var out []string
	for _, ent := range ents {
		if ent.IsDir() && strings.HasPrefix(ent.Name(), base) && (base != "" || !strings.HasPrefix(ent.Name(), ".")) {
			out = append(out, dir+ent.Name()+"/")
		}
	}
	return out
}

// completeRule completes the rule of :transform, arg: an image kind before
// the colon; after it, the fields of the kind's entry after "e." (at any
// depth: e.reg.fown.), the names a rule may use elsewhere. It returns the
// text of arg before the word completed and the candidates.
func (e *Evaluator) completeRule(arg string) (string, []string) {
	kind, expr, ok := strings.Cut(arg, ":")
	if !ok {
		word := strings.TrimLeft(arg, " ")
		return arg[:len(arg)-len(word)], prefixed(ruleKinds(), word)
	}
	k, err := rules.RuleKind(strings.TrimSpace(kind))
	if err != nil {
		return arg, nil
	}
	word := identSuffix(expr)
	before := arg[:len(arg)-len(word)]
	if !strings.HasSuffix(before, ".") {
		names := append(rules.RuleVars(k), "drop")
		for _, c := range query.Constants() {
			names = append(names, c.Name)
		}
		return before, prefixed(append(names, e.globalFunctions()...), word)
	}
	md := entryField(k.Entry.Descriptor(), receiver(before[:len(before)-1]))
	if md == nil {
		return before, nil
	}
	names := append(messageFields(md), "with")
	return before, prefixed(append(names, e.memberFunctions(cel.ObjectType(string(md.FullName())))...), word)
}

// ruleKinds returns the kinds a rule may name, in lower case with dashes
// ("files", "tcp-stream"), sorted.
func ruleKinds() []string {
	var out []string
	for _, k := range magic.Kinds() {
		if k.Entry != nil && !k.Raw && !k.Alias {
			out = append(out, strings.ToLower(strings.ReplaceAll(k.Name, "_", "-")))
		}
	}
	sort.Strings(out)
	return out
}

// entryField returns the message at path recv in a rule's entry, whose
// message is md: "e" is the entry, "e.reg" its reg field, "e.vmas[0]" an
// element of a repeated field; nil when recv is no such path or names no
// message.
func entryField(md protoreflect.MessageDescriptor, recv string) protoreflect.MessageDescriptor {
	parts := strings.Split(recv, ".")
	if parts[0] != "e" {
		return nil
	}
	for _, p := range parts[1:] {
		if i := strings.IndexByte(p, '['); i >= 0 {
			p = p[:i]
		}
		fd := md.Fields().ByName(protoreflect.Name(p))
		if fd == nil || fd.Message() == nil || fd.IsMap() {
			return nil
		}
		md = fd.Message()
	}
	return md
}
