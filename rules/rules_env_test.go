package rules

import (
	"testing"

	"github.com/critq/critq/internal/celprobe"
	"github.com/critq/critq/internal/testcpu"
	"github.com/critq/critq/query"
)

// ruleProbes returns one use of every function and macro of the query
// environment that does not read a dump (critq.mem), for the tests that
// check that rules accept them; a macro celprobe does not know is a test
// failure.
func ruleProbes(t *testing.T) []celprobe.Probe {
	t.Helper()
	env, err := query.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	base, err := query.BaseEnv()
	if err != nil {
		t.Fatal(err)
	}
	// The functions a query has and the base lacks read a dump's memory.
	probes := celprobe.Calls(env, func(name string) bool { return base.Functions()[name] == nil })
	for _, m := range celprobe.Macros(env) {
		if m.Expr == "" {
			t.Errorf("macro %s: no use of it in celprobe: add one", m.Name)
			continue
		}
		probes = append(probes, m)
	}
	var out []celprobe.Probe
	for _, p := range probes {
		if _, err := query.Compile(p.Expr); err == nil {
			out = append(out, p)
		}
	}
	t.Logf("%d of %d probes compile as queries", len(out), len(probes))
	if len(out) < 100 {
		t.Fatalf("only %d of %d probes compile as queries", len(out), len(probes))
	}
	return out
}

// TestRulesHaveQueryFunctions checks that every function and macro of the
// query environment compiles in a rule.
func TestRulesHaveQueryFunctions(t *testing.T) {
	for _, p := range ruleProbes(t) {
		src := RuleSource{Where: p.Name, Kind: "files", Expr: "[" + p.Expr + "].size() >= 0 ? e : e"}
		if _, err := CompileRules([]RuleSource{src}, RuleOptions{}); err != nil {
			t.Errorf("%s: %s compiles in a query, not in a rule: %v", p.Name, p.Expr, err)
		}
	}
	if _, err := CompileRules([]RuleSource{{Where: "rule 1", Kind: "files", Expr: "[1, 2].distinct().size() == 2 ? e : e"}}, RuleOptions{}); err != nil {
		t.Errorf("distinct() in a rule: %v", err)
	}
}

// BenchmarkCompileRuleWarm compiles a typical rule on the warm
// environment (query.BaseEnv built once, extended per rule).
func BenchmarkCompileRuleWarm(b *testing.B) {
	if _, err := query.BaseEnv(); err != nil {
		b.Fatal(err)
	}
	for _, src := range []string{
		`files: e.type == REG && e.reg.name == "/usr/bin/sleep" ? e.with({"reg.name": "/opt/bin/sleep"}) : e`,
		`mm: e.with({"vmas": e.vmas.filter(v, v.prot & PROT_EXEC == 0)})`,
	} {
		rs, err := ParseRule("rule 1", src)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(src, func(b *testing.B) {
			b.ReportAllocs()
			cpu := testcpu.Used()
			for b.Loop() {
				if _, err := CompileRules([]RuleSource{rs}, RuleOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((testcpu.Used()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
