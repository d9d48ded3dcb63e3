package query

import (
	"testing"

	"github.com/critq/critq/internal/testcpu"
)

// BenchmarkCompileWarm compiles a typical query on the warm environment.
func BenchmarkCompileWarm(b *testing.B) {
	if _, err := Compile("1"); err != nil {
		b.Fatal(err)
	}
	for _, src := range []string{
		"vmas.filter(v, v.prot & PROT_EXEC).size()",
		`tasks.filter(t, t.comm == "sleep").map(t, {"pid": t.pid, "fds": t.fds.size()})`,
	} {
		b.Run(src, func(b *testing.B) {
			b.ReportAllocs()
			cpu := testcpu.Used()
			for b.Loop() {
				if _, err := Compile(src); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((testcpu.Used()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
