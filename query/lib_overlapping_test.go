package query

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"

	"github.com/critq/critq/internal/testcorpus"
)

// TestOverlapping checks overlapping against the CEL filter it stands for,
// on every dump, over a task's vmas (a repeated field), the vmas view and
// a list CEL built, and on VMAs that overlap each other, out of order, as
// a hostile dump may hold.
func TestOverlapping(t *testing.T) {
	const same = `tasks.all(t, pagemaps.filter(p, has(p.pid) && p.pid == t.pid).all(p,
		overlapping(t.vmas, p.vaddr, p.vaddr + p.nr_pages * 4096u) == t.vmas.filter(v, v.end > p.vaddr && v.start < p.vaddr + p.nr_pages * 4096u) &&
		overlapping(vmas, p.vaddr, p.vaddr + 4096u) == vmas.filter(v, v.end > p.vaddr && v.start < p.vaddr + 4096u) &&
		overlapping(vmas.filter(v, v.pid == t.pid), p.vaddr, p.vaddr + 1u) == vmas.filter(v, v.pid == t.pid && v.end > p.vaddr && v.start < p.vaddr + 1u)))`
	q, err := Compile(same, CostLimit(0)) // the filters are quadratic
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range testcorpus.Dumps(t) {
		d, err := Open(dir)
		if err != nil {
			continue // not a dump of tasks (testcorpus lists every folder)
		}
		if n, err := mustCompile(t, "vmas.size()").Eval(context.Background(), d); err == nil && n.(types.Int) > 3000 {
			continue // the filters take seconds: TestCookbook's rss checks this dump with crit's output
		}
		v, err := q.Eval(context.Background(), d)
		if err != nil {
			if _, terr := d.tree(); terr != nil {
				continue
			}
			t.Errorf("%s: %v", filepath.Base(dir), err)
			continue
		}
		if v != types.True {
			t.Errorf("%s: overlapping differs from the filter", filepath.Base(dir))
		}
	}
	d := mustOpen(t, "../testdata/dumps/sleep-plain")
	const vmas = "[critq.views.vma{start: 0x5000u, end: 0x6000u}, critq.views.vma{start: 0x1000u, end: 0x3000u}, critq.views.vma{start: 0x0u, end: 0x10000u}]"
	for src, want := range map[string]string{
		"overlapping(" + vmas + ", 0x2000u, 0x2001u).map(v, v.start)": "[4096,0]",
		"overlapping(" + vmas + ", 0x6000u, 0x7000u).size()":          "1",
		"overlapping(" + vmas + ", 0x10000u, 0x20000u).size()":        "0",
		"overlapping([], 0u, 18446744073709551615u).size()":           "0",
	} {
		var b strings.Builder
		if err := (Output{Format: FormatJSON}).Write(&b, "", mustEval(t, mustCompile(t, src), d)); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(b.String()); got != want {
			t.Errorf("%s = %s, wanted %s", src, got, want)
		}
	}
}
