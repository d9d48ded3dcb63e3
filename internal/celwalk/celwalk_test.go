package celwalk

import (
	"strings"
	"testing"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/ext"
)

// TestScopes checks which identifiers the walker takes for comprehension
// variables: those of the macros' loops, never a name of the same spelling
// outside them (the range, the initial value) or in an enclosing scope.
func TestScopes(t *testing.T) {
	env, err := cel.NewEnv(ext.TwoVarComprehensions())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		src string
		// each identifier in visiting order (the macros' expansions
		// included: @result is their accumulator), * when bound
		want string
	}{
		{"x + y", "x y"},
		{"[x].map(x, x + y)", "x @result* x* y @result*"},
		{"x.exists(x, x > 0) || x", "x @result* @result* x* @result* x"},
		{"[1].all(v, [v].exists(w, w == v && u))", "@result* @result* v* @result* @result* w* v* u @result* @result*"},
		{"{'a': 1}.transformList(k, v, k + v)", "@result* k* v* @result*"},
		{"m.f.filter(e, e.g).size()", "m e* @result* e* @result* @result*"},
	} {
		a, iss := env.Parse(tt.src)
		if iss.Err() != nil {
			t.Fatalf("%s: %v", tt.src, iss.Err())
		}
		var got []string
		Walk(a.NativeRep().Expr(), Scope{}, func(e celast.Expr, sc Scope) bool {
			if e.Kind() == celast.IdentKind {
				n := e.AsIdent()
				if sc.Bound(n) {
					n += "*"
				}
				got = append(got, n)
			}
			return true
		})
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("%s: identifiers %q, wanted %q", tt.src, g, tt.want)
		}
	}
}

// TestResultScope checks that a comprehension's result sees its
// accumulator only, not its iteration variable.
func TestResultScope(t *testing.T) {
	fac := celast.NewExprFactory()
	comp := fac.NewComprehension(1, fac.NewIdent(2, "r"), "i", "acc", fac.NewIdent(3, "init"),
		fac.NewIdent(4, "i"), fac.NewIdent(5, "acc"), fac.NewCall(6, "_+_", fac.NewIdent(7, "i"), fac.NewIdent(8, "acc")))
	for _, c := range Children(comp, Scope{}) {
		if c.Role == Result && (c.Scope.Bound("i") || !c.Scope.Bound("acc")) {
			t.Errorf("result scope binds i %v, acc %v; wanted acc only", c.Scope.Bound("i"), c.Scope.Bound("acc"))
		}
		if (c.Role == IterRange || c.Role == AccuInit) && (c.Scope.Bound("i") || c.Scope.Bound("acc")) {
			t.Errorf("role %d binds the loop's names", c.Role)
		}
		if (c.Role == LoopCondition || c.Role == LoopStep) && !(c.Scope.Bound("i") && c.Scope.Bound("acc")) {
			t.Errorf("role %d does not bind the loop's names", c.Role)
		}
	}
}
