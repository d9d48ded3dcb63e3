package rules

import (
	"errors"
	"fmt"

	"github.com/critq/critq/batch"
	"github.com/critq/critq/query"
)

// ParseRuleFile reads the rules of a rules file (critq transform -f): a
// batch script (see [batch.Parse]: # comments, expressions continued while
// a bracket or a triple-quoted string is open) whose statements are rules,
// `rule KIND: EXPR`. name names the file in messages and in each rule's
// Where ("rules.critq:3"). A malformed file is a *batch.ScriptError, as is a
// binding or a named query, which only critq -f evaluates; the rules'
// compile errors read FILE:LINE:COL too (see [ScriptRules]).
func ParseRuleFile(name, text string) ([]RuleSource, error) {
	sc, err := batch.Parse(name, []byte(text))
	if err != nil {
		return nil, err
	}
	for _, st := range sc.Stmts {
		switch st.Kind {
		case batch.Let:
			return nil, sc.ErrorAt(st.Line, st.Col, "a rules file holds only rules: bindings are for the queries of critq -f")
		case batch.Query:
			return nil, sc.ErrorAt(st.Line, st.Col, fmt.Sprintf("a rules file holds only rules: %s is a named query (critq -f runs it); a rule is rule KIND: EXPR", st.Name))
		}
	}
	rs := ScriptRules(sc)
	if len(rs) == 0 {
		return nil, &batch.ScriptError{File: name, Line: 1, Col: 1, Msg: "no rules (rule KIND: EXPR)"}
	}
	return rs, nil
}

// ScriptRules returns the rules of a script, in order, each named
// "FILE:LINE". [CompileRules] compiles them where they stand in the script,
// so that their errors read FILE:LINE:COL with the script's line and a
// caret.
func ScriptRules(sc *batch.Script) []RuleSource {
	var out []RuleSource
	for _, st := range sc.Rules() {
		out = append(out, RuleSource{Where: fmt.Sprintf("%s:%d", sc.Name, st.Line), Kind: st.Name, Expr: st.Expr, script: sc, stmt: st})
	}
	return out
}

// source returns the text the rule compiles: its expression, laid out as
// in its script when it comes from one.
func (s RuleSource) source() string {
	if s.stmt != nil {
		return s.stmt.Source()
	}
	return s.Expr
}

// locate places an error of compiling the rule in its script or its
// flags, if any.
func (s RuleSource) locate(err error) error {
	if s.parts != nil {
		return locateSugar(s.Expr, s.parts, err)
	}
	if s.stmt == nil {
		return err
	}
	return LocateError(s.script, s.stmt, err)
}

// LocateError places err, an error of compiling statement st of script sc
// from st.Source(), in the script: each *CompileError in it (and those of
// its More) becomes a *batch.ScriptError at the script's line and column,
// which shows the script's line with a caret; a *BindingError keeps its
// words. Any other error is placed at the statement.
func LocateError(sc *batch.Script, st *batch.Stmt, err error) error {
	var ce *query.CompileError
	if !errors.As(err, &ce) || ce.Line <= 0 {
		return sc.ErrorAt(st.Line, st.Col, err.Error())
	}
	errs := []error{sc.ErrorAt(ce.Line, ce.Col, ce.Msg)}
	for _, m := range ce.More {
		errs = append(errs, sc.ErrorAt(m.Line, m.Col, m.Msg))
	}
	placed := errors.Join(errs...)
	var be *query.BindingError
	if errors.As(err, &be) && be.User != "" {
		return fmt.Errorf("let %s: %s uses it and no longer compiles:\n%w", be.Name, be.User, placed)
	}
	return placed
}

// located reports whether err is placed in a script already.
func located(err error) bool {
	var se *batch.ScriptError
	return errors.As(err, &se)
}
