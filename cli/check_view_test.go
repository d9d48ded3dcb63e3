package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/critq/critq/internal/testcorpus"
)

// viewProblem is an element of the problems view, and a problem of critq
// check's JSON report with its criu field read as consequence.
type viewProblem struct {
	Check       string `json:"check"`
	PID         uint32 `json:"pid"`
	Image       string `json:"image"`
	Entry       string `json:"entry"`
	Blocking    bool   `json:"blocking"`
	Message     string `json:"message"`
	Consequence string `json:"consequence"`
}

// TestProblemsView: the problems view gives, in a query and in a batch
// script, the problems critq check --format json reports, for every dump
// of the corpus against the real host under a root folder (an empty one,
// where every file is missing, and one holding the sleep-plain dump's
// working directory), with --criu-options reaching the view as it reaches
// check.
func TestProblemsView(t *testing.T) {
	empty := t.TempDir()
	withCwd := t.TempDir()
	if err := os.MkdirAll(filepath.Join(withCwd, "srv/critq-cases/run/sleep-plain"), 0o755); err != nil {
		t.Fatal(err)
	}
	dumps := testcorpus.Dumps(t)
	if testing.Short() {
		dumps = dumps[:min(len(dumps), 5)]
	}
	script := filepath.Join(t.TempDir(), "s.txt")
	if err := os.WriteFile(script, []byte("p: problems\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dumps {
		for _, args := range [][]string{{"--root", empty}, {"--root", withCwd, "--criu-options="}} {
			out, stderr, code := runCLI(t, nil, append(append([]string{"check", "--format", "json"}, args...), d)...)
			if code > exitFalse {
				t.Errorf("%s: check exit %d: %s", d, code, stderr)
				continue
			}
			var rep struct {
				Problems []struct {
					viewProblem
					CRIU string `json:"criu"`
				} `json:"problems"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%s: %v: %s", d, err, out)
			}
			want := []viewProblem{}
			for _, p := range rep.Problems {
				p.Consequence = p.CRIU
				want = append(want, p.viewProblem)
			}
			qout, stderr, code := runCLI(t, nil, append(append([]string{"query", "--format", "json", "--partial"}, args...), "problems", d)...)
			if code != 0 {
				t.Errorf("%s: query exit %d: %s", d, code, stderr)
				continue
			}
			var got []viewProblem
			if err := json.Unmarshal([]byte(qout), &got); err != nil {
				t.Fatalf("%s: %v: %s", d, err, qout)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %q: the view gives\n%+v\ncheck gives\n%+v", d, args, got, want)
			}
			bout, stderr, code := runCLI(t, nil, append(append([]string{"batch"}, args...), script, d)...)
			if code != 0 {
				t.Errorf("%s: batch exit %d: %s", d, code, stderr)
				continue
			}
			var rec struct {
				Value []viewProblem `json:"value"`
			}
			if err := json.Unmarshal([]byte(bout), &rec); err != nil {
				t.Fatalf("%s: %v: %s", d, err, bout)
			}
			if !reflect.DeepEqual(rec.Value, want) && !(len(rec.Value) == 0 && len(want) == 0) {
				t.Errorf("%s %q: batch gives\n%+v\ncheck gives\n%+v", d, args, rec.Value, want)
			}
			if len(want) > 0 {
				n++
			}
		}
	}
	t.Logf("%d dumps, %d runs with problems compared", len(dumps), n)
	if n == 0 {
		t.Error("no dump had a problem: the comparison compared nothing")
	}
	// The view is listed with the other views.
	out, _, _ := runCLI(t, nil, "help", "vars")
	if !strings.Contains(out, "problems") || !strings.Contains(out, "critq.views.problem") {
		t.Errorf("help vars does not list problems:\n%s", out)
	}
	if out, _, _ := runCLI(t, nil, "help", "problem"); !strings.Contains(out, "consequence string") {
		t.Errorf("help problem:\n%s", out)
	}
	// The REPL takes --root to the view too: it gives what the query
	// gives, in the empty root and in the one with the working directory.
	const sleep = "../testdata/dumps/sleep-plain"
	for _, root := range []string{empty, withCwd} {
		want, _, _ := runCLI(t, nil, "--root", root, "problems.filter(p, p.blocking).size()", sleep)
		got, stderr, code := runCrit([]byte("problems.filter(p, p.blocking).size()\n"), "repl", "--root", root, sleep)
		if code != 0 || strings.TrimSpace(string(got)) != strings.TrimSpace(want) || strings.TrimSpace(want) == "0" {
			t.Errorf("repl --root %s: %q (exit %d, %s); query: %q", root, got, code, stderr, want)
		}
	}
	// A filter over it, as the issue asks.
	out, _, code := runCLI(t, nil, "--root", empty, "-e", "problems.exists(p, p.blocking && p.check == 'cwd' && p.pid == 19635u && p.image == 'fs-19635.img')", "../testdata/dumps/sleep-plain")
	if code != 0 || strings.TrimSpace(out) != "true" {
		t.Errorf("filter: exit %d, %q", code, out)
	}
}
