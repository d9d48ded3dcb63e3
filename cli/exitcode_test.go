package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/batch"
	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/export"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/mem"
	"github.com/critq/critq/query"
	"github.com/critq/critq/repl"
	"github.com/critq/critq/rules"
)

// TestExitCode checks the one mapping of errors to exit codes, each error
// also wrapped as commands wrap them (fmt.Errorf with %w).
func TestExitCode(t *testing.T) {
	bad := &codec.Error{File: "files.img", Kind: "FILES", Entry: 3, Offset: 8, Err: errors.New("proto: cannot parse")}
	for _, tt := range []struct {
		name    string
		err     error
		untyped int
		want    int
	}{
		{"nil", nil, exitError, exitOK},
		{"given code", withCode(exitUsage, errors.New("x")), exitError, exitUsage},
		{"silent", silentError{code: exitFalse}, exitError, exitFalse},
		{"aborted read beats a given code", withCode(exitBadImage, fmt.Errorf("files.img: %w", dump.ErrAborted)), exitError, exitError},
		{"compile error", &query.CompileError{Msg: "undeclared reference"}, exitError, exitCompile},
		{"binding error", &query.BindingError{Name: "x", Err: errors.New("no")}, exitError, exitCompile},
		{"rule error", &rules.RuleError{Where: "rule 1", Err: &query.CompileError{Msg: "m"}}, exitError, exitCompile},
		{"script error", &batch.ScriptError{File: "s", Line: 1, Col: 1, Msg: "m"}, exitError, exitCompile},
		{"REPL parse error", &repl.ParseError{}, exitError, exitUsage},
		{"evaluation error", &query.EvalError{Dump: "d", Err: errors.New("division by zero")}, exitBadImage, exitError},
		{"rule evaluation error", &query.EvalError{Dump: "d", Err: &rules.RuleEvalError{Where: "rule 1", File: "files.img", Err: errors.New("x")}}, exitBadImage, exitError},
		{"bare rule evaluation error", &rules.RuleEvalError{Where: "rule 1", File: "files.img", Err: errors.New("x")}, exitBadImage, exitError},
		{"deadline", fmt.Errorf("stopped: %w", context.DeadlineExceeded), exitBadImage, exitError},
		{"cancelled", context.Canceled, exitBadImage, exitError},
		{"dump error", &query.DumpError{Dump: "d", Err: bad}, exitError, exitBadImage},
		{"codec error", bad, exitError, exitBadImage},
		{"partial export", &export.PartialError{}, exitError, exitBadImage},
		{"unmapped memory", fmt.Errorf("pid 1: %w", mem.ErrUnmapped), exitBadImage, exitError},
		{"memory not dumped", mem.ErrNotDumped, exitBadImage, exitError},
		{"no memory", mem.ErrNoMemory, exitBadImage, exitError},
		{"untyped: the caller's code", errors.New("raw"), exitBadImage, exitBadImage},
		{"untyped: the caller's code (2)", errors.New("raw"), exitError, exitError},
	} {
		for _, err := range []error{tt.err, wrapped(tt.err)} {
			if got := exitCode(err, tt.untyped); got != tt.want {
				t.Errorf("%s: exitCode(%v) = %d, wanted %d", tt.name, err, got, tt.want)
			}
		}
	}
}

func wrapped(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("context: %w", err)
}

// TestExitCodesAcrossCommands gives the same damaged dump, and the same
// failing rule, to every command that reads images or applies rules: a
// bad image is exit 4 and a failing evaluation exit 5 whichever command
// meets it, each reported once, naming the dump.
func TestExitCodesAcrossCommands(t *testing.T) {
	d := filepath.Join(t.TempDir(), "bad")
	testcorpus.CopyFiles(t, "../testdata/dumps/sleep-plain", d)
	p := filepath.Join(d, "files.img")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[12], b[13] = 0xff, 0xff // inside the first entry: it no longer decodes
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	good := "../testdata/dumps/sleep-plain"
	script := filepath.Join(t.TempDir(), "s.critq")
	if err := os.WriteFile(script, []byte("rule files: e\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	failing := `files: e.type == REG ? e.with({"reg.pos": int(e.reg.pos) - 1}) : e`
	failScript := filepath.Join(t.TempDir(), "f.critq")
	if err := os.WriteFile(failScript, []byte("rule "+failing+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badMsg := d + ": files.img: FILES entry 0 at offset 8: "
	for _, tt := range []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stderr string
	}{
		{"query", []string{"files.size()", d}, "", exitBadImage, badMsg},
		{"batch rule", []string{"-f", script, d}, "", exitBadImage, badMsg},
		{"transform", []string{"transform", "--dry-run", "files: e", d}, "", exitBadImage, badMsg},
		{"fds", []string{"fds", d}, "", exitBadImage, "files.img"},
		{"transform rule fails", []string{"transform", "--dry-run", failing, good}, "", exitError, good + ": files.img: entry 0 at offset 0x8: rule 1: with(): reg.pos: -1 is out of range"},
		{"batch rule fails", []string{"-f", failScript, good}, "", exitError, good + ": files.img: entry 0 at offset 0x8: " + failScript + ":1: with(): reg.pos"},
		{"transform rule does not compile", []string{"transform", "--dry-run", "files: e.nope", good}, "", exitCompile, "undefined field 'nope'"},
		{"repl :transform fails", []string{"repl", good}, ":transform " + failing + "\n", exitError, good + ": files.img: entry 0 at offset 0x8: :transform: with()"},
	} {
		var out, errb bytes.Buffer
		c := &cli{stdin: strings.NewReader(tt.stdin), stdout: &out, stderr: &errb, env: func(string) string { return "" }}
		code := c.main(tt.args)
		if code != tt.code || !strings.Contains(errb.String(), tt.stderr) {
			t.Errorf("%s: critq %q: exit %d, stderr %q; wanted exit %d, stderr with %q", tt.name, tt.args, code, errb.String(), tt.code, tt.stderr)
		}
		if n := strings.Count(errb.String(), "critq: "); n != 1 && tt.name != "repl :transform fails" {
			t.Errorf("%s: %d errors reported, wanted one: %q", tt.name, n, errb.String())
		}
	}
}
