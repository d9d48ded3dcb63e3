package repl

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/critq/critq/internal/celprobe"
	"github.com/critq/critq/query"
	"github.com/critq/critq/rules"
)

// TestTransformHasQueryFunctions checks that every function and macro that
// compiles in a query compiles in :transform too.
func TestTransformHasQueryFunctions(t *testing.T) {
	env, err := query.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	mem := []string{"mem", "cstring", "cmdline", "environ"} // read a dump's memory: queries only
	probes := append(celprobe.Calls(env, func(n string) bool { return slices.Contains(mem, n) }), celprobe.Macros(env)...)
	e := mustEvaluator(t, Options{}, sleepPlain)
	n := 0
	for _, p := range probes {
		if p.Expr == "" {
			t.Errorf("macro %s: no use of it in celprobe: add one", p.Name)
			continue
		}
		if _, err := query.Compile(p.Expr); err != nil {
			continue
		}
		n++
		// A rule of a kind with one entry keeps the preview short.
		rule := "inventory: [" + p.Expr + "].size() >= 0 ? e : e"
		// Only a compile error counts: a probe's arguments may fail when
		// evaluated (int('a')).
		var ce *query.CompileError
		var re *rules.RuleError
		if _, _, err := e.Process(context.Background(), Transform{Rule: rule}); errors.As(err, &ce) || errors.As(err, &re) {
			t.Errorf("%s: %s compiles in a query, not in :transform: %v", p.Name, p.Expr, err)
		}
	}
	if n < 100 {
		t.Errorf("only %d probes compile as queries", n)
	}
}

// BenchmarkReplLine runs one REPL line end to end: parse, compile on the
// warm environment, evaluate on sleep-plain, format.
func BenchmarkReplLine(b *testing.B) {
	e := mustEvaluator(b, Options{Format: query.FormatJSON}, sleepPlain)
	line := `tasks.filter(t, t.pid > 0).map(t, {"pid": t.pid, "comm": t.comm})`
	b.ReportAllocs()
	for b.Loop() {
		cmd, err := Parse(line)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := e.Process(context.Background(), cmd); err != nil {
			b.Fatal(err)
		}
	}
}
