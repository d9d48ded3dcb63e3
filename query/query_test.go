package query

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"cel.dev/cel-go/common/types/ref"
	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
	"github.com/critq/critq/proto/views"
)

// testdataDumps returns the dumps copied into the repository.
func testdataDumps(t testing.TB) []string {
	t.Helper()
	dirs, err := filepath.Glob("../testdata/dumps/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no dumps in ../testdata/dumps: %v", err)
	}
	return dirs
}

// corpusDumps returns the dumps of the corpus (a predump chain gives its
// last dump; see package testcorpus). It skips the test when the corpus is
// absent, unless CRITQ_REQUIRE_CORPUS is set.
func corpusDumps(t testing.TB) []string {
	t.Helper()
	if testcorpus.Root(t) == "" {
		t.Skip("../../shared/corpus is absent")
	}
	return testcorpus.Dumps(t)
}

// allDumps is the corpus when present, else the repository's dumps.
func allDumps(t testing.TB) []string {
	t.Helper()
	ms, _ := filepath.Glob("../../shared/corpus/*/MANIFEST.txt")
	if len(ms) == 0 && os.Getenv("CRITQ_REQUIRE_CORPUS") != "1" {
		return testdataDumps(t)
	}
	return corpusDumps(t)
}

func mustCompile(t testing.TB, src string, opts ...Option) *Query {
	t.Helper()
	q, err := Compile(src, opts...)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return q
}

func mustOpen(t testing.TB, dir string) *Dump {
	t.Helper()
	d, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	return d
}

func mustEval(t testing.TB, q *Query, d *Dump) ref.Val {
	t.Helper()
	v, err := q.Eval(context.Background(), d)
	if err != nil {
		t.Fatalf("%q.Eval(%s): %v", q, d.Name(), err)
	}
	return v
}

// messages returns the messages of a list result.
func messages[T proto.Message](t testing.TB, v ref.Val) []T {
	t.Helper()
	nat, err := v.ConvertToNative(reflect.TypeFor[[]T]())
	if err != nil {
		t.Fatalf("result %v is no list of %T: %v", v, *new(T), err)
	}
	return nat.([]T)
}

// TestExecVMAs checks that "vmas.filter(v, v.prot & 4)" yields exactly the
// VMAs with PROT_EXEC of every task's mm image, in pstree order.
func TestExecVMAs(t *testing.T) {
	q := mustCompile(t, "vmas.filter(v, v.prot & 4)")
	for _, dir := range allDumps(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got := messages[*views.Vma](t, mustEval(t, q, mustOpen(t, dir)))
			want := execVMAs(t, dir)
			if len(got) != len(want) {
				t.Fatalf("got %d executable VMAs, wanted %d", len(got), len(want))
			}
			for i, v := range got {
				if v.GetPid() != want[i].pid {
					t.Errorf("VMA %d: got pid %d, wanted %d", i, v.GetPid(), want[i].pid)
				}
				if v.GetSize() != v.GetEnd()-v.GetStart() {
					t.Errorf("VMA %d: got size %d, wanted %d", i, v.GetSize(), v.GetEnd()-v.GetStart())
				}
				if e := asVMAEntry(t, v); !proto.Equal(e, want[i].vma) {
					t.Errorf("VMA %d: got %v, wanted %v", i, e, want[i].vma)
				}
			}
		})
	}
}

type ownedVMA struct {
	pid uint32
	vma *images.VmaEntry
}

// execVMAs decodes the mm images of a dump the plain way.
func execVMAs(t *testing.T, dir string) []ownedVMA {
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []ownedVMA
	ps, err := model.Messages[*images.PstreeEntry](d.File("pstree.img"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		f := d.FileFor("MM", uint64(p.GetPid()))
		if f == nil {
			continue
		}
		m, err := f.First()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range m.(*images.MmEntry).GetVmas() {
			if v.GetProt()&4 != 0 {
				out = append(out, ownedVMA{p.GetPid(), v})
			}
		}
	}
	return out
}

// asVMAEntry returns the vma_entry fields of a vma view.
func asVMAEntry(t *testing.T, v *views.Vma) *images.VmaEntry {
	c := proto.Clone(v).(*views.Vma)
	c.Pid, c.Size, c.Path = nil, nil, nil
	b, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	e := &images.VmaEntry{}
	if err := proto.Unmarshal(b, e); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestOpens checks which images each query reads.
func TestOpens(t *testing.T) {
	const dir = "../testdata/dumps/sleep-plain"
	const pid = "19635"
	for _, tc := range []struct {
		src  string
		want string
	}{
		{"pstree.size()", "pstree.img"},
		{"tasks.map(t, t.pid)", "pstree.img"},
		{"tasks.map(t, [t.pid, t.ppid, t.depth, t.children])", "pstree.img"},
		{"tasks.map(t, t.comm)", "core-P.img pstree.img"},
		{"tasks.filter(t, t.state == 1u).size()", "core-P.img pstree.img"},
		{"tasks.map(t, t.cwd)", "files.img fs-P.img pstree.img"},
		{"tasks.map(t, t.ids.net_ns_id)", "ids-P.img pstree.img"},
		{"tasks.map(t, t.vmas.size())", "mm-P.img pstree.img"},
		{"tasks[0]", "core-P.img fdinfo-2.img files.img fs-P.img ids-P.img mm-P.img pstree.img"},
		{"vmas.filter(v, v.prot & 4).size()", "mm-P.img pstree.img"},
		{"vmas.map(v, v.path)", "files.img mm-P.img pstree.img"},
		{"core[" + pid + "].tc.comm", "core-P.img"},
		{"core.size()", ""},
		{"mm.map(pid, mm[pid].vmas.size())", "mm-P.img"},
		{"fds.map(f, f.fd)", "fdinfo-2.img ids-P.img pstree.img"},
		{"fds.map(f, f.path)", "fdinfo-2.img files.img ids-P.img pstree.img"},
		{"files.map(f, f.path)", "files.img"},
		{"sockets.size()", "files.img"},
		{"inventory.img_version", "inventory.img"},
		{"images['pstree.img'].entries.size()", "pstree.img"},
		{"images.size()", ""},
		{"pagemaps.size()", "pagemap-P.img pstree.img"},
		{"mounts.size()", ""},
		{"1 + 1", ""},
	} {
		t.Run(tc.src, func(t *testing.T) {
			q := mustCompile(t, tc.src)
			d := mustOpen(t, dir)
			var mu sync.Mutex
			seen := map[string]bool{}
			d.Images().SetHook(func(name string) {
				mu.Lock()
				seen[name] = true
				mu.Unlock()
			})
			mustEval(t, q, d)
			var got []string
			for n := range seen {
				got = append(got, strings.ReplaceAll(n, pid, "P"))
			}
			sort.Strings(got)
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("%q read %q, wanted %q", tc.src, g, tc.want)
			}
		})
	}
}

// TestConcurrent evaluates one compiled query against every dump from
// several goroutines at once (run it with -race).
func TestConcurrent(t *testing.T) {
	q := mustCompile(t, "tasks.map(t, [t.pid, t.comm, t.vmas.size(), t.fds.map(f, f.path)])")
	dirs := testdataDumps(t)
	want := make([]string, len(dirs))
	for i, dir := range dirs {
		want[i] = fmt.Sprint(mustEval(t, q, mustOpen(t, dir)).Value())
	}
	shared := make([]*Dump, len(dirs))
	for i, dir := range dirs {
		shared[i] = mustOpen(t, dir)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		for i := range dirs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := shared[i]
				if g%2 == 1 {
					d = mustOpen(t, dirs[i])
				}
				v, err := q.Eval(context.Background(), d)
				if err != nil {
					t.Errorf("%s: %v", dirs[i], err)
					return
				}
				if got := fmt.Sprint(v.Value()); got != want[i] {
					t.Errorf("%s: got %s, wanted %s", dirs[i], got, want[i])
				}
			}()
		}
	}
	wg.Wait()
}

func TestEvalErrors(t *testing.T) {
	d := mustOpen(t, "../testdata/dumps/sleep-plain")
	t.Run("cost limit", func(t *testing.T) {
		q := mustCompile(t, "[1,2,3,4,5,6,7,8,9,10].map(a, [1,2,3,4,5,6,7,8,9,10].map(b, [1,2,3,4,5,6,7,8,9,10].map(c, a*b*c)))", CostLimit(100))
		_, err := q.Eval(context.Background(), d)
		var ee *EvalError
		if !errors.As(err, &ee) {
			t.Fatalf("Eval beyond the cost limit: got %v, wanted an *EvalError", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		q := mustCompile(t, "vmas.map(a, vmas.map(b, vmas.map(c, vmas.map(e, a.pid)))).size()", CostLimit(0))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := q.Eval(ctx, d)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Eval past its deadline: got %v, wanted context.DeadlineExceeded", err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("Eval stopped %v after a 50ms deadline", el)
		}
	})
	t.Run("runtime", func(t *testing.T) {
		q := mustCompile(t, "core[42].tc.comm")
		_, err := q.Eval(context.Background(), d)
		var ee *EvalError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), "42") {
			t.Fatalf("Eval of a missing key: got %v, wanted an *EvalError naming 42", err)
		}
	})
	t.Run("bad image", func(t *testing.T) {
		dir := t.TempDir()
		for _, name := range []string{"pstree.img", "core-19635.img"} {
			b, err := os.ReadFile(filepath.Join("../testdata/dumps/sleep-plain", name))
			if err != nil {
				t.Fatal(err)
			}
			if name != "pstree.img" {
				b = b[:len(b)-3] // truncate the core
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, src := range []string{"tasks.map(t, t.comm)", "core[19635].tc.comm", "images['core-19635.img'].entries"} {
			_, err := mustCompile(t, src).Eval(context.Background(), mustOpen(t, dir))
			var de *DumpError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), "core-19635.img") {
				t.Errorf("%s on a truncated core: got %v, wanted a *DumpError naming the file", src, err)
			}
		}
	})
}

func TestVars(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Vars() {
		if seen[v.Name] {
			t.Errorf("Vars(): %s twice", v.Name)
		}
		seen[v.Name] = true
		if v.Type == nil || v.Doc == "" {
			t.Errorf("Vars(): %s has type %v, doc %q", v.Name, v.Type, v.Doc)
		}
	}
	for _, name := range []string{"tasks", "vmas", "fds", "files", "sockets", "mounts", "pagemaps", "threads", "images", "pstree", "core", "mm", "fdinfo", "inventory", "ids", "fs"} {
		if !seen[name] {
			t.Errorf("Vars() lacks %s", name)
		}
	}
}

// TestViewsOnCorpus evaluates every view whole on every dump: nothing may
// fail on a real dump.
func TestViewsOnCorpus(t *testing.T) {
	qs := map[string]*Query{}
	for _, v := range viewVars {
		if v.view != viewImages {
			qs[v.Name] = mustCompile(t, v.Name)
		}
	}
	qs["images"] = mustCompile(t, "images.map(n, images[n].entries.size())")
	for _, dir := range allDumps(t) {
		d := mustOpen(t, dir)
		for name, q := range qs {
			if _, err := q.Eval(context.Background(), d); err != nil {
				t.Errorf("%s on %s: %v", name, filepath.Base(dir), err)
			}
		}
	}
}
