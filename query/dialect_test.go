package query

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/proto/images"
)

var updateDialect = flag.Bool("update-dialect", false, "rewrite the golden files of the CEL dialect tests")

// mustDialectEnv returns an environment with the dialect and a few
// variables: i (int), u (uint), d (double), s (string), vmas (a list of
// vma_entry) and mm (an mm_entry).
func mustDialectEnv(t testing.TB) *cel.Env {
	t.Helper()
	opts := []cel.EnvOption{
		cel.Types(&images.MmEntry{}),
		cel.Variable("i", cel.IntType),
		cel.Variable("u", cel.UintType),
		cel.Variable("d", cel.DoubleType),
		cel.Variable("s", cel.StringType),
		cel.Variable("vmas", cel.ListType(cel.ObjectType("critq.images.vma_entry"))),
		cel.Variable("mm", cel.ObjectType("critq.images.mm_entry")),
	}
	env, err := cel.NewEnv(append(opts, dialectOptions()...)...)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func testVars() map[string]any {
	return map[string]any{
		"i": int64(1), "u": uint64(1), "d": 1.0, "s": "x",
		"vmas": []*images.VmaEntry{
			{Prot: proto.Uint32(5), Status: proto.Uint32(0x41)},
			{Prot: proto.Uint32(3), Status: proto.Uint32(0x201)},
			{Prot: proto.Uint32(0), Status: proto.Uint32(0x10000)},
		},
		"mm": &images.MmEntry{ExeFileId: proto.Uint32(1)},
	}
}

// evalExpr compiles and evaluates src.
func evalExpr(env *cel.Env, src string, vars map[string]any) (ref.Val, error) {
	ast, err := compileExpr(env, src)
	if err != nil {
		return nil, err
	}
	prg, err := env.Program(ast)
	if err != nil {
		return nil, err
	}
	act, err := cel.FunctionVars(vars, map[string]cel.LateBoundFunction{fnIP: ipBinding(binary.LittleEndian)})
	if err != nil {
		return nil, err
	}
	out, _, err := prg.Eval(act)
	return out, err
}

// native converts a CEL value to the Go value the tests compare with.
func native(v ref.Val) any {
	if l, ok := v.(interface{ Size() ref.Val }); ok && v.Type() == types.ListType {
		n := int(l.Size().(types.Int))
		out := make([]any, n)
		for i := range n {
			out[i] = native(v.(interface{ Get(ref.Val) ref.Val }).Get(types.Int(i)))
		}
		return out
	}
	return v.Value()
}

type evalCase struct {
	src  string
	want any    // int64, uint64, float64, bool, string, []any
	err  string // part of the evaluation error, when one is expected
}

func runEvalCases(t *testing.T, cases []evalCase) {
	t.Helper()
	env := mustDialectEnv(t)
	for _, tt := range cases {
		out, err := evalExpr(env, tt.src, testVars())
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("eval(%q) got %v, %v, wanted error %q", tt.src, out, err, tt.err)
			}
		case err != nil:
			t.Errorf("eval(%q) got error %v, wanted %v", tt.src, err, tt.want)
		case !reflect.DeepEqual(native(out), tt.want):
			t.Errorf("eval(%q) got %#v (%s), wanted %#v", tt.src, native(out), out.Type(), tt.want)
		}
	}
}

func TestBitwiseEval(t *testing.T) {
	runEvalCases(t, []evalCase{
		{src: "1 & 3", want: int64(1)},
		{src: "6 | 3", want: int64(7)},
		{src: "6 ^ 3", want: int64(5)},
		{src: "1u & 3u", want: uint64(1)},
		{src: "u | 2", want: uint64(3)},
		{src: "2 | u", want: uint64(3)},
		{src: "i | 2", want: int64(3)},
		{src: "-1 & 3", want: int64(3)},
		{src: "-1 ^ 0", want: int64(-1)},
		{src: "-1 & 3u", err: "negative int -1 & uint"},
		{src: "3u | -2", err: "negative int -2 | uint"},
		{src: "~0", want: int64(-1)},
		{src: "~0u", want: uint64(18446744073709551615)},
		{src: "~5 & 7", want: int64(2)},
		{src: "~u & 3u", want: uint64(2)},
		{src: "1 << 3", want: int64(8)},
		{src: "1 << 3u", want: int64(8)},
		{src: "1u << 3", want: uint64(8)},
		{src: "1 << 63", want: int64(-9223372036854775808)},
		{src: "1 << 64", want: int64(0)},
		{src: "1u << 64u", want: uint64(0)},
		{src: "1u << 1000", want: uint64(0)},
		{src: "-8 >> 1", want: int64(-4)},
		{src: "-8 >> 64", want: int64(-1)},
		{src: "8 >> 100", want: int64(0)},
		{src: "1 << -1", err: "negative shift count -1"},
		{src: "1u >> -1", err: "negative shift count -1"},
		// Precedence: Go's, not C's.
		{src: "5 & 4 != 0", want: true},
		{src: "1 | 2 == 3", want: true},
		{src: "2 + 1 << 1", want: int64(4)},
		{src: "(2 + 1) << 1", want: int64(6)},
		{src: "1 + 6 & 3", want: int64(3)},
		{src: "6 & 3 * 2", want: int64(4)},
		{src: "1 | 2 ^ 3", want: int64(0)},
		{src: "PROT_READ | PROT_EXEC", want: uint64(5)},
		{src: "vmas[0].prot & ~PROT_WRITE", want: uint64(5)},
		{src: "vmas.map(v, v.prot & PROT_WRITE)", want: []any{uint64(0), uint64(2), uint64(0)}},
	})
}

func TestMixedNumbers(t *testing.T) {
	runEvalCases(t, []evalCase{
		{src: "u == 1", want: true},
		{src: "1 == u", want: true},
		{src: "u != 1", want: false},
		{src: "u != 2", want: true},
		{src: "u == 1.0", want: true},
		{src: "d == 1u", want: true},
		{src: "i == u", want: true},
		{src: "i == 1u", want: true},
		{src: "-1 == 18446744073709551615u", want: false},
		{src: "u in [1, 2]", want: true},
		{src: "3 in [1u, 2u]", want: false},
		{src: "1 in [1.0]", want: true},
		{src: "u < 2 && u > 0 && u <= 1.5", want: true},
		{src: "vmas[1].prot == 3", want: true},
		{src: "vmas.exists(v, v.prot == 5)", want: true},
		{src: "mm.exe_file_id == 1 && mm.exe_file_id != 2", want: true},
		// Same-type and non-numeric equality are CEL's own.
		{src: "s == 'x'", want: true},
		{src: "[1u] == [1u]", want: true},
		{src: "1 == 1", want: true},
	})
}

func TestTruthyPredicates(t *testing.T) {
	runEvalCases(t, []evalCase{
		{src: "[0, 1, 2].filter(x, x)", want: []any{int64(1), int64(2)}},
		{src: "[0u, 4u].exists(x, x & 4)", want: true},
		{src: "[0u, 3u].exists(x, x & 4)", want: false},
		{src: "[0.0, 0.5].filter(x, x)", want: []any{0.5}},
		{src: "[1, 0].all(x, x)", want: false},
		{src: "[1, 2].all(x, x)", want: true},
		{src: "[1, 0].exists_one(x, x)", want: true},
		{src: "[1, 2, 3].map(x, x & 1, x * 10)", want: []any{int64(10), int64(30)}},
		{src: "[null].exists(x, x)", want: false},
		{src: "[true, false].filter(x, x)", want: []any{true}},
		{src: "vmas.filter(v, v.prot & PROT_EXEC).size()", want: int64(1)},
		{src: "vmas.filter(v, v.status & VMA_AREA_GUARD).size()", want: int64(1)},
		{src: "vmas.exists(v, v.prot)", want: true},
		{src: "[1, 'a'].exists(x, x == 'a')", want: true},
		// Inside a predicate, the logic takes numbers too.
		{src: "vmas.filter(v, v.prot & PROT_READ && v.prot & PROT_EXEC).size()", want: int64(1)},
		{src: "vmas.filter(v, v.prot & PROT_EXEC || v.status & VMA_AREA_GUARD).size()", want: int64(2)},
		{src: "[0, 1, 2].filter(x, !x)", want: []any{int64(0)}},
		{src: "[0, 1, 2].filter(x, x & 1 ? 0 : x)", want: []any{int64(2)}},
		{src: "[0u, 1u].exists(x, x || false)", want: true},
		{src: "[0, 1].all(x, x == 0 || x && true)", want: true},
	})
}

// TestTruthyUnwrapped checks that a bool predicate costs nothing: the
// checked AST has no @truthy call left.
func TestTruthyUnwrapped(t *testing.T) {
	env := mustDialectEnv(t)
	for src, want := range map[string]bool{
		"vmas.filter(v, v.prot == 1)":   false,
		"vmas.filter(v, v.prot & 1)":    true,
		"vmas.exists(v, has(v.madv))":   false,
		"[1, 'a'].exists(x, dyn(x))":    true,
		"vmas.all(v, v.prot != 0u)":     false,
		"vmas.map(v, v.prot & 1, v.fd)": true,
	} {
		a, err := compileExpr(env, src)
		if err != nil {
			t.Fatalf("compileExpr(%q): %v", src, err)
		}
		got := len(dialectSitesNamed(a, fnTruthy)) > 0
		if got != want {
			t.Errorf("compileExpr(%q): @truthy left: %v, wanted %v", src, got, want)
		}
	}
}

func dialectSitesNamed(a *cel.Ast, fn string) []string {
	var out []string
	for _, e := range dialectSites(a.NativeRep()) {
		if e.AsCall().FunctionName() == fn {
			out = append(out, fn)
		}
	}
	return out
}

// TestTruthyRealVMAs evaluates predicates over the VMAs of a real dump and
// compares them with the same selections made in Go.
func TestTruthyRealVMAs(t *testing.T) {
	d, err := dump.Open("../testdata/dumps/sleep-plain")
	if err != nil {
		t.Fatal(err)
	}
	files := d.Kind("MM")
	if len(files) == 0 {
		t.Fatal("no mm image")
	}
	m, err := files[0].First()
	if err != nil {
		t.Fatal(err)
	}
	vmas := m.(*images.MmEntry).GetVmas()
	count := func(f func(v *images.VmaEntry) bool) int64 {
		var n int64
		for _, v := range vmas {
			if f(v) {
				n++
			}
		}
		return n
	}
	env := mustDialectEnv(t)
	tests := []struct {
		src  string
		want int64
	}{
		{"vmas.filter(v, v.prot & 4).size()", count(func(v *images.VmaEntry) bool { return v.GetProt()&4 != 0 })},
		{"vmas.filter(v, v.prot & PROT_EXEC != 0).size()", count(func(v *images.VmaEntry) bool { return v.GetProt()&4 != 0 })},
		{"vmas.filter(v, v.prot & (PROT_READ | PROT_WRITE) == 3).size()", count(func(v *images.VmaEntry) bool { return v.GetProt()&3 == 3 })},
		{"vmas.filter(v, v.status & VMA_AREA_REGULAR).size()", count(func(v *images.VmaEntry) bool { return v.GetStatus()&1 != 0 })},
		{"vmas.filter(v, v.flags & MAP_ANON).size()", count(func(v *images.VmaEntry) bool { return v.GetFlags()&0x20 != 0 })},
		{"vmas.filter(v, v.status & (VMA_AREA_VDSO | VMA_AREA_VVAR)).size()", count(func(v *images.VmaEntry) bool { return v.GetStatus()&(1<<3|1<<12) != 0 })},
		{"vmas.filter(v, v.end - v.start > 4096).size()", count(func(v *images.VmaEntry) bool { return v.GetEnd()-v.GetStart() > 4096 })},
		{"vmas.filter(v, v.fd == -1).size()", count(func(v *images.VmaEntry) bool { return v.GetFd() == -1 })},
		{"vmas.filter(v, v.start >> 12 & 1).size()", count(func(v *images.VmaEntry) bool { return v.GetStart()>>12&1 != 0 })},
	}
	vars := map[string]any{"vmas": vmas}
	for _, tt := range tests {
		out, err := evalExpr(env, tt.src, vars)
		if err != nil {
			t.Errorf("eval(%q): %v", tt.src, err)
			continue
		}
		if got := out.Value(); got != tt.want {
			t.Errorf("eval(%q) got %v, wanted %v", tt.src, got, tt.want)
		}
	}
	if n := count(func(v *images.VmaEntry) bool { return v.GetProt()&4 != 0 }); n == 0 || n == int64(len(vmas)) {
		t.Errorf("sleep-plain has %d executable VMAs of %d: the test selects nothing", n, len(vmas))
	}
}

// compileErrorCases are rendered into testdata/dialect/errors.golden.
var compileErrorCases = []string{
	"vmass.size()",
	"vmas.filter(v, v.prott & 4)",
	"vmas.filter(v, v.prot & 4 && v.sttus == 1)",
	"mm.vmas.exists(v, v.flgs & MAP_ANON)",
	"prot_read | 1",
	"hexx(u)",
	"u & s",
	"s | 1",
	"~s",
	"u << 'a'",
	"vmas.filter(v, v.prot & 4 == s)",
	"vmas.filter(v, s)",
	"vmas.exists(v, v)",
	"u + 1",
	"1 & 2 ==",
	"& 1",
	"(u & 1",
	"u & 1 |",
	"'é' + (u & s)",
	"u &\n  s == 1",
	"u == 1 &&\n  vmas.filter(v, v.prot & 'x').size() > 0",
	"\"a & b\" & \"c\"",
	"vmas.filter(v, v.prot & 4 == 4 || v.nme)",
}

func TestCompileErrors(t *testing.T) {
	env := mustDialectEnv(t)
	var b strings.Builder
	for _, src := range compileErrorCases {
		_, err := compileExpr(env, src)
		var ce *CompileError
		if !errors.As(err, &ce) {
			t.Errorf("compileExpr(%q) got %v, wanted a *CompileError", src, err)
			continue
		}
		if ce.Src != src || ce.Line < 1 || ce.Col < 1 {
			t.Errorf("compileExpr(%q) got Src %q, Line %d, Col %d", src, ce.Src, ce.Line, ce.Col)
		}
		fmt.Fprintf(&b, "### %q\n%s\n\n", src, err)
	}
	checkGolden(t, "errors.golden", b.String())
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "dialect", name)
	if *updateDialect {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-dialect to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update-dialect to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestCompileErrorFields(t *testing.T) {
	env := mustDialectEnv(t)
	tests := []struct {
		src       string
		line, col int
		msg       string
	}{
		{"u & s", 1, 3, "found no matching overload for '&' applied to '(uint, string)'"},
		{"u == 1 &&\n  s & 1 == 1", 2, 5, "found no matching overload for '&' applied to '(string, int)'"},
		{"vmas.filter(v, v.prott & 4)", 1, 17, "undefined field 'prott'; did you mean 'prot'?"},
		{"vmas.filter(v, s)", 1, 16, "predicate must be a bool or a number, not string"},
		{"'é' + (u & s)", 1, 10, "found no matching overload for '&' applied to '(uint, string)'"},
	}
	for _, tt := range tests {
		_, err := compileExpr(env, tt.src)
		var ce *CompileError
		if !errors.As(err, &ce) {
			t.Fatalf("compileExpr(%q) got %v", tt.src, err)
		}
		if ce.Line != tt.line || ce.Col != tt.col || ce.Msg != tt.msg {
			t.Errorf("compileExpr(%q) got %d:%d %q, wanted %d:%d %q", tt.src, ce.Line, ce.Col, ce.Msg, tt.line, tt.col, tt.msg)
		}
	}
}

func TestSuggestName(t *testing.T) {
	names := []string{"vmas", "PROT_READ", "PROT_WRITE", "prot", "pgoff", "ab"}
	tests := []struct{ in, want string }{
		{"vmass", "vmas"},
		{"prot_read", "PROT_READ"},
		{"PROT_RAED", "PROT_READ"},
		{"prott", "prot"},
		{"pgof", "pgoff"},
		{"xyz", ""},
		{"a", ""},
		{"zzzzzzzz", ""},
	}
	for _, tt := range tests {
		if got := suggestName(tt.in, names); got != tt.want {
			t.Errorf("suggestName(%q) got %q, wanted %q", tt.in, got, tt.want)
		}
	}
}

// FuzzCompile compiles and evaluates arbitrary expressions against VMAs
// under a cost limit and a timeout: no panic, no hang.
func FuzzCompile(f *testing.F) {
	for _, s := range append(compileErrorCases,
		"vmas.filter(v, v.prot & 4).size()", "u == 1", "[0, 1].exists(x, x)", "~0u >> 3",
		"flags(vmas[0].prot, 'mmap.prot')", "glob('/a/b', '/**')", "human(1 << 40)", "ip([16777343u])") {
		f.Add(s)
	}
	env := mustDialectEnv(f)
	vars := testVars()
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 256 {
			return
		}
		ast, err := compileExpr(env, src)
		if err != nil {
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("compileExpr(%q) got %T, wanted *CompileError", src, err)
			}
			_ = ce.Error()
			return
		}
		prg, err := env.Program(ast, cel.CostLimit(1_000_000), cel.InterruptCheckFrequency(100))
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, _, _ = prg.ContextEval(ctx, vars)
	})
}

// BenchmarkFilterVMAs measures vmas.filter(v, v.prot & 4).size() over
// 100,000 vma_entry messages; the target is 0.6 us per element.
func BenchmarkFilterVMAs(b *testing.B) {
	vmas := make([]*images.VmaEntry, 100_000)
	for i := range vmas {
		vmas[i] = &images.VmaEntry{
			Start: proto.Uint64(uint64(i) << 12), End: proto.Uint64(uint64(i+1) << 12),
			Prot: proto.Uint32(uint32(i % 8)), Flags: proto.Uint32(2), Status: proto.Uint32(1),
			Fd: proto.Int64(-1), Pgoff: proto.Uint64(0), Shmid: proto.Uint64(0),
		}
	}
	env := mustDialectEnv(b)
	for _, src := range []string{
		"vmas.filter(v, v.prot & 4).size()",
		"vmas.filter(v, v.prot & PROT_EXEC != 0).size()",
		"vmas.filter(v, v.prot == 5).size()",
	} {
		b.Run(src, func(b *testing.B) {
			ast, err := compileExpr(env, src)
			if err != nil {
				b.Fatal(err)
			}
			prg, err := env.Program(ast)
			if err != nil {
				b.Fatal(err)
			}
			vars := map[string]any{"vmas": vmas}
			b.ReportAllocs()
			for b.Loop() {
				out, _, err := prg.Eval(vars)
				if err != nil || out.Value() != int64(50_000) && out.Value() != int64(12_500) {
					b.Fatalf("got %v, %v", out, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3/float64(len(vmas)), "us/elem")
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	env := mustDialectEnv(b)
	for _, src := range []string{"vmas.filter(v, v.prot & 4).size()", "vmas.exists(v, v.prot == 5)"} {
		b.Run(src, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := compileExpr(env, src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
