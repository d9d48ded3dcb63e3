package cli

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peterh/liner"

	"github.com/critq/critq/query"
	"github.com/critq/critq/repl"
)

var updateRepl = flag.Bool("update-repl", false, "rewrite testdata/repl-transcript.golden")

// scripted is a line source that plays a transcript: each line is what the
// user types. A line ending in a tab asks for completions (recorded in the
// transcript, as liner prints them); "^C" is Ctrl-C at the prompt; a line
// after "!interrupt " is typed, then Ctrl-C is pressed while it runs.
type scripted struct {
	t     *testing.T
	lines []string
	ev    *repl.Evaluator
	log   io.Writer
	ints  chan os.Signal
}

func (s *scripted) Prompt(p string) (string, error) {
	for len(s.lines) > 0 {
		line := s.lines[0]
		s.lines = s.lines[1:]
		shown := strings.TrimSuffix(line, "\t")
		if rest, ok := strings.CutPrefix(line, "!interrupt "); ok {
			shown = rest + "    [Ctrl-C after 300ms]"
		}
		fmt.Fprintf(s.log, "%s%s\n", p, shown)
		switch {
		case strings.HasSuffix(line, "\t"):
			_, cands, _ := s.ev.Complete(line[:len(line)-1], len(line)-1)
			fmt.Fprintf(s.log, "[tab] %s\n", strings.Join(cands, "  "))
			continue
		case line == "^C":
			return "", liner.ErrPromptAborted
		case strings.HasPrefix(line, "!interrupt "):
			go func() {
				time.Sleep(300 * time.Millisecond)
				s.ints <- os.Interrupt
			}()
			return strings.TrimPrefix(line, "!interrupt "), nil
		}
		return line, nil
	}
	return "", io.EOF
}

func (s *scripted) AppendHistory(string) {}

// TestReplTranscript plays a session in process and compares what it
// printed with testdata/repl-transcript.golden (-update-repl rewrites it).
// The numbers were checked against crit's golden x mems of sleep-plain
// (36 VMAs, 5 of them executable).
func TestReplTranscript(t *testing.T) {
	ev, err := repl.New(repl.Options{Format: query.FormatJSON, ShowTypes: true, Compile: []query.Option{query.CostLimit(0)}},
		"../testdata/dumps/sleep-plain")
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	var out bytes.Buffer
	ints := make(chan os.Signal, 1)
	src := &scripted{t: t, ev: ev, log: &out, ints: ints, lines: []string{
		"size(vmas)",
		":let exec = vmas.filter(v,",
		"    v.prot & PROT_EXEC)",
		"exec.size()",
		"exec.map(v, v.path)[0]",
		"tasks[0].co\t",
		"tasks[0].core.tc.task_state",
		"tasks[0].pdi + 1",
		":let n = exec.size()",
		":let exec = 42",
		"n",
		"^C",
		"!interrupt vmas.map(a, vmas.map(b, vmas.map(c, vmas.map(d, vmas.map(e, a.start))))).size()",
		"tasks.map(t, t.comm)",
		":type exec[0]",
		":tr\t",
		":transform files: e.re\t",
		`:transform files: e.type == REG ? e.with({"reg.name": "/x" + e.reg.name}) : e`,
		`:transform files: e.with({"reg.nam": 1})`,
		":transform core: e.with({",
		`    "tc.comm": "zz"})`,
		":quit",
		"tasks.size()",
	}}
	s := &session{ev: ev, in: src, interactive: true, stdout: &out, stderr: &out, interrupts: ints}
	start := time.Now()
	if err := s.run(); err != nil {
		t.Fatalf("session: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the interrupted evaluation was not stopped: the session took %v", d)
	}
	golden := filepath.Join("testdata", "repl-transcript.golden")
	if *updateRepl {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != string(want) {
		t.Errorf("transcript:\n%s\nwant (%s):\n%s", got, golden, want)
	}
}

// TestReplPipe runs critq repl with lines on a standard input that is not a
// terminal: the same evaluator, results on stdout, errors on stderr, the
// status of the first failure.
func TestReplPipe(t *testing.T) {
	const d = "../testdata/dumps/sleep-plain"
	for _, tc := range []struct {
		name, stdin    string
		code           int
		stdout, stderr string
	}{
		{"results", "size(vmas)\n:let n = tasks.size()\nn + 1\n", exitOK, "36\n2\n", ""},
		{"multi-line", "tasks.map(t,\n  t.comm)\n", exitOK, "[\"sleep\"]\n", ""},
		{"no newline at the end", "tasks.size()", exitOK, "1\n", ""},
		{"compile error goes on", "tasks.pdi\ntasks.size()\n", exitCompile, "1\n", "critq: ERROR: <repl>:1:6: type 'list(critq.views.task)' does not support field selection\n | tasks.pdi\n | .....^\n"},
		{"eval error", "tasks[3]\n", exitError, "", "index out of bounds: 3"},
		{"bad command", ":bogus\n", exitUsage, "", "unknown command :bogus"},
		{"quit", ":quit\ntasks[3]\n", exitOK, "", ""},
		{"format", ":format table\nvmas.filter(v, v.prot & 4).map(v, {'pid': v.pid})\n", exitOK, "PID\n19635\n19635\n", ""},
		{"transform", ":transform core: e.with({\"tc.comm\": \"zz\"})\ntasks[0].comm\n", exitOK,
			"core-19635.img: entry 0\n    tc.comm: \"sleep\" -> \"zz\"\nCORE: 1 entries, 1 matched, 1 changed; nothing written\n\"sleep\"\n", ""},
		{"transform error", ":transform filez: e\n", exitCompile, "", "critq: :transform: unknown image kind \"filez\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			c := &cli{stdin: strings.NewReader(tc.stdin), stdout: &out, stderr: &errb, env: func(string) string { return "" }}
			code := c.main([]string{"repl", d})
			if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("critq repl <<< %q: code %d, stdout %q, stderr %q; want %d, %q, %q",
					tc.stdin, code, out.String(), errb.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
	_, errs, code := runCLI(t, nil, "repl", "/nonexistent/dump")
	if code != exitBadImage || !strings.Contains(errs, "nonexistent") {
		t.Errorf("critq repl /nonexistent/dump: code %d, stderr %q", code, errs)
	}
}

func TestHistoryPath(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_STATE_HOME": "/s", "HOME": "/h"}, "/s/critq/history"},
		{map[string]string{"XDG_STATE_HOME": "rel", "HOME": "/h"}, "/h/.local/state/critq/history"},
		{map[string]string{"HOME": "/h"}, "/h/.local/state/critq/history"},
		{map[string]string{}, ""},
	} {
		if got := historyPath(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("historyPath(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}
