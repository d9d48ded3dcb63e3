package query

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/critq/critq/mem"
	"github.com/critq/critq/proto/images"
)

// handMadeDumps returns the dumps that saved their tasks' /proc views
// (proc/PID/cmdline, environ): the corpus folders without a zdtm- prefix,
// except the predump chains, or the repository's copies of them.
func handMadeDumps(t testing.TB) []string {
	var out []string
	for _, dir := range allDumps(t) {
		base := filepath.Base(dir)
		if strings.HasPrefix(base, "zdtm-") || strings.HasPrefix(base, "predump-") {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "proc")); err == nil {
			out = append(out, dir)
		}
	}
	if len(out) == 0 {
		t.Fatal("no hand-made dumps")
	}
	return out
}

// evalJSON evaluates src on d and decodes its JSON output into out.
func evalJSON(t *testing.T, d *Dump, src string, out any) {
	t.Helper()
	v := mustEval(t, mustCompile(t, src), d)
	var b bytes.Buffer
	if err := (Output{Format: FormatJSON}).Write(&b, "", v); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Bytes(), out); err != nil {
		t.Fatalf("%s: %v in %s", src, err, b.Bytes())
	}
}

// procStrings reads a saved /proc/PID file of NUL-terminated strings.
func procStrings(t *testing.T, dir string, pid uint32, file string) []string {
	raw, err := os.ReadFile(filepath.Join(dir, "proc", strconv.Itoa(int(pid)), file))
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 {
		return []string{}
	}
	return strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
}

// TestMemCmdlineEnvironCorpus checks cmdline(pid), environ(pid) and the
// tasks fields against the /proc files saved just before each dump.
func TestMemCmdlineEnvironCorpus(t *testing.T) {
	type row struct {
		Pid              uint32
		Cmdline, Environ []string
		Err              string
	}
	n := 0
	for _, dir := range handMadeDumps(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			d := mustOpen(t, dir)
			var byFunc, byField [][]json.RawMessage
			evalJSON(t, d, `tasks.map(t, [t.pid, cmdline(t.pid), environ(t.pid)])`, &byFunc)
			evalJSON(t, d, `tasks.map(t, [t.pid, t.cmdline, t.environ, t.mem_error])`, &byField)
			if len(byFunc) != len(byField) || len(byFunc) == 0 {
				t.Fatalf("%d tasks by function, %d by field", len(byFunc), len(byField))
			}
			for i := range byFunc {
				var f, g row
				for j, dst := range []any{&f.Pid, &f.Cmdline, &f.Environ} {
					json.Unmarshal(byFunc[i][j], dst)
				}
				for j, dst := range []any{&g.Pid, &g.Cmdline, &g.Environ, &g.Err} {
					json.Unmarshal(byField[i][j], dst)
				}
				want := row{Pid: f.Pid, Cmdline: procStrings(t, dir, f.Pid, "cmdline"), Environ: procStrings(t, dir, f.Pid, "environ")}
				if strings.Join(f.Cmdline, "\x00") != strings.Join(want.Cmdline, "\x00") || len(f.Cmdline) != len(want.Cmdline) {
					t.Errorf("cmdline(%d) got %q, wanted %q", f.Pid, f.Cmdline, want.Cmdline)
				}
				if strings.Join(f.Environ, "\x00") != strings.Join(want.Environ, "\x00") || len(f.Environ) != len(want.Environ) {
					t.Errorf("environ(%d) got %q, wanted %q", f.Pid, f.Environ, want.Environ)
				}
				if g.Pid != f.Pid || g.Err != "" || strings.Join(g.Cmdline, "\x00") != strings.Join(f.Cmdline, "\x00") ||
					strings.Join(g.Environ, "\x00") != strings.Join(f.Environ, "\x00") {
					t.Errorf("tasks[%d] fields %+v differ from the functions' %+v", i, g, f)
				}
				n++
			}
		})
	}
	t.Logf("%d tasks compared", n)
}

// opened records the files a dump reads.
type opened struct {
	mu    sync.Mutex
	names map[string]int
}

func watch(d *Dump) *opened {
	o := &opened{names: map[string]int{}}
	d.Images().SetHook(func(name string) {
		o.mu.Lock()
		o.names[name]++
		o.mu.Unlock()
	})
	return o
}

func (o *opened) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for n := range o.names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestMemLazy checks with dump.SetHook that queries without memory
// functions read no memory images, and that cmdline(P) reads P's mm,
// pagemap and pages images (and one core image for the architecture), its
// index once.
func TestMemLazy(t *testing.T) {
	for _, dir := range handMadeDumps(t)[:min(3, len(handMadeDumps(t)))] {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var pid uint32
			var pagesID uint32
			{
				d := mustOpen(t, dir)
				var pids []uint32
				evalJSON(t, d, `tasks.filter(t, has(t.mm)).map(t, t.pid)`, &pids)
				pid = pids[len(pids)-1]
				head, err := d.Images().FileFor("PAGEMAP", uint64(pid)).First()
				if err != nil {
					t.Fatal(err)
				}
				pagesID = head.(*images.PagemapHead).GetPagesId()
			}
			for _, src := range []string{`tasks.map(t, t.pid)`, `tasks`, `vmas.size()`, `pagemaps.size()`} {
				d := mustOpen(t, dir)
				o := watch(d)
				mustEval(t, mustCompile(t, src), d)
				for _, n := range o.list() {
					if src == `tasks.map(t, t.pid)` && n != "pstree.img" {
						t.Errorf("%s read %s", src, n)
					}
					if strings.HasPrefix(n, "pages-") {
						t.Errorf("%s read %s", src, n)
					}
				}
			}
			d := mustOpen(t, dir)
			o := watch(d)
			q := mustCompile(t, `cmdline(`+strconv.Itoa(int(pid))+`).size()`)
			mustEval(t, q, d)
			allowed := map[string]bool{}
			for _, n := range []string{"mm-%d.img", "pagemap-%d.img", "inventory.img"} { // inventory.img: mem checks for compressed pages
				allowed[strings.Replace(n, "%d", strconv.Itoa(int(pid)), 1)] = true
			}
			allowed["pages-"+strconv.Itoa(int(pagesID))+".img"] = true
			cores := 0
			for _, n := range o.list() {
				switch {
				case allowed[n]:
					delete(allowed, n)
				case strings.HasPrefix(n, "core-"):
					cores++
				default:
					t.Errorf("cmdline(%d) read %s", pid, n)
				}
			}
			if len(allowed) > 0 || cores > 1 {
				t.Errorf("cmdline(%d) read %v: missing %v, %d core images", pid, o.list(), allowed, cores)
			}
			before := len(o.list())
			mustEval(t, q, d)
			if o.list(); len(o.names) != before {
				t.Errorf("the second evaluation read %v", o.list())
			}
			mustEval(t, mustCompile(t, `tasks.map(t, t.cmdline)`), d)
			for n, c := range o.names {
				if c > 1 {
					t.Errorf("%s read %d times", n, c)
				}
			}
		})
	}
}

// TestMemFunctions checks values and error values against package mem.
func TestMemFunctions(t *testing.T) {
	dir := "../testdata/dumps/sleep-plain"
	d := mustOpen(t, dir)
	m := mem.Open(d.Images())
	defer m.Close()
	const pid = 19635
	mm, err := m.MM(pid)
	if err != nil {
		t.Fatal(err)
	}
	vmas, err := m.VMAs(pid)
	if err != nil {
		t.Fatal(err)
	}
	args, err := m.Read(pid, mm.GetMmArgStart(), int(mm.GetMmArgEnd()-mm.GetMmArgStart()))
	if err != nil {
		t.Fatal(err)
	}
	var fileVMA *images.VmaEntry
	for _, v := range vmas {
		if v.GetStatus()&(1<<6) != 0 { // VMA_FILE_PRIVATE
			if _, err := m.Read(pid, v.GetStart(), 1); err != nil {
				fileVMA = v
				break
			}
		}
	}
	if fileVMA == nil {
		t.Fatal("no file VMA whose first page is not in the dump")
	}
	errText := func(addr uint64, n int) string {
		_, err := m.Read(pid, addr, n)
		if err == nil {
			t.Fatalf("Read(%d, 0x%x, %d) did not fail", pid, addr, n)
		}
		return err.Error()
	}
	hex := func(u uint64) string { return "0x" + strconv.FormatUint(u, 16) }
	for _, c := range []struct {
		src, want, err string
	}{
		{src: `mem(19635, tasks[0].mm.mm_arg_start, tasks[0].mm.mm_arg_end - tasks[0].mm.mm_arg_start) == b"` + strings.ReplaceAll(string(args), "\x00", `\x00`) + `"`, want: "true"},
		{src: `string(mem(19635u, tasks[0].mm.mm_arg_start, 5))`, want: `"` + string(args[:5]) + `"`},
		{src: `cstring(19635, tasks[0].mm.mm_arg_start)`, want: strconv.Quote(string(args[:bytes.IndexByte(args, 0)]))},
		{src: `cmdline(19635u)`, want: `["sleep","1000"]`},
		{src: `mem(19635, 0, 4)`, err: errText(0, 4)},
		{src: `mem(19635, ` + hex(fileVMA.GetStart()) + `u, 8)`, err: errText(fileVMA.GetStart(), 8)},
		{src: `cstring(19635, 16)`, err: errText(16, 1)},
		{src: `mem(19635, 0, 17000000)`, err: "length 17000000 is more than 16777216"},
		{src: `mem(-1, 0, 1)`, err: "pid -1 is negative"},
		{src: `mem(19635, -4096, 1)`, err: "address -4096 is negative"},
		{src: `cmdline(4294967296)`, err: "pid 4294967296 is more than 4294967295"},
		{src: `environ(42)`, err: "no task 42 in the dump"},
	} {
		v, err := mustCompile(t, c.src).Eval(context.Background(), d)
		if c.err != "" {
			if err == nil || !strings.HasSuffix(err.Error(), c.err) {
				t.Errorf("%s: got %v, %v, wanted error %q", c.src, v, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		var b bytes.Buffer
		(Output{Format: FormatJSON}).Write(&b, "", v)
		if got := strings.TrimSpace(b.String()); got != c.want {
			t.Errorf("%s got %s, wanted %s", c.src, got, c.want)
		}
	}
}

// TestMemZombie: a zombie has no memory; its cmdline and environ are
// empty and mem() says why.
func TestMemZombie(t *testing.T) {
	var dir string
	for _, d := range allDumps(t) {
		if filepath.Base(d) == "zdtm-zombie00" || filepath.Base(d) == "proc-tree" {
			dir = d
			break
		}
	}
	if dir == "" {
		t.Skip("no dump with a zombie")
	}
	d := mustOpen(t, dir)
	var zombies []uint32
	// CRIU stores a zombie as TASK_DEAD, without mm.
	evalJSON(t, d, `tasks.filter(t, !has(t.mm)).map(t, t.pid)`, &zombies)
	if len(zombies) == 0 {
		t.Fatalf("%s has no zombie", dir)
	}
	z := strconv.Itoa(int(zombies[0]))
	var got []any
	evalJSON(t, d, `[cmdline(`+z+`), environ(`+z+`), tasks.filter(t, t.pid == `+z+`)[0].cmdline]`, &got)
	if b, _ := json.Marshal(got); string(b) != `[[],[],[]]` {
		t.Errorf("zombie %s: got %s, wanted [[],[],[]]", z, b)
	}
	_, err := mustCompile(t, `mem(`+z+`, 4096, 1)`).Eval(context.Background(), d)
	want := (&mem.AddrError{PID: zombies[0], Addr: 4096, Err: mem.ErrNoMemory}).Error()
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("mem(%s, 4096, 1): %v, wanted %q", z, err, want)
	}
}

// FuzzMemArgs calls the memory functions with any arguments on a real
// dump: values or error values, never a panic.
func FuzzMemArgs(f *testing.F) {
	d := mustOpen(f, "../testdata/dumps/sleep-plain")
	m := d.memory()
	mm, err := m.MM(19635)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(int64(19635), mm.GetMmArgStart(), uint64(16))
	f.Add(int64(19635), mm.GetMmEnvEnd()-3, uint64(4096))
	f.Add(int64(-1), uint64(0), uint64(1<<40))
	f.Fuzz(func(t *testing.T, pid int64, addr, n uint64) {
		args := []ref.Val{types.Int(pid), types.Uint(addr), types.Uint(n)}
		for _, v := range []ref.Val{celMem(m, args), celCString(m, args), celStrings(m.Cmdline, args), celStrings(m.Environ, args)} {
			if v == nil {
				t.Fatal("nil value")
			}
		}
	})
}

// BenchmarkCmdline reads the command line of every task of a dump through
// CEL, on a Dump whose indexes are built.
func BenchmarkCmdline(b *testing.B) {
	d := mustOpen(b, "../testdata/dumps/pipes-fifo")
	q := mustCompile(b, `tasks.map(t, cmdline(t.pid))`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.Eval(context.Background(), d); err != nil {
			b.Fatal(err)
		}
	}
}
