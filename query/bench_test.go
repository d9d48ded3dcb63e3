package query

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/proto/images"
	"github.com/critq/critq/query/internal/synthdump"
)

const benchVMAs = 100_000

// synthDump writes a synthetic dump with n VMAs into a temporary directory.
func synthDump(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := synthdump.Write(dir, n); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// TestWriteSynthetic writes the benchmark's dump to $CRITQ_SYNTH_DIR, for
// timing whole commands (hyperfine critq '...' $CRITQ_SYNTH_DIR).
func TestWriteSynthetic(t *testing.T) {
	dir := os.Getenv("CRITQ_SYNTH_DIR")
	if dir == "" {
		t.Skip("CRITQ_SYNTH_DIR not set")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := synthdump.Write(dir, benchVMAs); err != nil {
		t.Fatal(err)
	}
}

func TestSyntheticExecCount(t *testing.T) {
	dir := synthDump(t, 1000)
	v := mustEval(t, mustCompile(t, "vmas.filter(v, v.prot & 4).size()"), mustOpen(t, dir))
	if want := (1000 + synthdump.ExecEvery - 1) / synthdump.ExecEvery; v.Value() != int64(want) {
		t.Errorf("exec VMAs of the synthetic dump: got %v, wanted %d", v, want)
	}
}

// BenchmarkVMAs compares the query over 100,000 VMAs with a bare
// proto.Unmarshal of the same mm image (both read the file).
func BenchmarkVMAs(b *testing.B) {
	dir := synthDump(b, benchVMAs)
	mmPath := filepath.Join(dir, "mm-1.img")
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			data, err := os.ReadFile(mmPath)
			if err != nil {
				b.Fatal(err)
			}
			var mm images.MmEntry
			if err := proto.Unmarshal(data[12:], &mm); err != nil { // head magic, magic, size
				b.Fatal(err)
			}
		}
	})
	const src = "vmas.filter(v, v.prot & 4).size()"
	b.Run("eval", func(b *testing.B) {
		q := mustCompile(b, src)
		b.ReportAllocs()
		for b.Loop() {
			mustEval(b, q, mustOpen(b, dir))
		}
	})
	b.Run("compile+eval", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mustEval(b, mustCompile(b, src), mustOpen(b, dir))
		}
	})
	b.Run("whole-vmas", func(b *testing.B) {
		q := mustCompile(b, "vmas.filter(v, v.prot & 4)")
		b.ReportAllocs()
		for b.Loop() {
			mustEval(b, q, mustOpen(b, dir))
		}
	})
}

// BenchmarkSmallDump is a one-shot query on a small dump, environment and
// compilation included.
func BenchmarkSmallDump(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		q := mustCompile(b, "tasks.map(t, [t.pid, t.comm, t.fds.size()])")
		if _, err := q.Eval(context.Background(), mustOpen(b, "../testdata/dumps/sleep-plain")); err != nil {
			b.Fatal(err)
		}
	}
}
