package diff

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/critq/critq/internal/testcpu"
)

// measure runs f and returns the CPU time and the bytes allocated.
func measure(f func()) (cpu time.Duration, alloc uint64) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	c0 := testcpu.Used()
	f()
	cpu = testcpu.Used() - c0
	runtime.ReadMemStats(&m1)
	return cpu, m1.TotalAlloc - m0.TotalAlloc
}

// writePair writes synthetic dumps a and b into a temporary folder.
func writePair(t testing.TB, a, b synth) (string, string) {
	dir := t.TempDir()
	pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := a.write(pa); err != nil {
		t.Fatal(err)
	}
	if err := b.write(pb); err != nil {
		t.Fatal(err)
	}
	return pa, pb
}

// TestSpeedVMAs diffs two dumps of 100,000 VMAs (one protection changed,
// 1,000 VMAs added): at most 0.6 s of CPU (the whole command must take
// under 1 s) and 250 MB allocated (the command's peak RSS must stay under
// 200 MB; on 2026-12-03 the diff allocated 153 MB and took about 0.25 s of
// CPU on a loaded 2-core machine).
func TestSpeedVMAs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a speed bound: not under -short or the race detector")
	}
	sa, sb := synthPair(100_000, 1000, 0)
	pa, pb := writePair(t, sa, sb)
	var n int
	cpu, alloc := measure(func() {
		cs := diffDirs(t, pa, pb, Options{})
		n = len(cs)
	})
	t.Logf("%d changes, CPU %v, %.1f MB allocated", n, cpu, float64(alloc)/1e6)
	if n != 1001 {
		t.Errorf("%d changes, want 1001", n)
	}
	if cpu > 600*time.Millisecond {
		t.Errorf("CPU %v, more than 0.6 s", cpu)
	}
	if alloc > 250e6 {
		t.Errorf("%.1f MB allocated, more than 250 MB", float64(alloc)/1e6)
	}
}

// TestSpeedMemory compares two dumps of 128 MiB of pages each, every 4096th
// page changed: at least 1 GB/s of CPU time (bytes of one dump per CPU
// second), and what is allocated does not grow with the pages (under 16 MB:
// the pages are read a chunk at a time).
func TestSpeedMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a speed bound: not under -short or the race detector")
	}
	const pages = 128 << 20 / pageSize
	sa, sb := synthPair(10, 0, pages)
	sb.readOnly = nil
	pa, pb := writePair(t, sa, sb)
	var n int
	cpu, alloc := measure(func() {
		cs := diffDirs(t, pa, pb, Options{Only: []string{"memory"}, Pages: true})
		n = len(cs)
	})
	rate := float64(pages*pageSize) / cpu.Seconds()
	t.Logf("%d changes, CPU %v (%.1f GB/s), %.1f MB allocated", n, cpu, rate/1e9, float64(alloc)/1e6)
	if n != pages/4096 {
		t.Errorf("%d changes, want %d", n, pages/4096)
	}
	if cpu > 0 && rate < 1e9 {
		t.Errorf("%.2f GB/s of CPU time, less than 1 GB/s", rate/1e9)
	}
	if alloc > 16e6 {
		t.Errorf("%.1f MB allocated, more than 16 MB", float64(alloc)/1e6)
	}
}

// BenchmarkDiffMemory diffs two dumps of 64 MiB of pages each.
func BenchmarkDiffMemory(b *testing.B) {
	const pages = 64 << 20 / pageSize
	sa, sb := synthPair(10, 0, pages)
	sb.readOnly = nil
	pa, pb := writePair(b, sa, sb)
	b.SetBytes(pages * pageSize)
	b.ReportAllocs()
	for b.Loop() {
		cs, err := Dumps(context.Background(), openDump(b, pa), openDump(b, pb), Options{Only: []string{"memory"}})
		if err != nil || len(cs) == 0 {
			b.Fatal(len(cs), err)
		}
	}
}
