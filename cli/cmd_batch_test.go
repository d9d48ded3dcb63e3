package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/critq/critq/batch"
	"github.com/critq/critq/query"
)

// TestBatchCookbook runs the cookbook as one script over every dump in one
// command and checks that every (dump, query) record is there, in order,
// and holds what the one-shot evaluation of that recipe gives.
func TestBatchCookbook(t *testing.T) {
	const script = "../examples/cookbook.txt"
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := batch.Parse(script, src)
	if err != nil {
		t.Fatal(err)
	}
	dirs := critDumpDirs(t)
	args := append([]string{"-f", script, "-j", "2"}, dirs...)
	out, errs, code := runCLI(t, nil, args...)
	if code != exitOK || errs != "" {
		t.Fatalf("critq -f %s (%d dumps): code %d, stderr %q", script, len(dirs), code, errs)
	}
	queries := sc.Queries()
	type record struct {
		Dump, Query string
		Value       json.RawMessage
	}
	var recs []record
	rd := bufio.NewScanner(strings.NewReader(out))
	rd.Buffer(nil, 64<<20)
	for rd.Scan() {
		var r record
		if err := json.Unmarshal(rd.Bytes(), &r); err != nil {
			t.Fatalf("record %d: %v: %.200s", len(recs), err, rd.Text())
		}
		recs = append(recs, r)
	}
	if len(recs) != len(dirs)*len(queries) {
		t.Fatalf("critq -f cookbook: %d records, wanted %d dumps x %d queries", len(recs), len(dirs), len(queries))
	}
	compiled := make([]*query.Query, len(queries))
	for i, st := range queries {
		if compiled[i], err = query.Compile(st.Expr); err != nil {
			t.Fatalf("%s: %v", st.Name, err)
		}
	}
	for di, dir := range dirs {
		d, err := query.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		for qi, st := range queries {
			r := recs[di*len(queries)+qi]
			if r.Dump != dir || r.Query != st.Name {
				t.Fatalf("record %d is (%s, %s), wanted (%s, %s)", di*len(queries)+qi, r.Dump, r.Query, dir, st.Name)
			}
			v, err := compiled[qi].Eval(context.Background(), d)
			if err != nil {
				t.Fatalf("%s: %s: %v", dir, st.Name, err)
			}
			var want bytes.Buffer
			if err := (query.Output{Format: query.FormatJSON}).Write(&want, "", v); err != nil {
				t.Fatal(err)
			}
			if got := string(r.Value); got != strings.TrimSpace(want.String()) {
				t.Errorf("%s: %s: batch gave %.200s, one-shot %.200s", dir, st.Name, got, want.String())
			}
		}
	}
}

func TestBatchCommand(t *testing.T) {
	const d = "../testdata/dumps/sleep-plain"
	const d2 = "../testdata/dumps/pipes-fifo"
	bad := transformDump(t, "sleep-plain")
	if err := os.WriteFile(filepath.Join(bad, "pstree.img"), []byte("\x01\x02"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.critq", "# tasks and memory\nlet exec = vmas.filter(v, v.prot & PROT_EXEC)\ntasks: tasks.size()\nexec: exec.size()\ncomm: tasks[0].comm\n")
	list := write("list.critq", "pids: tasks.map(t,\n  t.pid)\nrule files: e\n")
	badExpr := write("bad.critq", "let x = 1\n\nn: tasks.map(t,\n    t.pdi)\n")
	badLet := write("badlet.critq", "let exec = vmas\nn: exec.size()\nlet exec = 2\n")
	noq := write("noq.critq", "let x = 1\n")
	for _, tc := range []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout string
		stderr string
	}{
		{"ndjson", []string{"-f", good, d}, "", exitOK,
			`{"dump":"` + d + `","query":"tasks","value":1}` + "\n" + `{"dump":"` + d + `","query":"exec","value":5}` + "\n" + `{"dump":"` + d + `","query":"comm","value":"sleep"}` + "\n", ""},
		{"json", []string{"--format", "json", "-f", good, d, d2}, "", exitOK,
			"[\n" + `{"dump":"` + d + `","query":"tasks","value":1},` + "\n", ""},
		{"table", []string{"batch", "--format", "table", good, d, d2}, "", exitOK,
			"DUMP                           tasks  exec  comm\n" +
				d + "  1      5     sleep\n" +
				d2 + "   2      10    pf-parent\n", ""},
		{"stdin", []string{"-f", "-", d}, "n: tasks.size()\n", exitOK, `"value":1}`, ""},
		{"multi-line and rule", []string{"-f", list, d}, "", exitOK,
			`"value":[19635]}` + "\n" + `{"dump":"` + d + `","rule":"` + list + `:3","value":{"kind":"FILES","entries":20,"matched":0,"changed":0,"dropped":0,"changes":[]}}` + "\n", ""},
		{"rules only", []string{"--format", "table", "-f", "-", d}, "rule core: e.with({\"tc.comm\": \"x\"})\n", exitOK,
			"DUMP                           <stdin>:1\n" + d + `  {"kind":"CORE","entries":1,"matched":1,"changed":1,"dropped":0,"changes":[{"image":"core-19635.img","entry":0,"field":"tc.comm","old":"sleep","new":"x"}]}`, ""},
		{"bad dump skipped", []string{"-f", good, "-j", "2", d, bad, d2}, "", exitBadImage, `{"dump":"` + d2 + `","query":"comm","value":"pf-parent"}`, "pstree.img"},
		{"missing dump", []string{"-f", good, "/nonexistent/dump", d}, "", exitBadImage, `"value":"sleep"`, "nonexistent"},
		{"eval error", []string{"-f", "-", d, d2}, "n: tasks[1].pid\n", exitError, `"dump":"` + d2, "critq: query n: " + d + ": "},
		{"compile error", []string{"-f", badExpr, d}, "", exitCompile, "",
			badExpr + ":4:6: undefined field 'pdi'; did you mean 'pid'?"},
		{"caret", []string{"-f", badExpr, d}, "", exitCompile, "", " |     t.pdi)\n | .....^\n"},
		{"let twice", []string{"-f", badLet, d}, "", exitCompile, "", "badlet.critq:3:1: let exec is already defined at line 1\n | let exec = 2\n | ^\n"},
		{"parse error", []string{"-f", "-", d}, "size(vmas)\n", exitCompile, "", "<stdin>:1:5: expected ':'"},
		{"no queries", []string{"-f", noq, d}, "", exitUsage, "", "no named queries (NAME: EXPR) or rules (rule KIND: EXPR)"},
		{"bad format", []string{"-f", good, "--format", "xml", d}, "", exitUsage, "", "unknown format"},
		{"no script", []string{"-f", filepath.Join(dir, "none"), d}, "", exitUsage, "", "no such file"},
		{"help", []string{"batch", "-h"}, "", exitOK, "usage: critq batch", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			c := &cli{stdin: strings.NewReader(tc.stdin), stdout: &out, stderr: &errb, env: func(string) string { return "" }}
			code := c.main(tc.args)
			if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("critq %q: got code %d, stdout %q, stderr %q; wanted code %d, stdout with %q, stderr with %q",
					tc.args, code, out.String(), errb.String(), tc.code, tc.stdout, tc.stderr)
			}
			if e := errb.String(); e != "" && (!strings.HasSuffix(e, "\n") || strings.HasSuffix(e, "\n\n")) {
				t.Errorf("critq %q: stderr %q does not end in exactly one newline", tc.args, e)
			}
		})
	}
}

// TestBatchJSONArray checks that --format json is one valid JSON array.
func TestBatchJSONArray(t *testing.T) {
	dirs, _ := filepath.Glob("../testdata/dumps/*")
	out, errs, code := runCLI(t, nil, append([]string{"-f", "../examples/cookbook.txt", "--format", "json"}, dirs...)...)
	if code != exitOK {
		t.Fatalf("code %d: %s", code, errs)
	}
	var recs []map[string]any
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("--format json: %v", err)
	}
	for _, r := range recs {
		if len(r) != 3 || r["dump"] == nil || r["query"] == nil {
			t.Fatalf("record %v: wanted dump, query and value", r)
		}
	}
}

// lockedBuffer is a buffer the progress ticker and a test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until w shows want, for at most 10 s.
func waitFor(t *testing.T, w fmt.Stringer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if strings.Contains(w.String(), want) {
			return
		}
	}
	t.Fatalf("progress never wrote %q; it wrote %q", want, w.String())
}

func TestProgress(t *testing.T) {
	record := func(w io.Writer) func() error {
		return func() error { _, err := io.WriteString(w, "REC\n"); return err }
	}
	t.Run("off", func(t *testing.T) {
		var b lockedBuffer
		p := startProgress(&b, false, 3, 0, time.Millisecond)
		p.step(true)
		time.Sleep(10 * time.Millisecond)
		p.write(record(&b))
		p.stop()
		if got := b.String(); got != "REC\n" {
			t.Errorf("progress on a stderr that is no terminal: wrote %q, wanted only the record", got)
		}
	})
	t.Run("under a second", func(t *testing.T) {
		var b lockedBuffer
		p := startProgress(&b, true, 3, time.Hour, time.Millisecond)
		p.step(false)
		time.Sleep(10 * time.Millisecond)
		p.stop()
		if got := b.String(); got != "" {
			t.Errorf("progress before its delay wrote %q", got)
		}
	})
	t.Run("one slow dump", func(t *testing.T) {
		// Nothing finishes: the ticker draws the line all the same.
		var b lockedBuffer
		p := startProgress(&b, true, 1, 0, time.Millisecond)
		waitFor(t, &b, "\r\x1b[Kcritq: 0/1 dumps, 0 failed, 0.")
		p.stop()
		if got := b.String(); !strings.HasSuffix(got, "s\r\x1b[K") {
			t.Errorf("stop left %q: the line is not erased", got)
		}
	})
	t.Run("records erase the line", func(t *testing.T) {
		var b lockedBuffer
		p := startProgress(&b, true, 3, 0, time.Hour) // never ticks
		p.step(false)
		p.draw() // as a tick would
		p.step(true)
		p.write(record(&b))
		p.stop()
		want := "\r\x1b[Kcritq: 1/3 dumps, 0 failed, 0.?s\r\x1b[KREC\n\r\x1b[Kcritq: 2/3 dumps, 1 failed, 0.?s\r\x1b[K"
		if got := b.String(); !matchDigits(got, want) {
			t.Errorf("progress around a record wrote\n%q, wanted\n%q", got, want)
		}
	})
}

// matchDigits reports whether got is want with each '?' a digit.
func matchDigits(got, want string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range len(want) {
		if want[i] != got[i] && !(want[i] == '?' && got[i] >= '0' && got[i] <= '9') {
			return false
		}
	}
	return true
}

// TestBatchRecordsJSON runs a script of a query and a rule, its path and
// the dump's not UTF-8 and full of quotes, and checks that every record is
// valid JSON whose strings are the names given, bytes that are not UTF-8
// replaced, & < > kept as they are (as in query's output).
func TestBatchRecordsJSON(t *testing.T) {
	src, err := filepath.Abs("../testdata/dumps/sleep-plain")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "s\xff\"\\\t<&")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("file system refuses the name: %v", err)
	}
	d := filepath.Join(dir, "d\xfe\x01")
	if err := os.Symlink(src, d); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "q.critq")
	if err := os.WriteFile(script, []byte("n: tasks.size()\nrule core: e\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"ndjson", "json"} {
		out, errs, code := runCLI(t, nil, "-f", script, "--format", format, d)
		if code != exitOK {
			t.Fatalf("critq -f %q --format %s: code %d: %s", script, format, code, errs)
		}
		var recs []map[string]any
		if format == "json" {
			if err := json.Unmarshal([]byte(out), &recs); err != nil {
				t.Fatalf("--format json: %v: %q", err, out)
			}
		} else {
			for line := range strings.Lines(out) {
				var r map[string]any
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("--format ndjson: %v: %q", err, line)
				}
				recs = append(recs, r)
			}
		}
		if !json.Valid([]byte(out)) && format == "json" || !utf8.ValidString(out) || !strings.Contains(out, `<&`) {
			t.Errorf("--format %s: output is not valid UTF-8 JSON: %q", format, out)
		}
		if len(recs) != 2 {
			t.Fatalf("--format %s: %d records, wanted 2: %q", format, len(recs), out)
		}
		wantDump := strings.ToValidUTF8(d, "\ufffd")
		if recs[0]["dump"] != wantDump || recs[0]["query"] != "n" || recs[1]["rule"] != strings.ToValidUTF8(script, "\ufffd")+":2" {
			t.Errorf("--format %s: records %v, wanted dump %q, query n, rule %q", format, recs, wantDump, script+":2")
		}
	}
}
