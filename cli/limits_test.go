package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/internal/testcpu"
	"github.com/critq/critq/query"
)

// TestRunawayQueriesStop: under the default limits an exponential query
// (maps nested 7 deep over 10-element lists) and a quadratic one (every
// VMA against every other, over 5,000 and over 12,152 VMAs) stop within
// seconds of CPU (a generous bound for a loaded machine: they took 1.9,
// 2.9 and 3.6 s on one), with an error that names the limit and its flag.
func TestRunawayQueriesStop(t *testing.T) {
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	many := filepath.Join(root, "many-vmas")
	exp := "tasks.size() + a + b + c + d + e + f + g"
	for _, v := range []string{"g", "f", "e", "d", "c", "b", "a"} {
		exp = fmt.Sprintf("[1,2,3,4,5,6,7,8,9,10].map(%s, %s)", v, exp)
	}
	const quad = "vmas.map(a, vmas.filter(b, b.start < a.start).size())"
	// The first 5,000 VMAs of many-vmas, paired.
	quad5000 := "[vmas[4999].start].map(k, [vmas.filter(v, v.start <= k)].map(vs, vs.map(a, vs.filter(b, b.start < a.start).size())))"
	want := fmt.Sprintf("stopped: the evaluation exceeded the cost limit of %d (raise it with --cost N, 0 for none)", query.DefaultCostLimit)
	for _, c := range []struct {
		name, src, dir string
	}{
		{"exponential", exp, sleepPlain},
		{"quadratic over 5,000 VMAs", quad5000, many},
		{"quadratic over 12,152 VMAs", quad, many},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := testcpu.Used()
			out, stderr, code := runViews(c.src, c.dir)
			took := testcpu.Used() - start
			t.Logf("%s: %v of CPU", c.name, took)
			if code != exitError || !strings.Contains(stderr, want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; wanted 5 and %q", code, out, stderr, want)
			}
			if !raceEnabled && took > 20*time.Second { // the race detector slows it ten times
				t.Errorf("stopped after %v of CPU, wanted a few seconds", took)
			}
		})
	}
}
