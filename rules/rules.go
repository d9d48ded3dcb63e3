package rules

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/critq/critq/batch"
	"github.com/critq/critq/codec"
	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/internal/celwalk"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/proto/images"
	"github.com/critq/critq/query"
)

// Limits of rule evaluation.
const (
	// DefaultRuleCostLimit bounds the CEL cost of evaluating one rule on one
	// entry (a filter over 100,000 VMAs costs a few million).
	DefaultRuleCostLimit = 100_000_000
	// DefaultMaxRepeated bounds the elements with() puts in one repeated
	// field.
	DefaultMaxRepeated = 1 << 20
	// DefaultRuleTimeout bounds the evaluation of every rule over a dump.
	DefaultRuleTimeout = time.Minute
)

// RuleOptions configure the compilation and evaluation of rules. The zero
// value selects the defaults.
type RuleOptions struct {
	// CostLimit bounds the cost of one evaluation; 0 is DefaultRuleCostLimit.
	CostLimit uint64
	// MaxRepeated bounds the length of a repeated field set by with(); 0 is
	// DefaultMaxRepeated.
	MaxRepeated int
}

// RuleSource is the text of one rule before compilation.
type RuleSource struct {
	// Where names the rule in messages: "rule 1", "rules.critq:3".
	Where string
	// Kind is the kind as written ("files", "TCP_STREAM", "tcp-stream").
	Kind string
	// Expr is the expression after the colon.
	Expr string

	// script and stmt place a rule of a script (ScriptRules).
	script *batch.Script
	stmt   *batch.Stmt
	// parts place a rule of flags (Sugar) in the flags.
	parts []sugarPart
}

// ParseRule splits the text of a rule, KIND: EXPR.
func ParseRule(where, src string) (RuleSource, error) {
	i := strings.IndexByte(src, ':')
	kind := ""
	if i > 0 {
		kind = strings.TrimSpace(src[:i])
	}
	if kind == "" || !isKindWord(kind) {
		return RuleSource{}, &RuleError{Where: where, Err: errors.New("a rule is KIND: EXPR, e.g. 'files: e.with({\"reg.name\": \"/new\"})'")}
	}
	return RuleSource{Where: where, Kind: kind, Expr: strings.TrimSpace(src[i+1:])}, nil
}

func isKindWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// RuleError is a rule that cannot be compiled: an unknown kind, a syntax or
// type error (Err is then a *CompileError with a caret; for a rule of a
// script, the *batch.ScriptError that places it in the script).
type RuleError struct {
	Where string
	Err   error
}

func (e *RuleError) Error() string {
	if e.Where == "" || located(e.Err) {
		return e.Err.Error()
	}
	return e.Where + ": " + e.Err.Error()
}

func (e *RuleError) Unwrap() error { return e.Err }

// RuleKind returns the image kind a rule names: crit's name in any case
// ("FILES", "tcp_stream"), with dashes for underscores ("tcp-stream",
// "pipes-data"), or the file name of the kind without its id ("inotify",
// "mountpoints", "sigacts"). Kinds without entries (pages, raw images) are
// not rewritable and are refused.
//
// The kinds whose first entry has its own message name it apart (see
// [RuleMessage]): KIND-head is the head entry of PAGEMAP and SHMEM_PAGEMAP
// images ("pagemap-head", a pagemap_head), KIND their other entries;
// ghost-file is the ghost_file_entry of a GHOST_FILE image and ghost-chunk
// its chunks (ghost_chunk_entry). RuleKind returns the image kind of each.
func RuleKind(name string) (*magic.Kind, error) {
	k, _, err := ruleTarget(name)
	return k, err
}

// RuleMessage returns the message of the entries a rule of kind name
// rewrites and is evaluated on (the type of e).
func RuleMessage(name string) (protoreflect.MessageDescriptor, error) {
	k, head, err := ruleTarget(name)
	if err != nil {
		return nil, err
	}
	return ruleMessage(k, head), nil
}

func ruleMessage(k *magic.Kind, head bool) protoreflect.MessageDescriptor {
	if head {
		return k.First.Descriptor()
	}
	return k.Entry.Descriptor()
}

// Rule kind names of the parts of kinds with a head entry.
const (
	headSuffix = "_HEAD"
	ghostChunk = "GHOST_CHUNK"
)

// ruleTarget resolves a rule's kind, and whether the rule rewrites the head
// entry (entry 0 of a kind with a First message) rather than the others.
func ruleTarget(name string) (*magic.Kind, bool, error) {
	want := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	chunk := want == ghostChunk
	head := false
	switch {
	case chunk:
		want = "GHOST_FILE"
	case !isKindName(want) && strings.HasSuffix(want, headSuffix):
		want, head = strings.TrimSuffix(want, headSuffix), true
	}
	var found *magic.Kind
	for _, k := range magic.Kinds() {
		if k.Name == want || fileStem(k) == want {
			found = k
			if k.Name == want {
				break
			}
		}
	}
	switch {
	case found == nil:
		return nil, false, fmt.Errorf("unknown image kind %q", name)
	case found.Raw:
		return nil, false, fmt.Errorf("%s images are raw data and are never rewritten", found.Name)
	case found.Entry == nil:
		return nil, false, fmt.Errorf("%s images have no entries critq can decode", found.Name)
	case head && found.First == nil:
		return nil, false, fmt.Errorf("%s images have no head entry: name the kind, %s", found.Name, strings.ToLower(strings.ReplaceAll(found.Name, "_", "-")))
	case found.Extra == magic.ExtraGhostFile && !chunk:
		head = true // ghost-file is the file entry; ghost-chunk its chunks
	}
	return found, head, nil
}

// fileStem is the first file name of k without its id and suffix, in upper
// case with underscores: "inotify.img" is INOTIFY, "fdinfo-%d.img" FDINFO.
func fileStem(k *magic.Kind) string {
	if len(k.Files) == 0 {
		return ""
	}
	s := strings.TrimSuffix(k.Files[0], ".img")
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s = strings.TrimRight(s[:i], "-")
	}
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// Rule is a compiled rule. It is safe for concurrent use: one Rule may
// evaluate entries of many images and dumps at once.
type Rule struct {
	Source RuleSource
	Kind   *magic.Kind
	// Head is set when the rule rewrites the head entry of its images
	// (pagemap-head, ghost-file) rather than the other entries.
	Head bool

	msg  protoreflect.MessageDescriptor
	prg  cel.Program
	ev   *ruleEval
	vars []string // extra variables: extra, inq, outq
	// needle, when set, is in the payload of every entry the rule may
	// change (see prefilterNeedle).
	needle []byte
}

// Message returns the descriptor of the entries the rule rewrites.
func (r *Rule) Message() protoreflect.MessageDescriptor { return r.msg }

// Target names the entries the rule rewrites: the kind's name, or for the
// kinds with a head entry GHOST_FILE and GHOST_CHUNK, PAGEMAP_HEAD and
// PAGEMAP.
func (r *Rule) Target() string {
	switch {
	case r.Kind.Extra == magic.ExtraGhostFile && !r.Head:
		return ghostChunk
	case r.Head && r.Kind.Extra != magic.ExtraGhostFile:
		return r.Kind.Name + headSuffix
	}
	return r.Kind.Name
}

// appliesTo reports whether the rule rewrites entry i of its images.
func (r *Rule) appliesTo(i int) bool { return (i == 0 && r.Kind.First != nil) == r.Head }

// Names of the extra variables and pseudo-fields.
const (
	extraData = "extra"
	extraInQ  = "inq"
	extraOutQ = "outq"
)

// extraVars returns the names bound to the extra of kind k.
func extraVars(k *magic.Kind) []string {
	switch k.Extra {
	case magic.ExtraPipeData, magic.ExtraSkQueue, magic.ExtraGhostFile:
		return []string{extraData}
	case magic.ExtraTCPStream:
		return []string{extraInQ, extraOutQ}
	}
	return nil
}

// RuleVars returns the names a rule of kind k may read: e, the entry, and
// the names of its extra data (extra; inq and outq).
func RuleVars(k *magic.Kind) []string { return append([]string{"e"}, extraVars(k)...) }

// extraLengths names the field of the message that holds the length of each
// extra part.
var extraLengths = map[magic.Extra]map[string]protoreflect.Name{
	magic.ExtraPipeData:  {extraData: "bytes"},
	magic.ExtraSkQueue:   {extraData: "length"},
	magic.ExtraGhostFile: {extraData: "len"}, // of a chunk; the file entry has none
	magic.ExtraTCPStream: {extraInQ: "inq_len", extraOutQ: "outq_len"},
}

// CompileRules compiles rules in order.
func CompileRules(srcs []RuleSource, o RuleOptions) ([]*Rule, error) {
	if o.CostLimit == 0 {
		o.CostLimit = DefaultRuleCostLimit
	}
	if o.MaxRepeated == 0 {
		o.MaxRepeated = DefaultMaxRepeated
	}
	base, err := query.BaseEnv()
	if err != nil {
		return nil, err
	}
	out := make([]*Rule, 0, len(srcs))
	for _, s := range srcs {
		r, err := compileRule(base, s, o)
		if err != nil {
			return nil, &RuleError{Where: s.Where, Err: s.locate(err)}
		}
		out = append(out, r)
	}
	return out, nil
}

func compileRule(base *cel.Env, s RuleSource, o RuleOptions) (*Rule, error) {
	k, head, err := ruleTarget(s.Kind)
	if err != nil {
		return nil, err
	}
	md := ruleMessage(k, head)
	ev := &ruleEval{msg: md, maxRepeated: o.MaxRepeated, paths: map[string]*fieldPath{}}
	ev.drop = k.Entry.New().Interface()
	if head {
		ev.drop = k.First.New().Interface()
	}
	r := &Rule{Source: s, Kind: k, Head: head, msg: md, ev: ev, vars: extraVars(k)}
	msgType := cel.ObjectType(string(md.FullName()))
	tp := cel.TypeParamType("T")
	opts := []cel.EnvOption{
		cel.Variable("e", msgType),
		cel.Function("with", cel.MemberOverload("critq_with", []*cel.Type{tp, cel.MapType(cel.StringType, cel.DynType)}, tp,
			cel.LateFunctionBinding())), // to the evaluation's state (Rule.Eval)
		cel.Function("drop", cel.Overload("critq_drop", nil, msgType,
			cel.FunctionBinding(func(...ref.Val) ref.Val { return ev.adapter.NativeToValue(ev.drop) }))),
	}
	for _, v := range r.vars {
		opts = append(opts, cel.Variable(v, cel.BytesType))
	}
	env, err := base.Extend(opts...)
	if err != nil {
		return nil, err
	}
	ev.adapter = env.CELTypeAdapter()
	src := s.source()
	ast, err := query.CompileIn(env, src)
	if err != nil {
		return nil, err
	}
	if err := checkRule(ast, src, md, r.vars); err != nil {
		return nil, err
	}
	r.needle = prefilterNeedle(ast.NativeRep(), md)
	r.prg, err = env.Program(ast, cel.CostLimit(o.CostLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, err
	}
	return r, nil
}

// checkRule checks what the checker cannot: that the rule returns the
// kind's message, and every with() path and value.
func checkRule(a *cel.Ast, src string, md protoreflect.MessageDescriptor, vars []string) error {
	native := a.NativeRep()
	c := &ruleChecker{a: native, src: src}
	if t := a.OutputType(); !(t.Kind() == types.DynKind || t.Kind() == types.StructKind && t.TypeName() == string(md.FullName())) {
		c.errorf(native.Expr().ID(), "the rule returns %s: it must return the entry (e, e.with({...})) or drop(), a %s", t, md.FullName())
	}
	c.walk(native.Expr(), md, vars)
	return c.err()
}

type ruleChecker struct {
	a    *celast.AST
	src  string
	errs []*query.CompileError
}

// errorf records an error at the start of expression id, located in the
// user's text.
func (c *ruleChecker) errorf(id int64, format string, args ...any) {
	c.errs = append(c.errs, query.ErrorAt(c.src, c.a, id, fmt.Sprintf(format, args...)))
}

func (c *ruleChecker) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	first := c.errs[0]
	first.More = c.errs[1:]
	return first
}

// walk visits every call of with() in e.
func (c *ruleChecker) walk(e celast.Expr, entry protoreflect.MessageDescriptor, vars []string) {
	celwalk.Walk(e, celwalk.Scope{}, func(x celast.Expr, _ celwalk.Scope) bool {
		if x.Kind() == celast.CallKind {
			call := x.AsCall()
			if call.FunctionName() == "with" && call.IsMemberFunction() && len(call.Args()) == 1 {
				c.checkWith(x, entry, vars)
			}
		}
		return true
	})
}

// checkWith checks one call m.with({...}).
func (c *ruleChecker) checkWith(e celast.Expr, entry protoreflect.MessageDescriptor, vars []string) {
	call := e.AsCall()
	t := c.a.GetType(call.Target().ID())
	if t == nil || t.Kind() != types.StructKind {
		c.errorf(call.Target().ID(), "with() is a function of messages, not of %s", t)
		return
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(t.TypeName()))
	md, ok := d.(protoreflect.MessageDescriptor)
	if err != nil || !ok {
		c.errorf(call.Target().ID(), "with(): %s is not a message of the image schema", t.TypeName())
		return
	}
	arg := call.Args()[0]
	if arg.Kind() != celast.MapKind {
		c.errorf(arg.ID(), `with() takes a map literal of field paths: with({"reg.name": "/new"})`)
		return
	}
	if md != entry {
		vars = nil
	}
	for _, ent := range arg.AsMap().Entries() {
		me := ent.AsMapEntry()
		k := me.Key()
		if k.Kind() != celast.LiteralKind {
			c.errorf(k.ID(), "with(): a field path must be a string literal")
			continue
		}
		key, ok := k.AsLiteral().(types.String)
		if !ok {
			c.errorf(k.ID(), "with(): a field path must be a string literal")
			continue
		}
		fp, err := resolvePath(md, string(key), vars)
		if err != nil {
			c.errorf(k.ID(), "with(): %v", err)
			continue
		}
		v := me.Value()
		vt := c.a.GetType(v.ID())
		if !fp.accepts(vt) {
			c.errorf(v.ID(), "with(): %s is %s, not %s", fp.text, fp.want(), vt)
			continue
		}
		if lit, ok := literalValue(v); ok && fp.extra == "" && lit != types.NullValue {
			if _, err := fp.convert(lit, nil, 0); err != nil {
				c.errorf(v.ID(), "with(): %s: %v", fp.text, err)
			}
		}
	}
}

// literalValue returns the value of a literal or of a list of literals.
func literalValue(e celast.Expr) (ref.Val, bool) {
	switch e.Kind() {
	case celast.LiteralKind:
		return e.AsLiteral(), true
	case celast.ListKind:
		var vals []ref.Val
		for _, el := range e.AsList().Elements() {
			if el.Kind() != celast.LiteralKind {
				return nil, false
			}
			vals = append(vals, el.AsLiteral())
		}
		return types.NewRefValList(types.DefaultTypeAdapter, vals), true
	}
	return nil, false
}

// fieldPath is a resolved with() path.
type fieldPath struct {
	text  string
	steps []pathStep
	extra string // set for the extra pseudo-fields
}

type pathStep struct {
	fd    protoreflect.FieldDescriptor
	index int // -1: none
}

// leaf returns the last step.
func (p *fieldPath) leaf() pathStep { return p.steps[len(p.steps)-1] }

// resolvePath resolves a with() path in md. extras lists the pseudo-fields
// allowed (those of the entry message of a kind with extras).
func resolvePath(md protoreflect.MessageDescriptor, path string, extras []string) (*fieldPath, error) {
	for _, x := range extras {
		if path == x && md.Fields().ByName(protoreflect.Name(x)) == nil {
			return &fieldPath{text: path, extra: x}, nil
		}
	}
	if path == "" {
		return nil, errors.New("empty field path")
	}
	fp := &fieldPath{text: path}
	cur := md
	parts := strings.Split(path, ".")
	for i, part := range parts {
		if cur == nil {
			return nil, fmt.Errorf("%s: %s is not a message", path, strings.Join(parts[:i], "."))
		}
		name, index := part, -1
		if j := strings.IndexByte(part, '['); j >= 0 {
			if !strings.HasSuffix(part, "]") {
				return nil, fmt.Errorf("%s: malformed index in %q", path, part)
			}
			n, err := strconv.ParseUint(part[j+1:len(part)-1], 10, 31)
			if err != nil {
				return nil, fmt.Errorf("%s: bad index in %q", path, part)
			}
			name, index = part[:j], int(n)
		}
		fd := cur.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return nil, fmt.Errorf("%s: no field %q in %s (fields: %s)", path, name, cur.FullName(), messageFieldNames(cur))
		}
		if index >= 0 && !fd.IsList() {
			return nil, fmt.Errorf("%s: %s is not a repeated field", path, name)
		}
		if i < len(parts)-1 && fd.IsList() && index < 0 {
			return nil, fmt.Errorf("%s: %s is repeated: name one element, %s[N]", path, name, name)
		}
		fp.steps = append(fp.steps, pathStep{fd: fd, index: index})
		cur = fd.Message()
	}
	return fp, nil
}

func messageFieldNames(md protoreflect.MessageDescriptor) string {
	var names []string
	for i := 0; i < md.Fields().Len(); i++ {
		names = append(names, string(md.Fields().Get(i).Name()))
	}
	return strings.Join(names, ", ")
}

// whole reports whether the path names a whole repeated field.
func (p *fieldPath) whole() bool {
	l := p.leaf()
	return l.fd.IsList() && l.index < 0
}

// want describes what the path accepts, for messages.
func (p *fieldPath) want() string {
	if p.extra != "" {
		return "bytes"
	}
	fd := p.leaf().fd
	s := scalarWant(fd)
	if p.whole() {
		s = "a list of " + s
		if images.FieldOptions(fd).IPAdd {
			s += ", or an address string"
		}
	}
	return s
}

func scalarWant(fd protoreflect.FieldDescriptor) string {
	o := images.FieldOptions(fd)
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return "a bool"
	case protoreflect.StringKind:
		return "a string"
	case protoreflect.BytesKind:
		if o.Conv != "" {
			return "bytes or a string"
		}
		return "bytes"
	case protoreflect.EnumKind:
		return "an int or a name of " + string(fd.Enum().Name())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return "a " + string(fd.Message().FullName())
	}
	s := "an integer (" + fd.Kind().String() + ")"
	switch {
	case o.IPAdd:
		s += " or an IPv4 address string"
	case o.Dev:
		s += ` or "major:minor"`
	case o.Flags != "" || o.Dict != "" || o.Hex:
		s += " or its names as crit prints them"
	}
	return s
}

// accepts reports whether a value of checked type t may be assigned to the
// path. dyn is accepted and checked when the rule runs.
func (p *fieldPath) accepts(t *types.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case types.DynKind, types.AnyKind:
		return true
	case types.NullTypeKind:
		return p.extra == "" && p.leaf().index < 0
	}
	if p.extra != "" {
		return t.Kind() == types.BytesKind || t.Kind() == types.StringKind
	}
	fd := p.leaf().fd
	if p.whole() {
		if t.Kind() == types.StringKind && images.FieldOptions(fd).IPAdd {
			return true
		}
		if t.Kind() != types.ListKind {
			return false
		}
		el := t.Parameters()[0]
		return el.Kind() == types.DynKind || acceptsScalar(fd, el)
	}
	return acceptsScalar(fd, t)
}

func acceptsScalar(fd protoreflect.FieldDescriptor, t *types.Type) bool {
	k := t.Kind()
	if k == types.DynKind || k == types.AnyKind {
		return true
	}
	o := images.FieldOptions(fd)
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return k == types.BoolKind
	case protoreflect.StringKind:
		return k == types.StringKind
	case protoreflect.BytesKind:
		return k == types.BytesKind || k == types.StringKind && o.Conv != ""
	case protoreflect.EnumKind:
		return k == types.IntKind || k == types.UintKind || k == types.StringKind
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return k == types.StructKind && t.TypeName() == string(fd.Message().FullName())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return k == types.DoubleKind || k == types.IntKind || k == types.UintKind
	}
	if k == types.IntKind || k == types.UintKind {
		return true
	}
	return k == types.StringKind && annot.FieldOf(fd).Annotated()
}

// convert turns v into the value of the path's leaf: one value, or the
// elements of a whole repeated field (list). null yields ok=false.
func (p *fieldPath) convert(v ref.Val, order codec.ByteOrder, maxRepeated int) ([]protoreflect.Value, error) {
	fd := p.leaf().fd
	if !p.whole() {
		pv, err := convertScalar(fd, v, order, true)
		if err != nil {
			return nil, err
		}
		return []protoreflect.Value{pv}, nil
	}
	if s, ok := v.(types.String); ok && images.FieldOptions(fd).IPAdd {
		return addrWords(string(s), order, true)
	}
	l, ok := v.(traits.Lister)
	if !ok {
		return nil, fmt.Errorf("want a list, got %s", v.Type().TypeName())
	}
	n, ok := l.Size().(types.Int)
	if !ok {
		return nil, errors.New("list of unknown size")
	}
	if maxRepeated > 0 && int64(n) > int64(maxRepeated) {
		return nil, fmt.Errorf("%d elements: more than the limit of %d", n, maxRepeated)
	}
	out := make([]protoreflect.Value, 0, int(n))
	for i := types.Int(0); i < n; i++ {
		el := l.Get(i)
		if s, ok := el.(types.String); ok && images.FieldOptions(fd).IPAdd {
			w, err := addrWords(string(s), order, true)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out = append(out, w...)
			continue
		}
		pv, err := convertScalar(fd, el, order, false)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, pv)
	}
	if maxRepeated > 0 && len(out) > maxRepeated {
		return nil, fmt.Errorf("%d elements: more than the limit of %d", len(out), maxRepeated)
	}
	return out, nil
}

// addrWords converts an address to the (criu).ipadd words: the address
// bytes read as u32 in the dumping host's byte order.
func addrWords(s string, order codec.ByteOrder, v6 bool) ([]protoreflect.Value, error) {
	words, err := annot.ParseIP(s, order)
	if err != nil {
		return nil, err
	}
	if len(words) > 1 && !v6 {
		return nil, fmt.Errorf("%s is an IPv6 address: set the whole field", s)
	}
	out := make([]protoreflect.Value, len(words))
	for i, w := range words {
		out[i] = protoreflect.ValueOfUint32(w)
	}
	return out, nil
}

// convertScalar converts one CEL value to the value of a singular field, or
// of one element of a repeated field.
func convertScalar(fd protoreflect.FieldDescriptor, v ref.Val, order codec.ByteOrder, single bool) (protoreflect.Value, error) {
	o := images.FieldOptions(fd)
	bad := func() (protoreflect.Value, error) {
		return protoreflect.Value{}, fmt.Errorf("want %s, got %s", scalarWant(fd), v.Type().TypeName())
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if b, ok := v.(types.Bool); ok {
			return protoreflect.ValueOfBool(bool(b)), nil
		}
		return bad()
	case protoreflect.StringKind:
		if s, ok := v.(types.String); ok {
			return protoreflect.ValueOfString(string(s)), nil
		}
		return bad()
	case protoreflect.BytesKind:
		switch b := v.(type) {
		case types.Bytes:
			return protoreflect.ValueOfBytes(append([]byte(nil), b...)), nil
		case types.String:
			if o.Conv != "" {
				return protoreflect.ValueOfBytes([]byte(b)), nil
			}
		}
		return bad()
	case protoreflect.MessageKind, protoreflect.GroupKind:
		m, ok := v.Value().(proto.Message)
		if !ok || m.ProtoReflect().Descriptor().FullName() != fd.Message().FullName() {
			return bad()
		}
		g, err := generated(m, true)
		if err != nil {
			return protoreflect.Value{}, err
		}
		return protoreflect.ValueOfMessage(g.ProtoReflect()), nil
	case protoreflect.EnumKind:
		var n int64
		switch x := v.(type) {
		case types.String:
			ev := fd.Enum().Values().ByName(protoreflect.Name(x))
			if ev == nil {
				return protoreflect.Value{}, fmt.Errorf("%q is not a value of %s", string(x), fd.Enum().FullName())
			}
			return protoreflect.ValueOfEnum(ev.Number()), nil
		case types.Int:
			n = int64(x)
		case types.Uint:
			if x > math.MaxInt32 {
				return protoreflect.Value{}, fmt.Errorf("%d is not a value of %s", uint64(x), fd.Enum().FullName())
			}
			n = int64(x)
		default:
			return bad()
		}
		if n < math.MinInt32 || n > math.MaxInt32 || fd.Enum().Values().ByNumber(protoreflect.EnumNumber(n)) == nil {
			return protoreflect.Value{}, fmt.Errorf("%d is not a value of %s", n, fd.Enum().FullName())
		}
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
	}
	// Integers.
	var (
		neg bool
		u   uint64
	)
	switch x := v.(type) {
	case types.Int:
		neg, u = x < 0, uint64(x)
	case types.Uint:
		u = uint64(x)
	case types.String:
		if o.IPAdd {
			w, err := addrWords(string(x), order, false)
			if err != nil {
				return protoreflect.Value{}, err
			}
			return w[0], nil
		}
		var ok bool
		if f := annot.FieldOf(fd); !f.Annotated() {
			return bad()
		} else if neg, u, ok = f.ParseText(string(x)); !ok {
			return protoreflect.Value{}, fmt.Errorf("%q: unknown names for %s", string(x), fd.Name())
		}
	default:
		return bad()
	}
	s := int64(u) // the value when neg
	rangeErr := func() (protoreflect.Value, error) {
		if neg {
			return protoreflect.Value{}, fmt.Errorf("%d is out of range for %s", s, fd.Kind())
		}
		return protoreflect.Value{}, fmt.Errorf("%d is out of range for %s", u, fd.Kind())
	}
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if neg && s < math.MinInt32 || !neg && u > math.MaxInt32 {
			return rangeErr()
		}
		return protoreflect.ValueOfInt32(int32(s)), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if !neg && u > math.MaxInt64 {
			return rangeErr()
		}
		return protoreflect.ValueOfInt64(s), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if neg || u > math.MaxUint32 {
			return rangeErr()
		}
		return protoreflect.ValueOfUint32(uint32(u)), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if neg {
			return rangeErr()
		}
		return protoreflect.ValueOfUint64(u), nil
	}
	return bad()
}

// generated returns m as the generated Go type of its message: m itself (or
// a copy when clone is set) when it is one already, else a copy made
// through the wire form. CEL builds the messages of struct literals
// (fown_entry{uid: 5u}) and the default values of unset message fields with
// dynamicpb; the generated messages cannot hold them. Required fields may
// be missing: the entry is checked when it is marshalled.
func generated(m proto.Message, clone bool) (proto.Message, error) {
	name := m.ProtoReflect().Descriptor().FullName()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
	if err != nil {
		return nil, fmt.Errorf("%s is not a message of the image schema", name)
	}
	if m.ProtoReflect().Type() == mt {
		if clone {
			return proto.Clone(m), nil
		}
		return m, nil
	}
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	out := mt.New().Interface()
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return out, nil
}

// ruleEval is the state that with() and drop() share with Eval. Several
// entries may be evaluated at once: mu guards the maps and the order.
type ruleEval struct {
	msg         protoreflect.MessageDescriptor
	adapter     types.Adapter
	maxRepeated int
	drop        proto.Message // the value of drop(), told apart by identity

	mu    sync.Mutex
	paths map[string]*fieldPath // resolved paths by message and key
}

// evalState is the state of one evaluation of a rule: it lives in the
// activation (with() is bound late to it), so that one compiled Rule
// evaluates any number of entries at once, of images of any byte order.
type evalState struct {
	order codec.ByteOrder
	// extras holds the extra data set by with() on the messages it built,
	// until Eval takes it.
	extras map[proto.Message]*extraEdit
}

func (ev *ruleEval) path(md protoreflect.MessageDescriptor, key string, vars []string) (*fieldPath, error) {
	cacheKey := string(md.FullName()) + "\x00" + key
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if fp := ev.paths[cacheKey]; fp != nil {
		return fp, nil
	}
	fp, err := resolvePath(md, key, vars)
	if err == nil {
		ev.paths[cacheKey] = fp
	}
	return fp, err
}

// extraEdit is extra data set through with().
type extraEdit struct {
	set map[string][]byte
}

func (ev *ruleEval) with(st *evalState, recv, arg ref.Val) ref.Val {
	m, ok := recv.Value().(proto.Message)
	if !ok {
		return types.NewErr("with() is a function of messages, not of %s", recv.Type().TypeName())
	}
	if m == ev.drop {
		return types.NewErr("with(): drop() cannot be updated")
	}
	mp, ok := arg.(traits.Mapper)
	if !ok {
		return types.NewErr("with() takes a map of field paths")
	}
	md := m.ProtoReflect().Descriptor()
	var vars []string
	if md.FullName() == ev.msg.FullName() {
		vars = []string{extraData, extraInQ, extraOutQ}
	}
	var keys []string
	for it := mp.Iterator(); it.HasNext() == types.True; {
		k, ok := it.Next().(types.String)
		if !ok {
			return types.NewErr("with(): a field path must be a string")
		}
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	out, err := generated(m, true)
	if err != nil {
		return types.NewErr("with(): %v", err)
	}
	var edit *extraEdit
	if prev := st.extras[m]; prev != nil {
		edit = &extraEdit{set: map[string][]byte{}}
		for k, v := range prev.set {
			edit.set[k] = v
		}
	}
	for _, k := range keys {
		fp, err := ev.path(md, k, vars)
		if err != nil {
			return types.NewErr("with(): %v", err)
		}
		v, _ := mp.Find(types.String(k))
		if fp.extra != "" {
			var b []byte
			switch x := v.(type) {
			case types.Bytes:
				b = append([]byte(nil), x...)
			case types.String:
				b = []byte(x)
			default:
				return types.NewErr("with(): %s: want bytes, got %s", k, v.Type().TypeName())
			}
			if edit == nil {
				edit = &extraEdit{set: map[string][]byte{}}
			}
			edit.set[fp.extra] = b
			continue
		}
		if err := ev.set(out.ProtoReflect(), fp, v, st.order); err != nil {
			return types.NewErr("with(): %s: %v", k, err)
		}
	}
	if edit != nil {
		if st.extras == nil {
			st.extras = map[proto.Message]*extraEdit{}
		}
		st.extras[out] = edit
	}
	return ev.adapter.NativeToValue(out)
}

// set assigns v at path fp of m.
func (ev *ruleEval) set(m protoreflect.Message, fp *fieldPath, v ref.Val, order codec.ByteOrder) error {
	for _, st := range fp.steps[:len(fp.steps)-1] {
		if st.fd.IsList() {
			l := m.Mutable(st.fd).List()
			if st.index >= l.Len() {
				return fmt.Errorf("%s has %d elements: no [%d]", st.fd.Name(), l.Len(), st.index)
			}
			m = l.Get(st.index).Message()
			continue
		}
		m = m.Mutable(st.fd).Message()
	}
	leaf := fp.leaf()
	if _, null := v.(types.Null); null {
		if leaf.index >= 0 {
			return errors.New("null cannot be an element")
		}
		m.Clear(leaf.fd)
		return nil
	}
	vals, err := fp.convert(v, order, ev.maxRepeated)
	if err != nil {
		return err
	}
	switch {
	case leaf.index >= 0:
		l := m.Mutable(leaf.fd).List()
		switch {
		case leaf.index < l.Len():
			l.Set(leaf.index, vals[0])
		case leaf.index == l.Len():
			if l.Len() >= ev.maxRepeated {
				return fmt.Errorf("more than the limit of %d elements", ev.maxRepeated)
			}
			l.Append(vals[0])
		default:
			return fmt.Errorf("%s has %d elements: no [%d]", leaf.fd.Name(), l.Len(), leaf.index)
		}
	case leaf.fd.IsList():
		m.Clear(leaf.fd)
		if len(vals) > 0 {
			l := m.Mutable(leaf.fd).List()
			for _, x := range vals {
				l.Append(x)
			}
		}
	default:
		m.Set(leaf.fd, vals[0])
	}
	return nil
}

// RuleOutcome is the value a rule gives an entry.
type RuleOutcome struct {
	// Msg is the new message: the input itself when the rule returned e
	// unchanged. nil when Drop.
	Msg proto.Message
	// Extra is the entry's extra data, with what the rule set through
	// with().
	Extra codec.ExtraParts
	// Drop is set when the rule returned drop().
	Drop bool
	// Matched is set when the rule returned something other than its input
	// (a with() result or drop()).
	Matched bool
}

// ruleActivation binds e and the extra variables.
type ruleActivation struct {
	e proto.Message
	x *codec.ExtraParts
}

func (a *ruleActivation) ResolveName(name string) (any, bool) {
	switch name {
	case "e":
		return a.e, true
	case extraData:
		return a.x.Data, true
	case extraInQ:
		return a.x.InQ, true
	case extraOutQ:
		return a.x.OutQ, true
	}
	return nil, false
}

func (a *ruleActivation) Parent() interpreter.Activation { return nil }

// Eval evaluates the rule on one entry. in is not modified. order is the
// byte order of the image (for addresses given as text); nil is
// little-endian. Errors wrap context.Cause when ctx ends. A Rule is safe
// for concurrent use: every evaluation keeps its state (the byte order, the
// extra data set by with()) in its own activation.
func (r *Rule) Eval(ctx context.Context, in proto.Message, x codec.ExtraParts, order codec.ByteOrder) (RuleOutcome, error) {
	ev := r.ev
	st := &evalState{order: order}
	act, err := cel.FunctionVars(&ruleActivation{e: in, x: &x}, map[string]cel.LateBoundFunction{
		"with": func(_ string, args ...ref.Val) ref.Val {
			if len(args) != 2 {
				return types.NewErr("with() takes one map")
			}
			return ev.with(st, args[0], args[1])
		},
	})
	if err != nil {
		return RuleOutcome{}, err
	}
	val, _, err := r.prg.ContextEval(ctx, act)
	if err != nil {
		if cerr := context.Cause(ctx); cerr != nil {
			return RuleOutcome{}, fmt.Errorf("%w (%v)", cerr, err)
		}
		return RuleOutcome{}, err
	}
	m, ok := val.Value().(proto.Message)
	if !ok || m.ProtoReflect().Descriptor().FullName() != r.msg.FullName() {
		return RuleOutcome{}, fmt.Errorf("the rule returned %s, not a %s", val.Type().TypeName(), r.msg.FullName())
	}
	switch {
	case m == ev.drop && r.Head:
		return RuleOutcome{}, fmt.Errorf("%s: the head entry of an image cannot be dropped", r.Target())
	case m == ev.drop:
		return RuleOutcome{Drop: true, Matched: true}, nil
	case m == in:
		return RuleOutcome{Msg: in, Extra: x}, nil
	}
	edit := st.extras[m]
	if m, err = generated(m, false); err != nil {
		return RuleOutcome{}, err
	}
	out := RuleOutcome{Msg: m, Extra: x, Matched: true}
	if edit != nil {
		lengths := extraLengths[r.Kind.Extra]
		mr := m.ProtoReflect()
		for name, b := range edit.set {
			if r.Head && x.Data == nil {
				// A ghost file with chunks: nothing follows the file entry.
				return RuleOutcome{}, fmt.Errorf("%s: the contents of this file are in its chunks: rewrite them with a ghost-chunk rule", name)
			}
			switch name {
			case extraData:
				out.Extra.Data = b
			case extraInQ:
				out.Extra.InQ = b
			case extraOutQ:
				out.Extra.OutQ = b
			}
			if f := r.msg.Fields().ByName(lengths[name]); f != nil {
				if uint64(len(b)) > math.MaxUint32 {
					return RuleOutcome{}, fmt.Errorf("%s: %d bytes is too long", name, len(b))
				}
				mr.Set(f, protoreflect.ValueOfUint32(uint32(len(b))))
			}
		}
	}
	return out, nil
}

func isKindName(name string) bool {
	_, ok := magic.ByName(name)
	return ok
}
