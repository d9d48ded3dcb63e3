package query

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// CEL's grammar has no bitwise operators. critq accepts Go's: binary &, |, ^,
// << and >>, and unary ~ (bitwise complement), with Go's precedence:
//
//	*  /  %  <<  >>  &     bind like multiplication
//	+  -  |  ^             bind like addition
//	== != < <= > >= in     comparison
//	&&
//	||
//	? :
//
// rewriteBitwise turns them into calls of the functions below before CEL parses
// the text, so `v.prot & 4 != 0` becomes `_bitand_(v.prot, 4) != 0`. It knows
// CEL's lexical syntax (every string and bytes literal form, comments, && and
// ||), and it records where each piece of the rewritten text came from so that
// errors point into the user's text.

// Names of the functions the bitwise operators become. They are ordinary
// identifiers, so they may also be called directly.
const (
	fnBitAnd = "_bitand_"
	fnBitOr  = "_bitor_"
	fnBitXor = "_bitxor_"
	fnShl    = "_shl_"
	fnShr    = "_shr_"
	fnBitNot = "_bitnot_"
)

// maxRewriteDepth bounds the nesting the rewriter follows; deeper input is
// left to CEL's parser, whose own limit is lower.
const maxRewriteDepth = 500

type bitTokKind uint8

const (
	tkEOF bitTokKind = iota
	tkIdent
	tkNumber
	tkString
	tkOp
	tkBad // unrecognised character, unterminated literal
)

// bitToken is one lexical token: src[pos:end].
type bitToken struct {
	kind bitTokKind
	pos  int
	end  int
	op   string // tkOp: the operator or punctuation
}

// celOps lists CEL's operators and punctuation plus critq's bitwise ones, longer
// spellings first.
var celOps = [...]string{
	"&&", "||", "<<", ">>", "<=", ">=", "==", "!=",
	"&", "|", "^", "~", "<", ">", "!", "+", "-", "*", "/", "%",
	"?", ":", ".", ",", "(", ")", "[", "]", "{", "}", "=",
}

// tokenizeCEL splits src into tokens, dropping white space and comments. It
// never fails: what it does not recognise becomes a tkBad token.
func tokenizeCEL(src string) []bitToken {
	var toks []bitToken
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			continue
		case isASCIILetter(c) || c == '_':
			j := i + 1
			for j < len(src) && (isASCIILetter(src[j]) || isASCIIDigit(src[j]) || src[j] == '_') {
				j++
			}
			if j < len(src) && (src[j] == '"' || src[j] == '\'') && isCELStringPrefix(src[i:j]) {
				end, ok := scanCELString(src, j, strings.ContainsAny(src[i:j], "rR"))
				toks = append(toks, bitToken{kind: stringTokKind(ok), pos: i, end: end})
				i = end
				continue
			}
			toks = append(toks, bitToken{kind: tkIdent, pos: i, end: j})
			i = j
			continue
		case c == '"' || c == '\'':
			end, ok := scanCELString(src, i, false)
			toks = append(toks, bitToken{kind: stringTokKind(ok), pos: i, end: end})
			i = end
			continue
		case c == '`':
			j := i + 1
			for j < len(src) && src[j] != '`' && src[j] != '\n' {
				j++
			}
			if j < len(src) && src[j] == '`' {
				toks = append(toks, bitToken{kind: tkIdent, pos: i, end: j + 1})
				i = j + 1
			} else {
				toks = append(toks, bitToken{kind: tkBad, pos: i, end: j})
				i = j
			}
			continue
		case isASCIIDigit(c) || c == '.' && i+1 < len(src) && isASCIIDigit(src[i+1]) && !endsCELOperand(toks):
			end := scanCELNumber(src, i)
			toks = append(toks, bitToken{kind: tkNumber, pos: i, end: end})
			i = end
			continue
		}
		if op := matchCELOp(src[i:]); op != "" {
			toks = append(toks, bitToken{kind: tkOp, pos: i, end: i + len(op), op: op})
			i += len(op)
			continue
		}
		_, n := utf8.DecodeRuneInString(src[i:])
		toks = append(toks, bitToken{kind: tkBad, pos: i, end: i + n})
		i += n
	}
	return append(toks, bitToken{kind: tkEOF, pos: len(src), end: len(src)})
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isASCIIDigit(c byte) bool  { return '0' <= c && c <= '9' }

func isIdentByte(c byte) bool { return isASCIILetter(c) || isASCIIDigit(c) || c == '_' }

// isCELStringPrefix reports whether an identifier directly before a quote is a
// string prefix: r or R (raw), b or B (bytes), or both.
func isCELStringPrefix(s string) bool {
	switch len(s) {
	case 1:
		return strings.ContainsRune("rRbB", rune(s[0]))
	case 2:
		a, b := s[0]|0x20, s[1]|0x20
		return a == 'b' && b == 'r' || a == 'r' && b == 'b'
	}
	return false
}

func stringTokKind(ok bool) bitTokKind {
	if ok {
		return tkString
	}
	return tkBad
}

// scanCELString scans the string literal whose opening quote is at src[i] and
// returns the offset after it, and whether it is terminated. Triple-quoted
// strings may span lines; others may not. Outside raw strings a backslash
// escapes the next byte.
func scanCELString(src string, i int, raw bool) (int, bool) {
	q := src[i]
	triple := i+2 < len(src) && src[i+1] == q && src[i+2] == q
	if triple {
		i += 3
	} else {
		i++
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\\' && !raw:
			i += 2
			continue
		case c == q && !triple:
			return i + 1, true
		case c == q && i+2 < len(src) && src[i+1] == q && src[i+2] == q:
			return i + 3, true
		case c == '\n' && !triple:
			return i, false
		}
		i++
	}
	return len(src), false
}

// scanCELNumber scans a numeric literal at src[i]: decimal or hex integers with
// an optional u suffix, and floating-point numbers. Word characters glued to
// it are kept in the token, so that a malformed literal stays one operand.
func scanCELNumber(src string, i int) int {
	if strings.HasPrefix(src[i:], "0x") || strings.HasPrefix(src[i:], "0X") {
		i += 2
	} else {
		for i < len(src) && isASCIIDigit(src[i]) {
			i++
		}
		if i+1 < len(src) && src[i] == '.' && isASCIIDigit(src[i+1]) {
			i++
			for i < len(src) && isASCIIDigit(src[i]) {
				i++
			}
		}
		if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
			j := i + 1
			if j < len(src) && (src[j] == '+' || src[j] == '-') {
				j++
			}
			if j < len(src) && isASCIIDigit(src[j]) {
				i = j
			}
		}
	}
	for i < len(src) && isIdentByte(src[i]) {
		i++
	}
	return i
}

// endsCELOperand reports whether the last token ends an operand, so that a '.'
// after it selects a member rather than starting a number (".5").
func endsCELOperand(toks []bitToken) bool {
	if len(toks) == 0 {
		return false
	}
	t := toks[len(toks)-1]
	switch t.kind {
	case tkIdent, tkNumber, tkString:
		return true
	case tkOp:
		return t.op == ")" || t.op == "]" || t.op == "}"
	}
	return false
}

func matchCELOp(s string) string {
	for _, op := range celOps {
		if strings.HasPrefix(s, op) {
			return op
		}
	}
	return ""
}

// bitFunc returns the function a bitwise operator becomes, or "".
func bitFunc(op string) string {
	switch op {
	case "&":
		return fnBitAnd
	case "|":
		return fnBitOr
	case "^":
		return fnBitXor
	case "<<":
		return fnShl
	case ">>":
		return fnShr
	case "~":
		return fnBitNot
	}
	return ""
}

// opSymbol is the inverse of bitFunc, for error messages.
func opSymbol(fn string) string {
	switch fn {
	case fnBitAnd:
		return "&"
	case fnBitOr:
		return "|"
	case fnBitXor:
		return "^"
	case fnShl:
		return "<<"
	case fnShr:
		return ">>"
	case fnBitNot:
		return "~"
	}
	return ""
}

// bitNode is a parsed piece of the source, src[start:end]. A node with fn set
// is a bitwise operation that becomes fn(args...), and op is the offset of
// its operator. Other nodes are copied as they are, except for the bitwise
// nodes nested in them (kids, in source order).
type bitNode struct {
	start, end int
	fn         string
	op         int
	args       []*bitNode
	kids       []*bitNode
}

// bitParser is a precedence-climbing parser over CEL's expression grammar with
// Go's bitwise operators added. It records only the structure the rewrite
// needs; it leaves every other check to CEL's own parser.
type bitParser struct {
	source string
	toks   []bitToken
	i      int
	depth  int
	bad    bool
}

func (p *bitParser) peek() bitToken { return p.toks[p.i] }

func (p *bitParser) isOp(op string) bool {
	t := p.toks[p.i]
	return t.kind == tkOp && t.op == op
}

func (p *bitParser) next() bitToken {
	t := p.toks[p.i]
	if t.kind != tkEOF {
		p.i++
	}
	return t
}

func (p *bitParser) expect(op string) bitToken {
	if !p.isOp(op) {
		p.bad = true
		return p.peek()
	}
	return p.next()
}

// span makes a plain node from start to the end of the last token consumed,
// holding the bitwise nodes found in parts.
func (p *bitParser) span(start int, parts ...*bitNode) *bitNode {
	n := &bitNode{start: start, end: p.toks[max(p.i-1, 0)].end}
	for _, c := range parts {
		if c == nil {
			continue
		}
		if c.fn != "" {
			n.kids = append(n.kids, c)
		} else {
			n.kids = append(n.kids, c.kids...)
		}
	}
	return n
}

func (p *bitParser) enter() bool {
	p.depth++
	if p.depth > maxRewriteDepth {
		p.bad = true
	}
	return !p.bad
}

func (p *bitParser) leave() { p.depth-- }

// expr = or ['?' or ':' expr]
func (p *bitParser) expr() *bitNode {
	if !p.enter() {
		return &bitNode{}
	}
	defer p.leave()
	start := p.peek().pos
	cond := p.or()
	if !p.isOp("?") {
		return cond
	}
	p.next()
	a := p.or()
	p.expect(":")
	b := p.expr()
	return p.span(start, cond, a, b)
}

func (p *bitParser) or() *bitNode {
	return p.chain(p.and, "||")
}

func (p *bitParser) and() *bitNode {
	return p.chain(p.rel, "&&")
}

// chain parses operands of one non-bitwise level joined by any of ops.
func (p *bitParser) chain(operand func() *bitNode, celOps ...string) *bitNode {
	start := p.peek().pos
	first := operand()
	parts := []*bitNode{first}
	for !p.bad && p.atOp(celOps...) {
		p.next()
		parts = append(parts, operand())
	}
	if len(parts) == 1 {
		return first
	}
	return p.span(start, parts...)
}

func (p *bitParser) atOp(celOps ...string) bool {
	t := p.peek()
	if t.kind == tkOp {
		for _, op := range celOps {
			if t.op == op {
				return true
			}
		}
		return false
	}
	// "in" is the only operator spelt as a word.
	if t.kind == tkIdent && t.end-t.pos == 2 {
		for _, op := range celOps {
			if op == "in" {
				return p.text(t) == "in"
			}
		}
	}
	return false
}

func (p *bitParser) rel() *bitNode {
	return p.chain(p.add, "==", "!=", "<", "<=", ">", ">=", "in")
}

func (p *bitParser) add() *bitNode {
	return p.level(p.mul, "+", "-", "|", "^")
}

func (p *bitParser) mul() *bitNode {
	return p.level(p.unary, "*", "/", "%", "<<", ">>", "&")
}

// level parses a left-associative level that mixes CEL's operators with
// bitwise ones: a bitwise operator takes everything to its left at this
// level as its left operand.
func (p *bitParser) level(operand func() *bitNode, celOps ...string) *bitNode {
	start := p.peek().pos
	left := operand()
	for !p.bad && p.atOp(celOps...) {
		t := p.next()
		right := operand()
		if fn := bitFunc(t.op); fn != "" {
			left = &bitNode{start: start, end: right.end, fn: fn, op: t.pos, args: []*bitNode{left, right}}
		} else {
			left = p.span(start, left, right)
		}
	}
	return left
}

// unary = ('!' | '-' | '~')* postfix
func (p *bitParser) unary() *bitNode {
	if !p.enter() {
		return &bitNode{}
	}
	defer p.leave()
	t := p.peek()
	if t.kind == tkOp && (t.op == "!" || t.op == "-" || t.op == "~") {
		p.next()
		x := p.unary()
		if t.op == "~" {
			return &bitNode{start: t.pos, end: x.end, fn: fnBitNot, op: t.pos, args: []*bitNode{x}}
		}
		return p.span(t.pos, x)
	}
	return p.postfix()
}

// postfix = primary { '.' ['?'] IDENT [args] | '[' ['?'] expr ']' | '{' inits '}' }
func (p *bitParser) postfix() *bitNode {
	start := p.peek().pos
	parts := []*bitNode{p.primary()}
	for !p.bad {
		switch {
		case p.isOp("."):
			p.next()
			if p.isOp("?") {
				p.next()
			}
			if p.next().kind != tkIdent {
				p.bad = true
			}
			if p.isOp("(") {
				parts = append(parts, p.list("(", ")", false))
			}
		case p.isOp("["):
			p.next()
			if p.isOp("?") {
				p.next()
			}
			parts = append(parts, p.expr())
			p.expect("]")
		case p.isOp("{"):
			parts = append(parts, p.list("{", "}", true))
		default:
			return p.span(start, parts...)
		}
	}
	return p.span(start, parts...)
}

// primary = ['.'] IDENT [args] | '(' expr ')' | '[' list ']' | '{' inits '}' | literal
func (p *bitParser) primary() *bitNode {
	t := p.peek()
	switch {
	case t.kind == tkIdent || t.kind == tkNumber || t.kind == tkString:
		p.next()
		if t.kind == tkIdent && p.isOp("(") {
			return p.span(t.pos, p.list("(", ")", false))
		}
		return p.span(t.pos)
	case t.kind == tkOp && t.op == ".":
		p.next()
		if p.peek().kind != tkIdent {
			p.bad = true
			return p.span(t.pos)
		}
		return p.primary()
	case t.kind == tkOp && t.op == "(":
		p.next()
		x := p.expr()
		p.expect(")")
		return p.span(t.pos, x)
	case t.kind == tkOp && t.op == "[":
		return p.list("[", "]", false)
	case t.kind == tkOp && t.op == "{":
		return p.list("{", "}", true)
	}
	p.bad = true
	return p.span(t.pos)
}

// list parses open [item {',' item} [',']] close, where an item is
// ['?'] expr, or ['?'] expr ':' expr when pairs is set.
func (p *bitParser) list(open, close string, pairs bool) *bitNode {
	start := p.expect(open).pos
	var parts []*bitNode
	for !p.bad && !p.isOp(close) {
		if p.isOp("?") {
			p.next()
		}
		parts = append(parts, p.expr())
		if pairs {
			p.expect(":")
			parts = append(parts, p.expr())
		}
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	p.expect(close)
	return p.span(start, parts...)
}

func (p *bitParser) text(t bitToken) string { return p.source[t.pos:t.end] }

// posMap maps byte offsets of rewritten text back to the user's text.
type posMap struct {
	segs []posSegment // sorted by out
	size int          // length of the user's text
}

// posSegment says that rewritten text from out on came from the user's text at
// in: copied from there when n > 0 (n bytes), or made up for the operator at
// in when n == 0.
type posSegment struct {
	out, in, n int
}

// source returns the offset in the user's text of offset out of the
// rewritten text.
func (m *posMap) source(out int) int {
	i := sort.Search(len(m.segs), func(i int) bool { return m.segs[i].out > out }) - 1
	if i < 0 {
		return 0
	}
	s := m.segs[i]
	if s.n == 0 {
		return s.in
	}
	if d := out - s.out; d < s.n {
		return s.in + d
	}
	return min(s.in+s.n, m.size)
}

// rewriteResult is the text CEL parses, and how to map it back.
type rewriteResult struct {
	text    string
	pos     posMap
	changed bool
	// standIn is set when src has bitwise operators but does not parse: src
	// with each operator replaced by a CEL operator of the same precedence
	// and length, for CEL to find the syntax error in.
	standIn string
}

// rewriteBitwise rewrites the bitwise operators of src into function calls.
// Text without them, and text it cannot parse, is returned unchanged, so
// that CEL's parser reports any syntax error in the user's own text.
func rewriteBitwise(src string) rewriteResult {
	same := rewriteResult{text: src, pos: posMap{size: len(src)}}
	if src != "" {
		same.pos.segs = []posSegment{{0, 0, len(src)}}
	}
	toks := tokenizeCEL(src)
	found := false
	for _, t := range toks {
		if t.kind == tkOp && bitFunc(t.op) != "" {
			found = true
			break
		}
	}
	if !found {
		return same
	}
	p := &bitParser{toks: toks, source: src}
	root := p.expr()
	if p.bad || p.peek().kind != tkEOF {
		same.standIn = standInText(src, toks)
		return same
	}
	w := &bitRewriter{src: src, m: posMap{size: len(src)}}
	w.copy(0, root.start)
	w.emit(root)
	w.copy(root.end, len(src))
	return rewriteResult{text: w.b.String(), pos: w.m, changed: true}
}

// standInText replaces the bitwise operators of src by CEL operators of the
// same precedence and length: & << >> by * and / (multiplicative), | ^ by +,
// ~ by -.
func standInText(src string, toks []bitToken) string {
	b := []byte(src)
	for _, t := range toks {
		if t.kind != tkOp {
			continue
		}
		switch t.op {
		case "&":
			b[t.pos] = '*'
		case "<<", ">>":
			b[t.pos], b[t.pos+1] = '/', ' '
		case "|", "^":
			b[t.pos] = '+'
		case "~":
			b[t.pos] = '-'
		}
	}
	return string(b)
}

// bitRewriter writes the rewritten text and its position map.
type bitRewriter struct {
	src string
	b   strings.Builder
	m   posMap
}

func (w *bitRewriter) copy(from, to int) {
	if to <= from {
		return
	}
	w.m.segs = append(w.m.segs, posSegment{out: w.b.Len(), in: from, n: to - from})
	w.b.WriteString(w.src[from:to])
}

func (w *bitRewriter) synth(s string, at int) {
	w.m.segs = append(w.m.segs, posSegment{out: w.b.Len(), in: at})
	w.b.WriteString(s)
}

func (w *bitRewriter) emit(n *bitNode) {
	if n.fn == "" {
		pos := n.start
		for _, k := range n.kids {
			w.copy(pos, k.start)
			w.emit(k)
			pos = k.end
		}
		w.copy(pos, n.end)
		return
	}
	w.synth(n.fn+"(", n.op)
	for i, a := range n.args {
		if i > 0 {
			w.synth(", ", n.op)
		}
		w.emit(a)
	}
	w.synth(")", n.op)
}
