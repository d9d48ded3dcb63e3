package query

import (
	"bufio"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzQuery compiles and evaluates arbitrary expressions against a real
// dump: nothing may panic or hang; the cost limit and a deadline hold.
func FuzzQuery(f *testing.F) {
	seeds := []string{
		"tasks.map(t, t.pid)", "vmas.filter(v, v.prot & 4)", "core[19635].tc.comm",
		"images['pstree.img'].entries", "fds.map(f, [f.fd, f.path, f.socket])", "sockets",
		"pagemaps.filter(p, p.flags & PE_PRESENT).size()", "mounts", "files.map(f, f.pids)",
		"vmas.map(a, vmas.map(b, a.start ^ b.start))", "~1 << 70", "tasks[5]", "mm.map(k, mm[k].vmas[0])",
	}
	if fh, err := os.Open("../examples/cookbook.txt"); err == nil {
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if _, src, ok := strings.Cut(sc.Text(), ": "); ok && !strings.HasPrefix(sc.Text(), "#") {
				seeds = append(seeds, src)
			}
		}
		fh.Close()
	}
	for _, s := range seeds {
		f.Add(s)
	}
	d, err := Open("../testdata/dumps/sleep-plain")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 2000 {
			return
		}
		q, err := Compile(src, CostLimit(1_000_000))
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		v, err := q.Eval(ctx, d)
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("%q ran %v past a 1s deadline", src, el)
		}
		if err == nil && v == nil {
			t.Errorf("%q: nil value without error", src)
		}
	})
}
