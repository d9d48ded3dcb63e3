package query

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// fastOutcome renders the result of an evaluation for comparison: the
// JSON of the value and its CEL type, or the error with the expression id
// CEL labelled it with.
func fastOutcome(v ref.Val, err error) string {
	if err != nil {
		var ce *types.Err
		if errors.As(err, &ce) {
			return fmt.Sprintf("error %d: %v", ce.NodeID(), err)
		}
		return "error: " + err.Error()
	}
	var b bytes.Buffer
	if werr := (Output{Format: FormatJSON}).Write(&b, "", v); werr != nil {
		return "unprintable: " + werr.Error()
	}
	return v.Type().TypeName() + " " + b.String()
}

// bothPaths compiles src with and without the fast path. ok is false when
// src does not compile.
func bothPaths(t testing.TB, src string, opts ...Option) (fast, slow *Query, ok bool) {
	t.Helper()
	fast, err := Compile(src, opts...)
	if err != nil {
		return nil, nil, false
	}
	slow, err = Compile(src, append(opts, noFastPath())...)
	if err != nil {
		t.Fatalf("%q compiles with the fast path but not without: %v", src, err)
	}
	return fast, slow, true
}

// compareOn evaluates both queries on d and reports a difference.
func compareOn(t testing.TB, src string, fast, slow *Query, d *Dump) {
	t.Helper()
	fv, ferr := fast.Eval(context.Background(), d)
	sv, serr := slow.Eval(context.Background(), d)
	got, want := fastOutcome(fv, ferr), fastOutcome(sv, serr)
	if got != want {
		if len(got) > 400 {
			got = got[:400] + "..."
		}
		if len(want) > 400 {
			want = want[:400] + "..."
		}
		t.Errorf("%s: %q\nfast path: %s\ncel-go:    %s", d.Name(), src, got, want)
	}
}

// cookbookExprs returns the expressions of examples/cookbook.txt.
func cookbookExprs(t testing.TB) []string {
	t.Helper()
	fh, err := os.Open("../examples/cookbook.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if _, src, ok := strings.Cut(sc.Text(), ": "); ok && !strings.HasPrefix(sc.Text(), "#") {
			out = append(out, src)
		}
	}
	return out
}

// dialectExprs returns the expressions of the dialect's tests (those that
// do not compile in the query environment are skipped later).
func dialectExprs(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, file := range []string{"dialect_test.go", "lib_test.go", "query_test.go"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?:src: |\()("(?:[^"\\\n]|\\.)*"|`+"`[^`]*`"+`)`).FindAllSubmatch(b, -1) {
			if s, err := strconv.Unquote(string(m[1])); err == nil && s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// fastExprs are hand-written expressions over the edges of the subset.
var fastExprs = []string{
	"vmas.filter(v, v.prot & 4).size()",
	"vmas.exists(v, v.prot & PROT_EXEC != 0 && v.pid == 1)",
	"vmas.map(v, v.size)",
	"vmas.map(v, v)",
	"vmas.filter(v, v.prot & -1)",
	"vmas.filter(v, v.prot & 4 | -2)",
	"vmas.map(v, v.start - v.end)",
	"vmas.map(v, v.end - v.start)",
	"vmas.map(v, v.fd + 9223372036854775807)",
	"vmas.map(v, v.fd - 9223372036854775807 - 2)",
	"vmas.map(v, v.size / (v.prot & 1u))",
	"vmas.map(v, v.size % (v.prot & 2u))",
	"vmas.map(v, v.fd / 0)",
	"vmas.map(v, v.fd * 4611686018427387904)",
	"vmas.map(v, v.size * 18446744073709551u)",
	"vmas.map(v, -v.fd)",
	"vmas.map(v, int(v.start))",
	"vmas.map(v, uint(v.fd))",
	"vmas.map(v, double(v.size) / 4096.0)",
	"vmas.filter(v, double(v.size) > 1e5)",
	"vmas.filter(v, v.size > 1e5)",
	"vmas.filter(v, v.fd < 0u)",
	"vmas.filter(v, v.fd == v.shmid)",
	"vmas.filter(v, v.fd != 18446744073709551615u)",
	"vmas.filter(v, v.prot << v.fd)",
	"vmas.filter(v, v.prot >> 64)",
	"vmas.map(v, v.fd >> 100)",
	"vmas.map(v, ~v.prot)",
	"vmas.filter(v, !(v.prot & PROT_WRITE))",
	"vmas.filter(v, v.prot & PROT_READ && v.prot & PROT_EXEC)",
	"vmas.filter(v, v.prot & PROT_READ || v.fd & -4)",
	"vmas.filter(v, v.fd & -4 || v.prot & PROT_READ)",
	"vmas.filter(v, v.fd & -4 && v.prot & 64)",
	"vmas.filter(v, v.prot & 64 && v.fd & -4)",
	"vmas.exists(v, v.fd & -4)",
	"vmas.exists(v, v.fd & 1u)",
	"vmas.all(v, v.fd & 1u)",
	"vmas.all(v, v.size >= 4096u)",
	"vmas.all(v, v.fd == -1 ? v.prot & -1 : true)",
	"vmas.exists_one(v, v.prot == 7)",
	"vmas.exists_one(v, v.fd & 1u)",
	"vmas.existsOne(v, v.status & VMA_AREA_HEAP)",
	"vmas.map(v, v.prot & 4, v.start)",
	"vmas.map(v, v.prot & 4, v.fd + 1)",
	"vmas.map(v, v.prot & -1, v.start)",
	"vmas.map(v, v.prot & 4, v.fd & 1u)",
	"vmas.map(v, v.prot > 3 ? v.start : v.end)",
	"vmas.map(v, v.prot > 3 ? 'x' : 'y')",
	"vmas.map(v, v.prot > 3 ? v.fd & 1u : v.size)",
	"vmas.filter(v, has(v.path))",
	"vmas.filter(v, has(v.path) && v.path.startsWith('/usr'))",
	"vmas.filter(v, v.path.endsWith('.so.6') || v.path.contains('ld-'))",
	"vmas.filter(v, v.path.matches('lib[a-z]+[.]so'))",
	"vmas.map(v, size(v.path))",
	"vmas.map(v, v.path + '!')",
	"vmas.filter(v, v.path > '/usr/lib')",
	"vmas.filter(v, v.pid in [1, 2])",
	"vmas.filter(v, v.prot & 4).map(v, v.start)",
	"vmas.filter(v, v.prot & 4).filter(v, v.prot & 1).size()",
	"vmas.filter(v, v.prot & 4)[0]",
	"size(vmas.filter(v, v.prot & 4)) > 0",
	"vmas.filter(v, v.prot & 4) == vmas.filter(v, v.prot & 4)",
	"vmas.filter(v, v.prot & 4) + vmas.filter(v, v.prot & 1)",
	"vmas.filter(x, x.prot & 4).map(y, y.prot)",
	"vmas.map(v, v.status & VMA_AREA_HEAP != 0u)",
	"tasks.filter(t, t.pid == t.ppid + 1u)",
	"tasks.map(t, t.comm)",
	"tasks.filter(t, t.state == TASK_ALIVE)",
	"tasks.exists(t, t.core.tc.comm == 'sleep')",
	"tasks.map(t, t.mm.mm_start_code)",
	"tasks.filter(t, has(t.mm))",
	"tasks.filter(t, has(t.core.tc))",
	"tasks.map(t, t.creds.uid)",
	"tasks.filter(t, t.vmas.exists(v, v.prot & PROT_EXEC))",
	"tasks.map(t, t.vmas.filter(v, v.prot & 4).size())",
	"tasks.map(t, t.vmas.map(v, v.size))",
	"fds.filter(f, f.type == REG)",
	"fds.filter(f, f.kind == 'REG' && f.fd > 2u)",
	"fds.map(f, f.path)",
	"fds.filter(f, f.flags & O_RDWR)",
	"files.filter(f, f.deleted)",
	"files.map(f, f.type)",
	"files.filter(f, f.entry.reg.flags & O_WRONLY)",
	"sockets.filter(s, s.family == AF_INET && s.state == TCP_LISTEN)",
	"sockets.map(s, s.local_port)",
	"sockets.filter(s, s.type == SOCK_STREAM).map(s, s.local_addr)",
	"pagemaps.filter(p, p.flags & PE_PRESENT).size()",
	"pagemaps.map(p, p.nr_pages * 4096u)",
	"pagemaps.filter(p, has(p.pid))",
	"mounts.filter(m, m.type == 'proc')",
	"mounts.map(m, m.mnt_id)",
	"pstree.filter(p, p.pid == 1)",
	"pstree.map(p, p.threads.size())",
	"vmas.filter(v, v.prot & 4).size() == vmas.map(v, v.prot & 4, v).size()",
}

// vmaGen writes random expressions over the scalar fields of a message,
// typed so that most of them compile.
type vmaGen struct {
	r      *rand.Rand
	v      string
	fields map[fastKind][]string
}

func newGen(seed uint64, v string, md protoreflect.MessageDescriptor) *vmaGen {
	g := &vmaGen{r: rand.New(rand.NewPCG(seed, 7)), v: v, fields: map[fastKind][]string{}}
	for i := range md.Fields().Len() {
		fd := md.Fields().Get(i)
		if k := fieldKind(fd); k != 0 && !fd.IsList() {
			g.fields[k] = append(g.fields[k], string(fd.Name()))
		}
	}
	return g
}

func (g *vmaGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *vmaGen) field(k fastKind) (string, bool) {
	fs := g.fields[k]
	if len(fs) == 0 {
		return "", false
	}
	return g.v + "." + g.pick(fs), true
}

func (g *vmaGen) num(depth int) string {
	if depth <= 0 || g.r.IntN(3) == 0 {
		switch g.r.IntN(4) {
		case 0:
			return g.pick([]string{"0", "1", "4", "-1", "-4", "4096", "9223372036854775807", "64", "63"})
		case 1:
			return g.pick([]string{"0u", "1u", "4u", "4096u", "18446744073709551615u", "PROT_EXEC", "PROT_WRITE", "MAP_SHARED", "VMA_AREA_HEAP", "VMA_FILE_PRIVATE", "64u"})
		}
		k := fastUint
		if g.r.IntN(3) == 0 {
			k = fastInt
		}
		if f, ok := g.field(k); ok {
			return f
		}
		return "7"
	}
	a, b := g.num(depth-1), g.num(depth-1)
	switch g.r.IntN(6) {
	case 0:
		return "(" + a + " " + g.pick([]string{"&", "|", "^", "<<", ">>"}) + " " + b + ")"
	case 1:
		return "(" + a + " " + g.pick([]string{"+", "-", "*", "/", "%"}) + " " + b + ")"
	case 2:
		return "~" + a
	case 3:
		return g.pick([]string{"int(", "uint("}) + a + ")"
	case 4:
		return "(" + g.pred(depth-1) + " ? " + a + " : " + a + ")"
	}
	return "(" + a + " & " + b + ")"
}

func (g *vmaGen) pred(depth int) string {
	if depth <= 0 || g.r.IntN(4) == 0 {
		if f, ok := g.field(fastBool); ok && g.r.IntN(5) == 0 {
			return f
		}
		if f, ok := g.field(fastString); ok && g.r.IntN(5) == 0 {
			return f + "." + g.pick([]string{"startsWith", "endsWith", "contains"}) + "(" + g.pick([]string{`""`, `"/"`, `"lib"`, `".so"`, `"sleep"`}) + ")"
		}
		return g.num(1)
	}
	switch g.r.IntN(6) {
	case 0:
		return "(" + g.pred(depth-1) + " && " + g.pred(depth-1) + ")"
	case 1:
		return "(" + g.pred(depth-1) + " || " + g.pred(depth-1) + ")"
	case 2:
		return "!(" + g.pred(depth-1) + ")"
	case 3:
		return "(" + g.num(depth-1) + " " + g.pick([]string{"==", "!=", "<", "<=", ">", ">="}) + " " + g.num(depth-1) + ")"
	}
	return g.num(depth - 1)
}

// expr wraps a random predicate or transform in one of the macros.
func (g *vmaGen) expr(list string) string {
	p := g.pred(3)
	switch g.r.IntN(8) {
	case 0:
		return list + ".exists(" + g.v + ", " + p + ")"
	case 1:
		return list + ".all(" + g.v + ", " + p + ")"
	case 2:
		return list + ".exists_one(" + g.v + ", " + p + ")"
	case 3:
		return list + ".map(" + g.v + ", " + g.num(3) + ")"
	case 4:
		return list + ".map(" + g.v + ", " + p + ", " + g.num(2) + ")"
	case 5:
		return list + ".filter(" + g.v + ", " + p + ").size()"
	}
	return list + ".filter(" + g.v + ", " + p + ")"
}

// generatedExprs returns n random expressions over each view.
func generatedExprs(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	for i, view := range []struct{ list, msg string }{
		{"vmas", typeVMA}, {"tasks", typeTask}, {"fds", typeFD}, {"files", typeFile},
		{"sockets", typeSocket}, {"pagemaps", typePagemap}, {"mounts", typeMount},
	} {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(view.msg))
		if err != nil {
			t.Fatal(err)
		}
		g := newGen(uint64(i), "x", d.(protoreflect.MessageDescriptor))
		m := n
		if view.list != "vmas" {
			m = n / 4
		}
		for range m {
			out = append(out, g.expr(view.list))
		}
	}
	return out
}

// TestFastDifferential evaluates the cookbook, the dialect's tests, the
// expressions above and generated ones with the fast path and without,
// over every dump, and requires the same values and errors. The dumps of
// the repository get every expression; the corpus, whose dumps are many
// and large, all but most of the generated ones.
func TestFastDifferential(t *testing.T) {
	fixed := append(append(cookbookExprs(t), dialectExprs(t)...), fastExprs...)
	generated := generatedExprs(t, 300)
	type pair struct {
		src        string
		fast, slow *Query
		everywhere bool
	}
	var pairs []pair
	for i, src := range append(fixed, generated...) {
		fast, slow, ok := bothPaths(t, src)
		if !ok || len(fast.fast.folds) == 0 {
			continue // nothing to compare
		}
		// Generated predicates run on every corpus dump one in ten times,
		// and not at all under the race detector (testdata still has them).
		pairs = append(pairs, pair{src, fast, slow, i < len(fixed) || !raceEnabled && i%10 == 0})
	}
	t.Logf("%d expressions with a fast comprehension", len(pairs))
	if len(pairs) < len(fastExprs) {
		t.Errorf("only %d expressions take the fast path", len(pairs))
	}
	for _, dir := range testdataDumps(t) {
		d := mustOpen(t, dir)
		for _, p := range pairs {
			compareOn(t, p.src, p.fast, p.slow, d)
		}
	}
	for _, dir := range corpusIfPresent(t) {
		d := mustOpen(t, dir)
		for _, p := range pairs {
			if p.everywhere {
				compareOn(t, p.src, p.fast, p.slow, d)
			}
		}
	}
}

// corpusIfPresent returns the corpus dumps, or none when the corpus is
// absent (and CRITQ_REQUIRE_CORPUS is not set).
func corpusIfPresent(t *testing.T) []string {
	var out []string
	t.Run("corpus", func(t *testing.T) { out = corpusDumps(t) })
	return out
}

// TestFastTaken checks which comprehensions take the fast path, and that
// those that do ran natively.
func TestFastTaken(t *testing.T) {
	d := mustOpen(t, "../testdata/dumps/sleep-plain")
	for _, tt := range []struct {
		src  string
		fast int // comprehensions planned and run natively
	}{
		{"vmas.filter(v, v.prot & 4).size()", 1},
		{"vmas.exists(v, v.prot & PROT_EXEC != 0 && v.pid == 1)", 1},
		{"vmas.map(v, v.size)", 1},
		{"vmas.filter(v, v.prot & 4).map(v, v.start)", 2},
		{"tasks.map(t, t.vmas.filter(v, v.prot & 4).size())", 1},
		// Outside the subset: a list field, an outer variable, a map.
		{"vmas.filter(v, v.pid in [1, 2])", 0},
		{"tasks.map(t, vmas.filter(v, v.pid == t.pid).size())", 0},
		{"vmas.map(v, {'start': v.start})", 0},
		{"tasks.filter(t, t.threads.size() > 1)", 0},
	} {
		q := mustCompile(t, tt.src)
		mustEval(t, q, d)
		runs, fallbacks := 0, 0
		for _, f := range q.fast.folds {
			if f.runs.Load() > 0 {
				runs++
			}
			fallbacks += int(f.fallbacks.Load())
		}
		if len(q.fast.folds) != tt.fast || runs != tt.fast || fallbacks != 0 {
			t.Errorf("%q: %d comprehensions planned, %d ran natively, %d fell back; wanted %d, %d, 0",
				tt.src, len(q.fast.folds), runs, fallbacks, tt.fast, tt.fast)
		}
	}
}

// TestFastCostLimit checks that the fast path charges the cost limit.
func TestFastCostLimit(t *testing.T) {
	d := mustOpen(t, synthDump(t, 20000))
	q := mustCompile(t, "vmas.filter(v, v.prot & 4).size()", CostLimit(10000))
	if len(q.fast.folds) != 1 {
		t.Fatalf("the query has no fast comprehension")
	}
	_, err := q.Eval(context.Background(), d)
	if err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("Eval over 20,000 VMAs with a cost limit of 10,000: got %v, wanted the cost limit exceeded", err)
	}
}

// TestFastCancel checks that a cancelled context stops a fast
// comprehension as it stops the interpreter's.
func TestFastCancel(t *testing.T) {
	d := mustOpen(t, synthDump(t, 20000))
	q := mustCompile(t, "vmas.filter(v, v.prot & 4).size()")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := q.Eval(ctx, d)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Eval with a cancelled context: got %v, wanted context.Canceled", err)
	}
}

// FuzzFastPredicate compiles a predicate over the VMAs into each macro and
// requires the fast path and cel-go to agree.
func FuzzFastPredicate(f *testing.F) {
	for _, s := range []string{
		"v.prot & 4", "v.prot & PROT_EXEC != 0 && v.pid == 1", "v.fd & -1", "v.size / (v.prot & 1u) > 3u",
		"has(v.path) && v.path.endsWith('.so.6')", "v.start - v.end > 0u", "v.fd == -1 ? v.prot : v.flags",
		"!(v.status & VMA_AREA_REGULAR) || v.shmid << 70", "double(v.size) >= 4096.5",
	} {
		f.Add(s)
	}
	d, err := Open("../testdata/dumps/sleep-plain")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pred string) {
		if len(pred) > 500 {
			return
		}
		for _, form := range []string{"vmas.filter(v, %s)", "vmas.exists(v, %s)", "vmas.all(v, %s)",
			"vmas.exists_one(v, %s)", "vmas.map(v, %s)", "vmas.map(v, %s, v.start)"} {
			src := fmt.Sprintf(form, pred)
			fast, slow, ok := bothPaths(t, src, CostLimit(1_000_000))
			if ok {
				compareOn(t, src, fast, slow, d)
			}
		}
	})
}

// BenchmarkFastVMAs evaluates list queries over 100,000 VMAs with the fast
// path and with cel-go's interpreter; the view is built once.
func BenchmarkFastVMAs(b *testing.B) {
	d := mustOpen(b, synthDump(b, benchVMAs))
	for _, src := range []string{
		"vmas.filter(v, v.prot & 4).size()",
		"vmas.exists(v, v.prot & PROT_EXEC != 0 && v.pid == 2)",
		"vmas.map(v, v.size)",
	} {
		for _, mode := range []struct {
			name string
			opts []Option
		}{{"fast", nil}, {"cel", []Option{noFastPath()}}} {
			b.Run(mode.name+"/"+src, func(b *testing.B) {
				q := mustCompile(b, src, mode.opts...)
				mustEval(b, q, d)
				b.ReportAllocs()
				for b.Loop() {
					mustEval(b, q, d)
				}
			})
		}
	}
}
