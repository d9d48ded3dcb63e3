package container

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/critq/critq/internal/testcpu"
)

// cpuTime is the user and system time the process has used.
func cpuTime(t *testing.T) time.Duration { return testcpu.Used() }

// TestFind lists a folder of 1,000 archives (symlinks to three real ones,
// plain, gzip and zstd, of three engines) beside a dump folder and an
// unpacked archive, in under 2 s, reading only the archives' small members.
func TestFind(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for i, e := range []struct{ engine, comp string }{{"podman", ""}, {"crio", "gz"}, {"containerd", "zst"}} {
		p := writeArchive(t, testDump, engineRoot(t, e.engine), e.comp)
		dst := filepath.Join(real, fmt.Sprintf("checkpoint-%d.tar%s", i, map[string]string{"": "", "gz": ".gz", "zst": ".zst"}[e.comp]))
		if err := os.Rename(p, dst); err != nil {
			t.Fatal(err)
		}
		targets = append(targets, dst)
	}
	// the real archives are read too: keep them out of the timed folder
	many := filepath.Join(dir, "many")
	n := 1000
	if raceEnabled {
		n = 200 // no timing under the race detector: keep CI short
	}
	for i := 0; i < n; i++ {
		sub := filepath.Join(many, fmt.Sprintf("pod-%02d", i%50))
		if err := os.MkdirAll(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(targets[i%3], filepath.Join(sub, fmt.Sprintf("checkpoint-%04d.tar", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(many, "notes.txt"), []byte("not an archive\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(many, "plain-dump"), os.DirFS(testDump)); err != nil {
		t.Fatal(err)
	}
	start, cpu0 := time.Now(), cpuTime(t)
	rows, errs := Find([]string{many})
	took, cpu := time.Since(start), cpuTime(t)-cpu0
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(rows) != n+1 {
		t.Fatalf("%d rows, wanted %d", len(rows), n+1)
	}
	limit := 2 * time.Second
	if raceEnabled {
		limit *= 20
	}
	// The machine this runs on may be shared: the limit holds for the CPU
	// time the listing used (user and system, all threads), the wall time
	// is logged.
	if cpu > limit {
		t.Errorf("listing %d checkpoints took %v of CPU time (limit %v), %v wall", len(rows), cpu, limit, took)
	}
	t.Logf("listed %d checkpoints in %v wall, %v CPU", len(rows), took, cpu)
	if !sort.SliceIsSorted(rows, func(i, j int) bool { return rows[i].time().Before(rows[j].time()) }) {
		t.Error("rows not sorted by time")
	}
	engines := map[string]int{}
	var plainRead int64
	for _, r := range rows {
		engines[r.Engine]++
		if r.Processes != 1 || r.Memory == 0 || r.Size == 0 {
			t.Errorf("row %+v", r)
		}
		if r.Engine == Podman { // the plain tar: read in place
			plainRead = r.read
		}
	}
	if engines[Podman] != (n+2)/3 || engines[CRIO] != (n+1)/3 || engines[Containerd] != n/3 || engines[""] != 1 {
		t.Errorf("engines %v", engines)
	}
	c, err := Open(targets[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	if plainRead == 0 || plainRead >= c.Sizes.Total-c.Sizes.Pages {
		t.Errorf("a plain archive of %d bytes (pages %d): %d bytes read", c.Sizes.Total, c.Sizes.Pages, plainRead)
	}
}
