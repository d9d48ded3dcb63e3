package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/proto/images"
)

// runCLI runs critq in process with a stdin that is not seekable.
func runCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, env: func(k string) string { return env[k] }}
	code = c.main(args)
	return out.String(), errb.String(), code
}

// checkGolden compares got with the file golden, which update (the value
// of the test flag named flagName) rewrites first.
func checkGolden(t *testing.T, golden, got string, update bool, flagName string) {
	t.Helper()
	if update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (-%s rewrites it):\n%s", golden, flagName, got)
	}
}

func TestQueryCommand(t *testing.T) {
	const d = "../testdata/dumps/sleep-plain"
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"default command", []string{"tasks.map(t, t.pid)", d}, exitOK, "[19635]\n", ""},
		{"query command", []string{"query", "tasks.map(t, t.comm)", d}, exitOK, `["sleep"]`, ""},
		{"flags after", []string{"query", "tasks.map(t, t.comm)", d, "--format", "raw"}, exitOK, "sleep\n", ""},
		{"dashdash", []string{"query", "--", "tasks.size()", d}, exitOK, "1\n", ""},
		{"pretty", []string{"--format", "pretty", "vmas.filter(v, v.prot & 4)[0].prot", d}, exitOK, "5\n", ""},
		{"pretty message", []string{"--format", "pretty", "vmas.filter(v, v.prot & 4)[0]", d}, exitOK, `"prot": "PROT_READ | PROT_EXEC"`, ""},
		{"tagged", []string{"tasks.size()", d, d}, exitOK, `{"dump":"` + d + `","result":1}`, ""},
		{"-e true", []string{"-e", "tasks.size() == 1", d}, exitOK, "true", ""},
		{"-e false", []string{"-e", "tasks.size() == 2", d}, exitFalse, "false", ""},
		{"-e empty", []string{"-e", "tasks.filter(t, t.pid == 1u)", d}, exitFalse, "[]", ""},
		{"compile error", []string{"vmas.filter(v, v.prto & 4)", d}, exitCompile, "", "^"},
		{"no dump", []string{"tasks"}, exitUsage, "", "need an expression"},
		{"bad format", []string{"--format", "xml", "tasks", d}, exitUsage, "", "unknown format"},
		{"missing dump", []string{"tasks", "/nonexistent/dump"}, exitBadImage, "", "nonexistent"},
		{"eval error", []string{"tasks.size() / 0", d}, exitError, "", "division by zero"},
		{"cost", []string{"--cost", "10", "vmas.map(a, vmas.map(b, a.start))", d}, exitError, "", "cost"},
		{"timeout", []string{"--timeout", "1ms", "--cost", "0", "vmas.map(a, vmas.map(b, vmas.map(c, vmas.map(e, a.pid)))).size()", d}, exitError, "", "timeout"},
		{"help", []string{"query", "-h"}, exitOK, "usage: critq [flags] EXPR DUMP...", ""},
		{"help vars", []string{"help", "vars"}, exitOK, "vmas           list(critq.views.vma)", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := runCLI(t, nil, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errs, tc.stderr) {
				t.Errorf("critq %q: got code %d, stdout %q, stderr %q; wanted code %d, stdout with %q, stderr with %q",
					tc.args, code, out, errs, tc.code, tc.stdout, tc.stderr)
			}
			if errs != "" && (!strings.HasSuffix(errs, "\n") || strings.HasSuffix(errs, "\n\n")) {
				t.Errorf("critq %q: stderr %q does not end in exactly one newline", tc.args, errs)
			}
		})
	}
}

// TestQueryExecVMAs runs critq 'vmas.filter(v, v.prot & 4)' on every dump
// and checks the VMAs printed against the decoded mm images.
func TestQueryExecVMAs(t *testing.T) {
	for _, dir := range testcorpus.Dumps(t) {
		out, errs, code := runCLI(t, nil, "vmas.filter(v, v.prot & 4)", dir)
		if code != exitOK {
			t.Fatalf("%s: code %d: %s", dir, code, errs)
		}
		type vma struct {
			Pid   uint32 `json:"pid"`
			Start uint64 `json:"start"`
			End   uint64 `json:"end"`
			Prot  uint32 `json:"prot"`
		}
		var got []vma
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		var want []vma
		d, err := dump.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		var ps []proto.Message
		if f := d.Kind("PSTREE"); len(f) > 0 {
			if ps, err = f[0].Messages(); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range ps {
			pid := m.(*images.PstreeEntry).GetPid()
			f := d.FileFor("MM", uint64(pid))
			if f == nil {
				continue
			}
			mm, err := f.First()
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range mm.(*images.MmEntry).GetVmas() {
				if v.GetProt()&4 != 0 {
					want = append(want, vma{pid, v.GetStart(), v.GetEnd(), v.GetProt()})
				}
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: got %d VMAs, wanted %d", dir, len(got), len(want))
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: VMA %d: got %+v, wanted %+v", dir, i, got[i], want[i])
			}
		}
	}
}

// TestQueryTableManyDumps: --format table over several dumps prints one
// table: one header with a leading DUMP column, then the rows of each dump
// in the order of the arguments, the same rows (dump, pid, comm) as
// ndjson gives; a dump that fails leaves the rows of those before it
// printed, and the exit status is its.
func TestQueryTableManyDumps(t *testing.T) {
	const expr = "tasks.map(t, {'pid': t.pid, 'comm': t.comm})"
	dumps := []string{"../testdata/dumps/unix-sockets", "../testdata/dumps/sleep-plain", "../testdata/dumps/pipes-fifo"}
	out, errb, code := runCLI(t, nil, append([]string{"--format", "table", expr}, dumps...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb)
	}
	nd, _, _ := runCLI(t, nil, append([]string{"--format", "ndjson", expr}, dumps...)...)
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(nd), "\n") {
		var r struct {
			Dump   string
			Result struct {
				PID  int
				Comm string
			}
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%s %s %d", r.Dump, r.Result.Comm, r.Result.PID))
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if strings.Join(strings.Fields(lines[0]), " ") != "DUMP COMM PID" {
		t.Errorf("header %q", lines[0])
	}
	var got []string
	for _, l := range lines[1:] {
		got = append(got, strings.Join(strings.Fields(l), " "))
	}
	if len(want) != 5 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nndjson:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	out, errb, code = runCLI(t, nil, "--format", "table", expr, dumps[1], "/nonexistent/dump", dumps[2])
	if code != exitBadImage || !strings.Contains(errb, "/nonexistent/dump") || strings.Count(out, "\n") != 2 || !strings.Contains(out, "sleep-plain") || strings.Contains(out, "pipes-fifo") {
		t.Errorf("a failing dump: exit %d, stderr %q, table:\n%s", code, errb, out)
	}
}
