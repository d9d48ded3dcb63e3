package batch

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind says what a statement of a script is.
type Kind uint8

const (
	Let   Kind = iota + 1 // let NAME = EXPR
	Query                 // NAME: EXPR
	Rule                  // rule KIND: EXPR
)

func (k Kind) String() string {
	switch k {
	case Let:
		return "let"
	case Query:
		return "query"
	case Rule:
		return "rule"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Stmt is one statement of a script.
type Stmt struct {
	Kind Kind
	// Name is the bound name (Let), the query's name (Query) or the image
	// kind the rule rewrites, as written (Rule).
	Name string
	// Expr is the CEL expression as written, '#' comments blanked out and
	// surrounding space trimmed. It may span lines.
	Expr string
	// Line and Col (1-based, Col in bytes) locate the statement's first
	// character; ExprLine and ExprCol its expression's.
	Line, Col         int
	ExprLine, ExprCol int
}

// Source returns the expression laid out as in the script: the lines before
// it empty and the text before it on its first line blanked, so that a
// compiler's line and column in it are the script's own. Compile it under the
// script's name (cel's common.NewStringSource) and errors read
// "script:LINE:COL". It is built on each call.
func (s *Stmt) Source() string {
	return strings.Repeat("\n", s.ExprLine-1) + strings.Repeat(" ", s.ExprCol-1) + s.Expr
}

// Script is a parsed batch script.
type Script struct {
	Name  string // as given to Parse, used in messages
	Stmts []*Stmt

	lines []string
}

// ErrorAt returns an error at line and col of the script, col counted in
// characters (runes) from 1, as a compiler reports it; the error shows the
// line with a caret.
func (s *Script) ErrorAt(line, col int, msg string) *ScriptError {
	e := &ScriptError{File: s.Name, Line: line, Col: col, Msg: msg}
	if line >= 1 && line <= len(s.lines) {
		e.Text = s.lines[line-1]
		b := 0
		for n := 1; n < col && b < len(e.Text); n++ {
			_, size := utf8.DecodeRuneInString(e.Text[b:])
			b += size
		}
		e.Col = b + 1
	}
	return e
}

// Queries returns the named queries in script order.
func (s *Script) Queries() []*Stmt { return s.of(Query) }

// Lets returns the bindings in script order.
func (s *Script) Lets() []*Stmt { return s.of(Let) }

// Rules returns the rules in script order.
func (s *Script) Rules() []*Stmt { return s.of(Rule) }

func (s *Script) of(k Kind) []*Stmt {
	var out []*Stmt
	for _, st := range s.Stmts {
		if st.Kind == k {
			out = append(out, st)
		}
	}
	return out
}

// Limits of the scripts Parse accepts.
const (
	MaxScriptSize = 1 << 20
	MaxStatements = 1000
)

// Parse parses a script. A script holds, one per line, comments (from '#'
// outside a string to the end of the line), bindings `let NAME = EXPR`,
// named queries `NAME: EXPR` and rules `rule KIND: EXPR`; an expression
// continues on the following lines while a parenthesis, bracket, brace or
// triple-quoted string is open. Names are CEL identifiers; query names may
// also hold '-' and '.'. A name bound or queried twice is an error.
//
// Parse checks only this layout: the expressions are compiled by the caller.
// The error is a *ScriptError.
func Parse(name string, src []byte) (*Script, error) {
	if len(src) > MaxScriptSize {
		return nil, &ScriptError{File: name, Line: 1, Col: 1, Msg: fmt.Sprintf("script is larger than %d bytes", MaxScriptSize)}
	}
	text := strings.ReplaceAll(string(src), "\r\n", "\n")
	if !utf8.ValidString(text) {
		return nil, &ScriptError{File: name, Line: 1, Col: 1, Msg: "script is not valid UTF-8"}
	}
	p := &parser{file: name, lines: strings.Split(text, "\n")}
	sc := &Script{Name: name, lines: p.lines}
	for p.next < len(p.lines) {
		st, err := p.stmt()
		if err != nil {
			return nil, err
		}
		if st != nil {
			if len(sc.Stmts) == MaxStatements {
				return nil, p.errorf(st.Line, st.Col, "more than %d statements", MaxStatements)
			}
			sc.Stmts = append(sc.Stmts, st)
		}
	}
	if err := checkNames(name, p.lines, sc.Stmts); err != nil {
		return nil, err
	}
	return sc, nil
}

type parser struct {
	file  string
	lines []string
	next  int // index of the next line to read
}

func (p *parser) errorf(line, col int, format string, args ...any) error {
	return &ScriptError{File: p.file, Line: line, Col: col, Text: p.lines[line-1], Msg: fmt.Sprintf(format, args...)}
}

// stmt reads the next statement, or nil for a blank or comment line.
func (p *parser) stmt() (*Stmt, error) {
	ln := p.next + 1
	line := p.lines[p.next]
	p.next++
	i := skipSpace(line, 0)
	if i == len(line) || line[i] == '#' {
		return nil, nil
	}
	st := &Stmt{Line: ln, Col: i + 1}
	word, j := ident(line, i, false)
	if word == "" {
		return nil, p.errorf(ln, i+1, "expected a statement: let NAME = EXPR, NAME: EXPR or rule KIND: EXPR")
	}
	k := skipSpace(line, j)
	switch {
	case (word == "let" || word == "rule") && k > j && k < len(line) && isIdentByte(line[k]):
		name, e := ident(line, k, word == "rule")
		if name == "" || name[0] >= '0' && name[0] <= '9' {
			return nil, p.errorf(ln, k+1, "expected a name after %s", word)
		}
		st.Name = name
		sep := byte('=')
		st.Kind = Let
		if word == "rule" {
			sep, st.Kind = ':', Rule
		}
		e = skipSpace(line, e)
		if e >= len(line) || line[e] != sep || sep == '=' && e+1 < len(line) && line[e+1] == '=' {
			return nil, p.errorf(ln, e+1, "expected '%c' after %s %s", sep, word, name)
		}
		k = e + 1
	default:
		name, e := ident(line, i, true)
		e = skipSpace(line, e)
		if e >= len(line) || line[e] != ':' {
			return nil, p.errorf(ln, e+1, "expected ':' after query name %s (or let NAME = EXPR, rule KIND: EXPR)", name)
		}
		st.Kind, st.Name = Query, name
		k = e + 1
	}
	return st, p.expr(st, ln, k)
}

// expr reads the expression that starts at byte k of line ln and continues
// while something is open.
func (p *parser) expr(st *Stmt, ln, k int) error {
	var b strings.Builder
	var state scanState
	var hashes [][2]int
	text := p.lines[ln-1][k:]
	for {
		at := b.Len()
		b.WriteString(text)
		var hs [][2]int
		state.base = at
		state, hs = scan(text, true, state)
		for _, h := range hs {
			hashes = append(hashes, [2]int{at + h[0], at + h[1]})
		}
		if !state.open() {
			break
		}
		if p.next == len(p.lines) {
			// Point at what is left open: the innermost bracket, or the
			// string.
			what, off := "a triple-quoted string", state.quoteAt
			if state.quote == 0 {
				off = state.opens[len(state.opens)-1]
				what = fmt.Sprintf("'%c'", b.String()[off])
			}
			line, col := textPos(b.String(), ln, k, off)
			return p.errorf(line, col, "%s left open at the end of the script", what)
		}
		b.WriteByte('\n')
		text = p.lines[p.next]
		p.next++
	}
	padded := []byte(b.String())
	for _, h := range hashes {
		for x := h[0]; x < h[1]; x++ {
			padded[x] = ' '
		}
	}
	body := string(padded)
	lead := len(body) - len(strings.TrimLeft(body, " \t\n"))
	st.Expr = strings.TrimSpace(body)
	if st.Expr == "" {
		return p.errorf(ln, k+1, "expected an expression after '%s'", p.lines[ln-1][st.Col-1:k])
	}
	st.ExprLine, st.ExprCol = textPos(body, ln, k, lead)
	return nil
}

// textPos returns the line and byte column (1-based) of offset off in text,
// lines of the script joined from byte k of line ln.
func textPos(text string, ln, k, off int) (line, col int) {
	line = ln + strings.Count(text[:off], "\n")
	if nl := strings.LastIndexByte(text[:off], '\n'); nl >= 0 {
		return line, off - nl
	}
	return line, k + off + 1
}

// checkNames rejects a let or query name used twice.
func checkNames(file string, lines []string, stmts []*Stmt) error {
	seen := map[string]*Stmt{}
	for _, st := range stmts {
		if st.Kind == Rule {
			continue
		}
		key := st.Kind.String() + " " + st.Name
		if prev := seen[key]; prev != nil {
			return &ScriptError{File: file, Line: st.Line, Col: st.Col, Text: lines[st.Line-1],
				Msg: fmt.Sprintf("%s %s is already defined at line %d", st.Kind, st.Name, prev.Line)}
		}
		seen[key] = st
	}
	return nil
}

// ident returns the identifier at line[i:] and the offset after it. With
// dash, '-' and '.' may follow the first character (query names, kinds).
func ident(line string, i int, dash bool) (string, int) {
	j := i
	for j < len(line) && (isIdentByte(line[j]) || dash && j > i && (line[j] == '-' || line[j] == '.')) {
		j++
	}
	return line[i:j], j
}

func skipSpace(line string, i int) int {
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	return i
}

// ScriptError is a malformed script: where, and what was expected.
type ScriptError struct {
	File      string
	Line, Col int    // 1-based; Col counts bytes
	Text      string // the line, for the caret; may be empty
	Msg       string
}

func (e *ScriptError) Error() string {
	s := fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	if e.Text != "" {
		s += "\n" + Caret(e.Text, e.Col)
	}
	return s
}

// Caret renders a source line and a caret under byte column col (1-based),
// in cel-go's style:
//
//	| tasks.map(t, t.pdi)
//	| ...............^
func Caret(line string, col int) string {
	line = strings.ReplaceAll(line, "\t", " ")
	if col < 1 {
		col = 1
	}
	if col > len(line)+1 {
		col = len(line) + 1
	}
	dots := utf8.RuneCountInString(line[:col-1])
	return " | " + line + "\n | " + strings.Repeat(".", dots) + "^"
}
