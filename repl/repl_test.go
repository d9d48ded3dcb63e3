package repl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/critq/critq/query"
)

const (
	sleepPlain = "../testdata/dumps/sleep-plain"
	pipesFifo  = "../testdata/dumps/pipes-fifo"
)

func TestParse(t *testing.T) {
	tests := []struct {
		line string
		want Cmd
		err  string
	}{
		{"size(vmas)", Eval{Expr: "size(vmas)"}, ""},
		{"  tasks[0].comm  ", Eval{Expr: "tasks[0].comm"}, ""},
		{":help", Help{}, ""},
		{":h", Help{}, ""},
		{":vars", Vars{}, ""},
		{":type vmas[0]", TypeOf{Expr: "vmas[0]"}, ""},
		{":let n = size(vmas)", Let{Name: "n", Expr: "size(vmas)"}, ""},
		{":let eq = a == b", Let{Name: "eq", Expr: "a == b"}, ""},
		{":unlet n", Unlet{Name: "n"}, ""},
		{":load ../x y", Load{Path: "../x y"}, ""},
		{":dumps", Dumps{}, ""},
		{":dumps 2", Dumps{N: 2}, ""},
		{":format table", Format{Name: "table"}, ""},
		{":time on", Time{On: true}, ""},
		{":time off", Time{}, ""},
		{":quit", Quit{}, ""},
		{":q", Quit{}, ""},
		{":transform files: drop()", Transform{Rule: "files: drop()"}, ""},
		{":tr core: e.with({\n  \"tc.comm\": \"x\"})", Transform{Rule: "core: e.with({\n  \"tc.comm\": \"x\"})"}, ""},
		{":transform", nil, ":transform needs a rule\nusage: :transform KIND: EXPR"},
		{"", nil, "empty input"},
		{":", nil, "unknown command :"},
		{":bogus", nil, "unknown command :bogus"},
		{":t", nil, "ambiguous command :t: :type, :time, :transform"},
		{":let n", nil, ":let needs a name and an expression\nusage: :let NAME = EXPR"},
		{":let n == 1", nil, ":let needs a name and an expression"},
		{":type", nil, ":type needs an expression"},
		{":format xml", nil, `:format: unknown format "xml"`},
		{":time maybe", nil, ":time takes on or off"},
		{":dumps x", nil, `:dumps: "x" is not a dump number`},
		{":quit now", nil, `unexpected "now"`},
	}
	for _, tt := range tests {
		got, err := Parse(tt.line)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) error = %v, want %q", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %#v, %v, want %#v", tt.line, got, err, tt.want)
		}
	}
}

func mustEvaluator(t testing.TB, opts Options, paths ...string) *Evaluator {
	t.Helper()
	e, err := New(opts, paths...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// TestProcess runs a scripted session and checks each output.
func TestProcess(t *testing.T) {
	e := mustEvaluator(t, Options{Format: query.FormatJSON, ShowTypes: true}, sleepPlain)
	steps := []struct {
		line, out, err string
	}{
		{"size(vmas)", "36 : int\n", ""}, // as many as crit x mems lists
		{":let exec = vmas.filter(v, v.prot & PROT_EXEC)", "", ""},
		{"exec.size()", "5 : int\n", ""},
		{":type exec", "list(critq.views.vma)\n", ""},
		{":let n = exec.size()", "", ""},
		{":let exec = 42", "", "let exec: n uses it and no longer compiles"},
		{"n", "5 : int\n", ""},
		{":let exec = vmas.filter(v, v.prot & PROT_WRITE)", "", ""},
		{"n == vmas.filter(v, v.prot & PROT_WRITE).size()", "true : bool\n", ""},
		{":unlet exec", "", "unlet exec: used by n"},
		{"tasks[0].pdi", "", "ERROR: <repl>:1:9: undefined field 'pdi'; did you mean 'pid'?\n | tasks[0].pdi\n | ........^"},
		{":transform core: e.with({\"tc.comm\": \"zz\"})", "core-19635.img: entry 0\n    tc.comm: \"sleep\" -> \"zz\"\nCORE: 1 entries, 1 matched, 1 changed; nothing written\n", ""},
		{"tasks[0].comm", `"sleep"`, ""}, // nothing written
		{":load " + pipesFifo, "loaded " + pipesFifo, ""},
		{"tasks.map(t, t.comm)", `["pf-parent","pf-child"] : list(string)` + "\n", ""},
		{"n", "16 : int\n", ""}, // the binding follows the current dump (16 writable VMAs in x mems)
		{":dumps", "  1  " + sleepPlain + "\n* 2  " + pipesFifo + "\n", ""},
		{":dumps 1", "* 1  " + sleepPlain + "\n  2  " + pipesFifo + "\n", ""},
		{":load " + pipesFifo, "switched to " + pipesFifo + "\n", ""},
		{":dumps 3", "", ":dumps: there are 2 dumps"},
		{":format pretty", "", ""},
		{"vmas[0].prot", "1 : uint\n", ""}, // r--
		{":format table", "", ""},
		{":time on", "", ""},
		{":vars", "bindings:\n  exec             list(critq.views.vma)\n  n                int\n", ""},
		{":help", ":let NAME = EXPR", ""},
		{":quit", "", ""},
	}
	for _, s := range steps {
		cmd, err := Parse(s.line)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s.line, err)
		}
		out, exit, err := e.Process(context.Background(), cmd)
		switch {
		case s.err != "" && (err == nil || !strings.Contains(err.Error(), s.err)):
			t.Errorf("%s: error %v, want %q", s.line, err, s.err)
		case s.err == "" && err != nil:
			t.Errorf("%s: %v", s.line, err)
		case !strings.Contains(out, s.out):
			t.Errorf("%s: printed %q, want %q", s.line, out, s.out)
		case exit != (s.line == ":quit"):
			t.Errorf("%s: exit = %v", s.line, exit)
		}
	}
}

func TestTime(t *testing.T) {
	e := mustEvaluator(t, Options{Format: query.FormatJSON}, sleepPlain)
	for _, c := range []Cmd{Time{On: true}} {
		if _, _, err := e.Process(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	// pstree only: one image; then nothing new is read for the same view.
	for _, tt := range []struct{ expr, want string }{
		{"tasks.map(t, t.pid)", "1 image read)"},
		{"tasks.size()", "0 images read)"},
	} {
		out, _, err := e.Process(context.Background(), Eval{Expr: tt.expr})
		if err != nil || !strings.HasSuffix(strings.TrimSpace(out), tt.want) {
			t.Errorf("%s with :time on printed %q, %v; want a line ending %q", tt.expr, out, err, tt.want)
		}
	}
}

func TestCancel(t *testing.T) {
	e := mustEvaluator(t, Options{Compile: []query.Option{query.CostLimit(0)}}, sleepPlain)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := e.Process(ctx, Eval{Expr: "vmas.map(a, vmas.map(b, vmas.map(c, vmas.map(d, vmas.map(f, a.start))))).size()"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled evaluation: %v, want %v", err, context.DeadlineExceeded)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled evaluation took %v", d)
	}
	if out, _, err := e.Process(context.Background(), Eval{Expr: "size(tasks)"}); err != nil || out != "1\n" {
		t.Errorf("after a cancel: %q, %v", out, err)
	}
}

func TestComplete(t *testing.T) {
	e := mustEvaluator(t, Options{}, sleepPlain)
	if _, _, err := e.Process(context.Background(), Let{Name: "exec", Expr: "vmas.filter(v, v.prot & 4)"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line       string
		head       string
		want       []string // all of these, in this order
		notWant    string
		exactFirst string
	}{
		{"tasks[0].co", "tasks[0].", []string{"comm", "core"}, "pid", ""},
		{"tasks[0].core.tc.", "tasks[0].core.tc.", []string{"comm", "exit_code", "task_state"}, "", "blk_sigset"},
		{"size(tasks[0].core.tc.ta", "size(tasks[0].core.tc.", []string{"task_state"}, "", "task_state"},
		{"vmas.filter(v, v.pr", "vmas.filter(v, v.", []string{"prot"}, "", "prot"},
		{"tasks.map(t, t.vmas.filter(v, v.st", "tasks.map(t, t.vmas.filter(v, v.", []string{"start", "status"}, "", "start"},
		{"vmas.fil", "vmas.", []string{"filter"}, "", "filter"},
		{"ex", "", []string{"exec"}, "", ""},
		{"vm", "", []string{"vmas"}, "", "vmas"},
		{"1 + PROT_E", "1 + ", []string{"PROT_EXEC"}, "", "PROT_EXEC"},
		{"si", "", []string{"size"}, "", ""},
		{":ty", "", []string{":type"}, "", ":type"},
		{":tr", "", []string{":transform"}, "", ":transform"},
		{":transform fi", ":transform ", []string{"fifo", "fifo-data", "files"}, "core", "fifo"},
		{":tr  tcp", ":tr  ", []string{"tcp-stream"}, "", "tcp-stream"},
		{":transform files: e.re", ":transform files: e.", []string{"reg"}, "", "reg"},
		{":transform files: e.reg.fown.ui", ":transform files: e.reg.fown.", []string{"uid"}, "", "uid"},
		{":transform files: e.reg.", ":transform files: e.reg.", []string{"name", "with"}, "", "build_id"},
		{":transform mm: e.vmas[0].pr", ":transform mm: e.vmas[0].", []string{"prot"}, "", "prot"},
		{":transform files: e.type == RE", ":transform files: e.type == ", []string{"REG"}, "", "REG"},
		{":transform pipes-data: ex", ":transform pipes-data: ", []string{"extra"}, "", "extra"},
		{":transform files: dr", ":transform files: ", []string{"drop"}, "", "drop"},
		{":transform files: e.reg.name.x.", ":transform files: e.reg.name.x.", nil, "", ""},
		{":transform nope: e.", ":transform nope: e.", nil, "", ""},
		{":l", "", []string{":let", ":load"}, "", ":let"},
		{"exec[0].pa", "exec[0].", []string{"path"}, "", "path"},
		{"nosuch.x", "nosuch.", nil, "", ""},
		// Member functions whose receiver fits the type before the dot.
		{"tasks[0].core.tc.", "tasks[0].core.tc.", []string{"comm"}, "startsWith", ""},
		{"tasks[0].core.tc.get", "tasks[0].core.tc.", nil, "getDayOfMonth", ""},
		{"tasks[0].core.tc.s", "tasks[0].core.tc.", []string{"sigactions"}, "size", ""},
		{"tasks[0].core.tc.f", "tasks[0].core.tc.", nil, "filter", ""},
		{"tasks[0].comm.st", "tasks[0].comm.", []string{"startsWith"}, "", "startsWith"},
		{"tasks[0].comm.", "tasks[0].comm.", []string{"contains", "size", "startsWith"}, "filter", ""},
		{"tasks[0].comm.", "tasks[0].comm.", nil, "getDayOfMonth", ""},
		{"tasks[0].comm.", "tasks[0].comm.", nil, "comm", ""},
		{"vmas.", "vmas.", []string{"all", "exists", "filter", "map", "size", "sortBy"}, "startsWith", ""},
		{"vmas.", "vmas.", nil, "sum", ""},
		{"vmas.map(v, v.size).su", "vmas.map(v, v.size).", []string{"sum"}, "", "sum"},
		{"vmas[0].", "vmas[0].", []string{"end", "prot", "start"}, "filter", ""},
		{"vmas[0].s", "vmas[0].", []string{"shmid", "size", "start"}, "startsWith", ""},
		{"timestamp(0).getH", "timestamp(0).", []string{"getHours"}, "", "getHours"},
		{"exec.si", "exec.", []string{"size"}, "", "size"},
		{"cel.b", "cel.", []string{"bind"}, "", "bind"},
		{"math.gr", "math.", []string{"greatest"}, "", "greatest"},
		{"math.", "math.", []string{"greatest", "least"}, "filter", ""},
		{":transform files: e.reg.", ":transform files: e.reg.", nil, "startsWith", ""},
		{":transform files: e.reg.name.st", ":transform files: e.reg.name.", nil, "startsWith", ""},
	}
	for _, tt := range tests {
		head, got, tail := e.Complete(tt.line, len(tt.line))
		if head != tt.head || tail != "" {
			t.Errorf("Complete(%q) head %q tail %q, want head %q", tt.line, head, tail, tt.head)
		}
		if tt.exactFirst != "" && (len(got) == 0 || got[0] != tt.exactFirst) {
			t.Errorf("Complete(%q) = %q, want %q first", tt.line, got, tt.exactFirst)
		}
		i := 0
		for _, g := range got {
			if i < len(tt.want) && g == tt.want[i] {
				i++
			}
			if g == tt.notWant {
				t.Errorf("Complete(%q) offers %q", tt.line, g)
			}
		}
		if i < len(tt.want) {
			t.Errorf("Complete(%q) = %q, want %q among them", tt.line, got, tt.want)
		}
	}
	// The cursor inside the line: the tail is kept.
	if head, got, tail := e.Complete("size(tasks[0].co)", 16); head != "size(tasks[0]." || tail != ")" || len(got) == 0 {
		t.Errorf("Complete(mid-line) = %q %q %q", head, got, tail)
	}
}

// TestTransform previews rules in the REPL: the diff of a rename checked
// against crit's JSON of files.img, the counts, errors with a caret, and
// that nothing is written.
func TestTransform(t *testing.T) {
	golden, err := os.ReadFile(sleepPlain + "/golden/files.img.json")
	if err != nil {
		t.Fatal(err)
	}
	var img struct {
		Entries []struct {
			Type string
			Reg  struct{ Name string }
		}
	}
	if err := json.Unmarshal(golden, &img); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	regs := 0
	for i, ent := range img.Entries {
		if ent.Type == "REG" {
			fmt.Fprintf(&want, "files.img: entry %d\n    reg.name: %q -> %q\n", i, ent.Reg.Name, "/x"+ent.Reg.Name)
			regs++
		}
	}
	fmt.Fprintf(&want, "FILES: %d entries, %d matched, %d changed; nothing written\n", len(img.Entries), regs, regs)
	before, err := os.ReadFile(sleepPlain + "/files.img")
	if err != nil {
		t.Fatal(err)
	}

	e := mustEvaluator(t, Options{Format: query.FormatJSON}, sleepPlain)
	for _, tt := range []struct {
		rule, out, err string
	}{
		{`files: e.type == REG ? e.with({"reg.name": "/x" + e.reg.name}) : e`, want.String(), ""},
		{`files: e.type == REG && e.reg.name == "/dev/null" ? drop() : e`, "files.img: entry 16: dropped\nfiles.img: entry 17: dropped\n" +
			"warning: ", ""},
		{`files: e.type == UNIXSK ? drop() : e`, "FILES: 20 entries, 0 matched, 0 changed; nothing written\n", ""},
		{`files: e.with({"reg.nam": 1})`, "", "ERROR: <repl>:1:9: with(): reg.nam: no field \"nam\" in critq.images.reg_file_entry"},
		{`core: 1`, "", "ERROR: <repl>:1:1: the rule returns int: it must return the entry (e, e.with({...})) or drop(), a critq.images.core_entry\n | 1\n | ^"},
		{`filez: e`, "", `:transform: unknown image kind "filez"`},
		{`e.with({})`, "", ":transform: a rule is KIND: EXPR"},
		{`files: e.type == REG ? e.with({"reg.pos": int(e.reg.pos) - 1}) : e`, "", sleepPlain + ": files.img: entry 0 at offset 0x"}, // named like a query's errors
	} {
		out, _, err := e.Process(context.Background(), Transform{Rule: tt.rule})
		switch {
		case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
			t.Errorf(":transform %s: error %v, want %q", tt.rule, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf(":transform %s: %v", tt.rule, err)
		case tt.err == "" && !strings.HasPrefix(out, tt.out):
			t.Errorf(":transform %s printed\n%s\nwant\n%s", tt.rule, out, tt.out)
		}
	}
	after, err := os.ReadFile(sleepPlain + "/files.img")
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("files.img changed by :transform (%v)", err)
	}
	empty := mustEvaluator(t, Options{})
	if _, _, err := empty.Process(context.Background(), Transform{Rule: "files: e"}); !errors.Is(err, ErrNoDump) {
		t.Errorf(":transform without a dump: %v, want %v", err, ErrNoDump)
	}
}

// FuzzComplete checks that Parse and Complete never panic, whatever the
// line and cursor.
func FuzzComplete(f *testing.F) {
	e := mustEvaluator(f, Options{}, sleepPlain)
	for _, s := range []string{"tasks[0].core.tc.", "vmas.filter(v, v.pr", "tasks.map(t, t.vmas.filter(v, (v.", ":load ../", ":let x = [", "((((.", "a)].b",
		":transform files: e.reg.fown.", ":tr mm: e.vmas[0].", ":transform fi"} {
		f.Add(s, len(s))
	}
	f.Fuzz(func(t *testing.T, line string, pos int) {
		if len(line) > 200 {
			return
		}
		_, _ = Parse(line)
		head, _, tail := e.Complete(line, pos)
		if !strings.HasPrefix(line, head) || !strings.HasSuffix(line, tail) || len(head)+len(tail) > len(line) {
			t.Errorf("Complete(%q, %d): head %q and tail %q do not frame the line", line, pos, head, tail)
		}
	})
}

func BenchmarkComplete(b *testing.B) {
	e := mustEvaluator(b, Options{}, sleepPlain)
	for _, line := range []string{"tasks[0].core.tc.", "vmas.filter(v, v.pr", "PROT_"} {
		b.Run(line, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, c, _ := e.Complete(line, len(line)); len(c) == 0 {
					b.Fatal("no completions")
				}
			}
		})
	}
}

func BenchmarkProcess(b *testing.B) {
	e := mustEvaluator(b, Options{Format: query.FormatJSON}, sleepPlain)
	cmd := Eval{Expr: "vmas.filter(v, v.prot & PROT_EXEC).size()"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.Process(context.Background(), cmd); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransform previews a rename of every regular file of
// sleep-plain: compile, evaluation over files.img and the diff.
func BenchmarkTransform(b *testing.B) {
	e := mustEvaluator(b, Options{}, sleepPlain)
	cmd := Transform{Rule: `files: e.type == REG ? e.with({"reg.name": "/x" + e.reg.name}) : e`}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.Process(context.Background(), cmd); err != nil {
			b.Fatal(err)
		}
	}
}
