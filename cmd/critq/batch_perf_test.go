//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runHelper runs critq (the test binary as TestCritqHelperProcess) with
// args, its output discarded, and returns the wall time and the peak
// resident memory of the process.
func runHelper(t *testing.T, args ...string) (time.Duration, int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCritqHelperProcess$")
	cmd.Env = append(os.Environ(), "CRITQ_HELPER_ARGS="+strings.Join(args, "\x1f"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("critq %s: %v: %s", strings.Join(args[:4], " "), err, stderr.String())
	}
	took := time.Since(start)
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if ru == nil {
		t.Skip("no rusage")
	}
	return took, ru.Maxrss * 1024
}

// TestBatchParallel runs the cookbook over 200 copies of a corpus dump
// (symlinks) with -j 1 and -j 2, and over 20 copies with -j 2: it checks
// that peak memory does not grow with the number of dumps, and reports the
// speed-up of -j 2, which it checks (at least 1.7x) when CRITQ_PERF=1: on a
// shared machine the ratio says more about the neighbours than about critq.
func TestBatchParallel(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("timing test: not with -short or -race")
	}
	src := "../../../shared/corpus/proc-tree"
	if _, err := os.Stat(src); err != nil {
		if os.Getenv("CRITQ_REQUIRE_CORPUS") == "1" {
			t.Fatal(err)
		}
		src = "../../testdata/dumps/sleep-plain"
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	var dirs []string
	for i := range 200 {
		d := filepath.Join(tmp, fmt.Sprintf("copy%03d", i))
		if err := os.Symlink(abs, d); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	script, _ := filepath.Abs("../../examples/cookbook.txt")
	run := func(jobs string, dirs []string) (time.Duration, int64) {
		return runHelper(t, append([]string{"-f", script, "-j", jobs, "--format", "ndjson"}, dirs...)...)
	}
	run("2", dirs[:2]) // warm the page cache
	t1, m1 := run("1", dirs)
	t2, m2 := run("2", dirs)
	_, m20 := run("2", dirs[:20])
	speedup := t1.Seconds() / t2.Seconds()
	t.Logf("cookbook over 200 copies of %s: -j 1 %v (peak %d MiB), -j 2 %v (peak %d MiB): %.2fx; -j 2 over 20 copies: peak %d MiB",
		filepath.Base(src), t1.Round(time.Millisecond), m1>>20, t2.Round(time.Millisecond), m2>>20, speedup, m20>>20)
	if m2 > m20+m20/4+16<<20 {
		t.Errorf("peak memory grows with the number of dumps: %d MiB for 200, %d MiB for 20", m2>>20, m20>>20)
	}
	if os.Getenv("CRITQ_PERF") == "1" && speedup < 1.7 {
		t.Errorf("-j 2 is %.2fx faster than -j 1, want at least 1.7x", speedup)
	}
}
