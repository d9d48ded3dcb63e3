package query

import (
	"context"
	"errors"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types/ref"
)

func TestBindings(t *testing.T) {
	d, err := Open("../testdata/dumps/sleep-plain")
	if err != nil {
		t.Fatal(err)
	}
	b := NewBindings()
	steps := []struct {
		let, src string // a binding, or an expression when let is ""
		want     string // its value in compact JSON, or a piece of its error
	}{
		{"exec", "vmas.filter(v, v.prot & PROT_EXEC)", ""},
		{"n", "exec.size()", ""},
		{"", "n == vmas.filter(v, v.prot & PROT_EXEC).size()", "true"},
		{"", "n > 0 && exec[0].prot & PROT_EXEC != 0", "true"},
		{"exec", "42", "let exec: n uses it and no longer compiles"},
		{"exec", "vmas.filter(v, v.prot & PROT_WRITE)", ""},
		{"", "n == vmas.filter(v, v.prot & PROT_WRITE).size()", "true"},
		{"exec", "n + 1", "a binding cannot use itself"},
		{"vmas", "1", "vmas is a name of the environment"},
		{"PROT_EXEC", "1", "constant"},
		{"in", "1", "reserved word"},
		{"x-y", "1", "not an identifier"},
		{"bad", "nosuch + 1", "undeclared reference to 'nosuch'"},
	}
	memo := map[string]ref.Val{}
	for _, s := range steps {
		var got string
		if s.let != "" {
			err = b.Let(s.let, s.src)
			memo = map[string]ref.Val{}
		} else {
			var q *Query
			if q, err = b.Compile(s.src); err == nil {
				var v ref.Val
				if v, err = b.Eval(context.Background(), q, d, memo); err == nil {
					var w strings.Builder
					err = Output{Format: FormatJSON}.Write(&w, "", v)
					got = strings.TrimSpace(w.String())
				}
			}
		}
		switch {
		case err != nil && (s.want == "" || !strings.Contains(err.Error(), s.want)):
			t.Errorf("%s %q: %v, want %q", s.let, s.src, err, s.want)
		case err == nil && s.let == "" && got != s.want:
			t.Errorf("%q = %s, want %s", s.src, got, s.want)
		case err == nil && s.let != "" && s.want != "":
			t.Errorf("let %s = %q succeeded, want an error with %q", s.let, s.src, s.want)
		}
	}
	if err := b.Unlet("exec"); err == nil || !strings.Contains(err.Error(), "used by n") {
		t.Errorf("Unlet(exec) = %v, want used by n", err)
	}
	if err := b.Unlet("n"); err != nil {
		t.Errorf("Unlet(n) = %v", err)
	}
	if err := b.Unlet("exec"); err != nil {
		t.Errorf("Unlet(exec) after n = %v", err)
	}
	var be *BindingError
	if err := b.Let("x", "1 +"); !errors.As(err, &be) {
		t.Errorf("Let(x, 1 +) = %v, want a *BindingError", err)
	}
	if n := len(b.List()); n != 0 {
		t.Errorf("%d bindings left, want 0", n)
	}
}

// TestReferences checks that the variables of comprehensions are not taken
// for the bindings of the same name.
func TestReferences(t *testing.T) {
	b := NewBindings()
	for _, l := range []struct{ name, src string }{{"v", "vmas[0]"}, {"t", "tasks[0]"}} {
		if err := b.Let(l.name, l.src); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		src  string
		want string
	}{
		{"vmas.filter(v, v.prot > 0)", "vmas"},
		{"v.start", "v"},
		{"vmas.filter(v, v.start == 0).size() + size(v.path)", "v vmas"},
		{"vmas.exists(x, x.start == v.start)", "v vmas"},
		{"tasks.map(t, t.pid).exists(p, p == t.pid)", "t tasks"},
		{"tasks.map(t, vmas.filter(v, v.pid == t.pid).size())", "tasks vmas"},
	}
	for _, tc := range cases {
		q, err := b.Compile(tc.src)
		if err != nil {
			t.Errorf("Compile(%q): %v", tc.src, err)
			continue
		}
		if got := strings.Join(q.References(), " "); got != tc.want {
			t.Errorf("Compile(%q).References() = %q, want %q", tc.src, got, tc.want)
		}
	}
	if err := b.Let("n", "vmas.filter(v, v.prot > 0).size()"); err != nil {
		t.Fatal(err)
	}
	if uses := b.Lookup("n").Uses; len(uses) != 0 {
		t.Errorf("let n = vmas.filter(v, ...) uses %q, want nothing", uses)
	}
	// v is not used by n, so it can be removed and redefined freely.
	if err := b.Unlet("v"); err != nil {
		t.Errorf("Unlet(v) = %v", err)
	}
}
