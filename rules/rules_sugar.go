package rules

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/critq/critq/query"
)

// Sugar is a rule written as flags, as critq transform's --kind, --where,
// --set and --drop write it: for the entries of Kind for which Where holds
// (all of them when Where is ""), each Set, PATH=EXPR, sets the field at
// PATH to the value of EXPR (e.with({"PATH": EXPR, ...})), or Drop deletes
// the entry. One of Sets and Drop is given.
type Sugar struct {
	Kind  string
	Where string
	Sets  []string
	Drop  bool
}

// Source returns the rule, named where. Errors of compiling it point into
// the flag the user wrote: a fault in the predicate reads
// "ERROR: --where:1:COL" under the predicate, one in a PATH or an EXPR
// "ERROR: --set:1:COL" under that PATH=EXPR; never into the expression
// that the flags make.
func (s Sugar) Source(where string) (RuleSource, error) {
	if s.Drop == (len(s.Sets) > 0) {
		return RuleSource{}, errors.New("--kind needs --set PATH=EXPR or --drop (not both)")
	}
	var b strings.Builder
	var parts []sugarPart
	// put writes piece, which stands for text[textAt:] of flag.
	put := func(flag, text string, textAt int, piece string, quoted bool) {
		parts = append(parts, sugarPart{flag: flag, text: text, at: b.Len(), n: len(piece), textAt: textAt, quoted: quoted})
		b.WriteString(piece)
	}
	if s.Where != "" {
		b.WriteString("(")
		put("--where", s.Where, 0, s.Where, false)
		// A fault of the condition itself (a predicate that is no bool)
		// is placed at the ?: show it at the predicate.
		put("--where", s.Where, 0, ") ? ", true)
	}
	if s.Drop {
		b.WriteString("drop()")
	} else {
		b.WriteString("e.with({")
		for i, set := range s.Sets {
			path, expr, ok := strings.Cut(set, "=")
			if !ok || strings.TrimSpace(path) == "" {
				return RuleSource{}, fmt.Errorf("--set %q: want PATH=EXPR", set)
			}
			if i > 0 {
				b.WriteString(", ")
			}
			trimmed := strings.TrimSpace(path)
			put("--set", set, strings.Index(set, trimmed), strconv.Quote(trimmed), true)
			b.WriteString(": (")
			put("--set", set, len(path)+1, expr, false)
			b.WriteString(")")
		}
		b.WriteString("})")
	}
	if s.Where != "" {
		b.WriteString(" : e")
	}
	return RuleSource{Where: where, Kind: s.Kind, Expr: b.String(), parts: parts}, nil
}

// sugarPart is a piece of the expression that Sugar makes that stands for
// text the user wrote: n bytes at offset at of the expression stand for
// the flag's text from textAt on, byte for byte unless quoted (a PATH
// written as a string literal).
type sugarPart struct {
	flag   string
	text   string
	at, n  int
	textAt int
	quoted bool
}

// locateSugar places each *query.CompileError of err, an error of
// compiling expr, in the flag that its offset stands for.
func locateSugar(expr string, parts []sugarPart, err error) error {
	var ce *query.CompileError
	if !errors.As(err, &ce) {
		return err
	}
	out := placeSugar(expr, parts, ce)
	for _, m := range ce.More {
		out.More = append(out.More, placeSugar(expr, parts, m))
	}
	return out
}

func placeSugar(expr string, parts []sugarPart, ce *query.CompileError) *query.CompileError {
	out := &query.CompileError{File: "--kind", Msg: ce.Msg}
	if ce.Line <= 0 {
		return out
	}
	off := byteOffset(expr, ce.Line, ce.Col)
	// The first part that holds off, or ends at it (a fault at the end of
	// what the user wrote, such as a missing operand).
	i := sort.Search(len(parts), func(i int) bool { return parts[i].at+parts[i].n >= off })
	if i == len(parts) || off < parts[i].at {
		return out // in text the flags made: no caret
	}
	p := parts[i]
	toff := min(p.textAt+off-p.at, len(p.text))
	if p.quoted {
		toff = p.textAt
	}
	out.File, out.Src = p.flag, p.text
	out.Line, out.Col = lineCol(p.text, toff)
	return out
}

// byteOffset returns the byte offset of the 1-based line and column (in
// code points) of s.
func byteOffset(s string, line, col int) int {
	off := 0
	for ; line > 1; line-- {
		i := strings.IndexByte(s[off:], '\n')
		if i < 0 {
			return len(s)
		}
		off += i + 1
	}
	for ; col > 1 && off < len(s) && s[off] != '\n'; col-- {
		_, n := utf8.DecodeRuneInString(s[off:])
		off += n
	}
	return off
}

// lineCol returns the 1-based line and column in code points of byte
// offset off of s.
func lineCol(s string, off int) (int, int) {
	start := strings.LastIndexByte(s[:off], '\n') + 1
	return 1 + strings.Count(s[:off], "\n"), 1 + utf8.RuneCountInString(s[start:off])
}
