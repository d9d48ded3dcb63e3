//go:build linux

package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperRun is what one run of critq in a process cost.
type helperRun struct {
	wall, cpu time.Duration // cpu: user and system time
	peak      int64         // peak resident memory, bytes
}

// cores is the number of cores the run had on average.
func (r helperRun) cores() float64 { return r.cpu.Seconds() / r.wall.Seconds() }

// runHelper runs critq (the test binary as TestCritqHelperProcess) with
// args, its output discarded, and returns its wall and CPU time and peak
// resident memory.
func runHelper(t *testing.T, args ...string) helperRun {
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
	return helperRun{wall: took, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), peak: ru.Maxrss * 1024}
}

// loadAverage returns the machine's load average over the last minute, as
// text.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// TestBatchParallel runs the cookbook over 200 copies of a corpus dump
// (symlinks) with -j 1 and -j 2, and over 600 copies with -j 2: it checks
// that peak memory does not grow with the number of dumps (a run of a few
// dumps ends before the heap reaches its steady size, so the comparison is
// between two long runs), and reports the
// speed-up of -j 2 with the cores each run had and the machine's load. With
// CRITQ_PERF=1 it runs each three times, keeps the fastest, and checks the
// speed-up (at least 1.7x): on a shared machine the ratio says more about
// the neighbours than about critq, hence not by default.
func TestBatchParallel(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("timing test: not with -short or -race")
	}
	src := "../../shared/corpus/proc-tree"
	if _, err := os.Stat(src); err != nil {
		if os.Getenv("CRITQ_REQUIRE_CORPUS") == "1" {
			t.Fatal(err)
		}
		src = "../testdata/dumps/sleep-plain"
	}
	dirs := linkCopies(t, src, 600)
	perf := os.Getenv("CRITQ_PERF") == "1"
	tries := 1
	if perf {
		tries = 3
	}
	script, _ := filepath.Abs("../examples/cookbook.txt")
	run := func(jobs string, dirs []string) helperRun {
		var best helperRun
		for i := range tries {
			r := runHelper(t, append([]string{"-f", script, "-j", jobs, "--format", "ndjson"}, dirs...)...)
			if i == 0 || r.wall < best.wall {
				best = r
			}
		}
		return best
	}
	run("2", dirs[:2]) // warm the page cache
	load := loadAverage()
	r1 := run("1", dirs[:200])
	r2 := run("2", dirs[:200])
	r600 := run("2", dirs)
	speedup := r1.wall.Seconds() / r2.wall.Seconds()
	t.Logf("cookbook over 200 copies of %s (load %s..%s): -j 1 %v on %.2f cores (peak %d MiB), -j 2 %v on %.2f cores (peak %d MiB): %.2fx; -j 2 over 600 copies: peak %d MiB",
		filepath.Base(src), load, loadAverage(), r1.wall.Round(time.Millisecond), r1.cores(), r1.peak>>20,
		r2.wall.Round(time.Millisecond), r2.cores(), r2.peak>>20, speedup, r600.peak>>20)
	if r600.peak > r2.peak+r2.peak/4+16<<20 {
		t.Errorf("peak memory grows with the number of dumps: %d MiB for 600, %d MiB for 200", r600.peak>>20, r2.peak>>20)
	}
	if r1.cores() > 1.1 {
		t.Errorf("-j 1 ran on %.2f cores, wanted one", r1.cores())
	}
	if perf && speedup < 1.7 {
		t.Errorf("-j 2 is %.2fx faster than -j 1 (on %.2f and %.2f cores, load %s), want at least 1.7x", speedup, r2.cores(), r1.cores(), loadAverage())
	}
}
