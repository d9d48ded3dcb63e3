package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"

	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/critq/critq/batch"
	"github.com/critq/critq/query"
)

// TestBatchCookbook runs the cookbook as one script over every dump in one
// command and checks that every (dump, query) record is there, in order,
// and holds what the one-shot evaluation of that recipe gives.
func TestBatchCookbook(t *testing.T) {
	const script = "../../examples/cookbook.txt"
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
	const d = "../../testdata/dumps/sleep-plain"
	const d2 = "../../testdata/dumps/pipes-fifo"
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
			"DUMP                              tasks  exec  comm\n" +
				d + "  1      5     sleep\n" +
				d2 + "   2      10    pf-parent\n", ""},
		{"stdin", []string{"-f", "-", d}, "n: tasks.size()\n", exitOK, `"value":1}`, ""},
		{"multi-line and rule", []string{"-f", list, d}, "", exitOK,
			`"value":[19635]}` + "\n" + `{"dump":"` + d + `","rule":"` + list + `:3","value":{"kind":"FILES","entries":20,"matched":0,"changed":0,"dropped":0,"changes":[]}}` + "\n", ""},
		{"rules only", []string{"--format", "table", "-f", "-", d}, "rule core: e.with({\"tc.comm\": \"x\"})\n", exitOK,
			"DUMP                              <stdin>:1\n" + d + `  {"kind":"CORE","entries":1,"matched":1,"changed":1,"dropped":0,"changes":[{"image":"core-19635.img","entry":0,"field":"tc.comm","old":"sleep","new":"x"}]}`, ""},
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
		{"help", []string{"batch", "-h"}, "", exitOK, "Usage: critq batch", ""},
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
	dirs, _ := filepath.Glob("../../testdata/dumps/*")
	out, errs, code := runCLI(t, nil, append([]string{"-f", "../../examples/cookbook.txt", "--format", "json"}, dirs...)...)
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

func TestProgress(t *testing.T) {
	var b strings.Builder
	p := newProgress(&b, false, 3)
	p.start = p.start.Add(-2 * time.Second)
	p.step(false)
	p.clear()
	if b.Len() != 0 {
		t.Errorf("progress on a stderr that is no terminal wrote %q", b.String())
	}
	p = newProgress(&b, true, 3)
	p.step(false) // under a second: nothing
	p.start = p.start.Add(-2 * time.Second)
	p.step(true)
	p.clear()
	if got := b.String(); !strings.HasPrefix(got, "\r\x1b[Kcritq: 2/3 dumps, 1 failed, 2.") || !strings.HasSuffix(got, "s\r\x1b[K") {
		t.Errorf("progress wrote %q", got)
	}
}
