package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/internal/testcpu"
)

// BenchmarkBatchRules previews chains of 1, 2, 4 and 8 rules over 200 dumps
// (links to sleep-plain) with critq -f, one worker: the rules apply once per
// dump, each recording its own steps, so the time per dump grows linearly
// with the number of rules (it grew with the square when each preview
// re-applied its prefix of the chain).
func BenchmarkBatchRules(b *testing.B) {
	dumps := linkCopies(b, "../testdata/dumps/sleep-plain", 200)
	dir := b.TempDir()
	for _, n := range []int{1, 2, 4, 8} {
		script := filepath.Join(dir, fmt.Sprintf("rules%d.critq", n))
		text := strings.Repeat("rule files: e.type == REG ? e.with({\"reg.pos\": e.reg.pos + 1u}) : e\n", n)
		if err := os.WriteFile(script, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
		args := append([]string{"-f", script, "-j", "1"}, dumps...)
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			cpu := testcpu.Used()
			for b.Loop() {
				var errb bytes.Buffer
				c := &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &errb, env: func(string) string { return "" }}
				if code := c.main(args); code != exitOK {
					b.Fatalf("exit %d: %s", code, errb.String())
				}
			}
			// CPU time: on a shared machine wall time measures the
			// neighbours.
			perOp := float64((testcpu.Used() - cpu).Nanoseconds()) / float64(b.N)
			b.ReportMetric(perOp, "cpu-ns/op")
			b.ReportMetric(perOp/float64(n), "cpu-ns/rule")
		})
	}
}

// linkCopies returns n symbolic links to the dump src, in a temporary
// folder: n dumps to run a batch over.
func linkCopies(t testing.TB, src string, n int) []string {
	t.Helper()
	abs, err := filepath.Abs(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	var dirs []string
	for i := range n {
		d := filepath.Join(tmp, fmt.Sprintf("copy%03d", i))
		if err := os.Symlink(abs, d); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	return dirs
}
