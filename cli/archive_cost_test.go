package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/internal/testcpu"
	"github.com/critq/critq/internal/testimg"
)

// bigVMAs is the size of the address space of the archive-cost dump.
const bigVMAs = 100_000

// bigDump writes sleep-plain grown to bigVMAs VMAs into dir/dump, and the
// same dump as a CRI-O checkpoint archive dir/checkpoint.tar.gz; it
// returns both paths.
func bigDump(t testing.TB, dir string) (folder, archive string) {
	t.Helper()
	folder, archive = filepath.Join(dir, "dump"), filepath.Join(dir, "checkpoint.tar.gz")
	testcorpus.CopyFiles(t, "../testdata/dumps/sleep-plain", folder)
	testimg.AddVMAs(t, folder, 19635, bigVMAs-36) // sleep-plain has 36
	writeContainerArchive(t, folder, "crio", archive, 0)
	return folder, archive
}

// TestWriteBigArchive writes the dump and archive of bigDump to
// $CRITQ_SYNTH_DIR, for measuring whole commands (/usr/bin/time).
func TestWriteBigArchive(t *testing.T) {
	dir := os.Getenv("CRITQ_SYNTH_DIR")
	if dir == "" {
		t.Skip("CRITQ_SYNTH_DIR not set")
	}
	bigDump(t, dir)
}

// cost is the least CPU time and the least bytes allocated of the runs
// of one command.
type cost struct {
	cpu   time.Duration
	alloc uint64
}

// runCosts runs each of runs in turn, n rounds, and returns the cost of
// each: the runs are interleaved so that a change of the machine's load
// falls on all of them alike.
func runCosts(n int, runs ...func()) []cost {
	out := make([]cost, len(runs))
	for i := range out {
		out[i] = cost{time.Duration(1 << 62), 1 << 63}
	}
	for range n {
		for i, run := range runs {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			c0 := testcpu.Used()
			run()
			c := testcpu.Used() - c0
			runtime.ReadMemStats(&after)
			out[i] = cost{min(out[i].cpu, c), min(out[i].alloc, after.TotalAlloc-before.TotalAlloc)}
		}
	}
	return out
}

// critqRun returns a run of critq args in process that must succeed.
func critqRun(t *testing.T, args ...string) func() {
	return func() {
		t.Helper()
		if _, errb, code := runCLI(t, nil, args...); code != exitOK {
			t.Fatalf("critq %v: exit %d: %s", args, code, errb)
		}
	}
}

// inflateRun returns a run that decompresses the archive p to nowhere: the
// least any reader of it pays.
func inflateRun(t *testing.T, p string) func() {
	return func() {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, done, err := dump.Decompress(f)
		if err != nil {
			t.Fatal(err)
		}
		defer done()
		if _, err := io.Copy(io.Discard, r); err != nil {
			t.Fatal(err)
		}
	}
}

// TestArchiveCost: over a gzip archive of a 100,000-VMA dump a query
// costs at most 1.3x the CPU time of the same query on the folder, or,
// when one decompression of the archive alone costs more than 0.2x of
// that (this query takes 15-20 ms in process; inflating the 3 MB of
// images about 5), at most the folder's time and 1.5 decompressions:
// no second pass, no spooling, nothing a reader of a gzip stream need not
// pay. It allocates at most 1.3x the folder's bytes, and ps and inspect at
// most 1.5x (bytes allocated stand for the peak memory, which a test in
// process cannot tell apart from the other tests'). CPU, not wall time,
// since the machine may be loaded: the least of 7 interleaved runs, and
// the CPU bound must fail in 3 measurements in a row.
func TestArchiveCost(t *testing.T) {
	if testcpu.Used() == 0 {
		t.Skip("no CPU time on this system")
	}
	folder, archive := bigDump(t, t.TempDir())
	const query = "vmas.filter(v, v.prot & PROT_EXEC).size()"
	for attempt := 1; ; attempt++ {
		c := runCosts(7, critqRun(t, query, folder), critqRun(t, query, archive), inflateRun(t, archive))
		fc, ac, inflate := float64(c[0].cpu), float64(c[1].cpu), float64(c[2].cpu)
		bound := max(1.3*fc, fc+1.5*inflate)
		alloc := float64(c[1].alloc) / float64(c[0].alloc)
		t.Logf("query: folder %v and %d bytes, archive %v and %d bytes (%.2fx CPU, %.2fx allocated); inflating the archive %v; bound %v",
			c[0].cpu, c[0].alloc, c[1].cpu, c[1].alloc, ac/fc, alloc, c[2].cpu, time.Duration(bound))
		if alloc > 1.3 {
			t.Errorf("query over the archive allocates %.2fx the folder's bytes", alloc)
		}
		if ac <= bound {
			break
		}
		if attempt == 3 {
			t.Errorf("query over the archive: %v CPU, more than %v (folder %v, one inflate %v), 3 times", c[1].cpu, time.Duration(bound), c[0].cpu, c[2].cpu)
			break
		}
	}
	for _, cmd := range []string{"ps", "inspect"} {
		c := runCosts(3, critqRun(t, cmd, folder), critqRun(t, cmd, archive))
		ratio := float64(c[1].alloc) / float64(c[0].alloc)
		t.Logf("%s: folder %d, archive %d bytes allocated (%.2fx)", cmd, c[0].alloc, c[1].alloc, ratio)
		if ratio > 1.5 {
			t.Errorf("%s over the archive allocates %.2fx the folder's bytes", cmd, ratio)
		}
	}
}

// readBytes returns the bytes the process has read through system calls
// (rchar of /proc/self/io), or false where there is no such file.
func readBytes(t *testing.T) (int64, bool) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, false
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("rchar: ")); ok {
			n, err := strconv.ParseInt(string(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// TestInspectReadsArchiveOnce: inspect reads a compressed archive in one
// pass (images, container files and rootfs-diff.tar together), as ps and
// queries (with or without memory) do, so the
// bytes it reads are about the archive's size, not twice it. The
// archive's rootfs-diff.tar holds 4 MiB of random bytes, so the archive
// is that big.
func TestInspectReadsArchiveOnce(t *testing.T) {
	if _, ok := readBytes(t); !ok {
		t.Skip("no /proc/self/io")
	}
	p := filepath.Join(t.TempDir(), "checkpoint.tar.gz")
	writeContainerArchive(t, "../testdata/dumps/sleep-plain", "podman", p, 4<<20)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"inspect", p}, {"inspect", "--format", "json", p}, {"ps", p},
		{"tasks.map(t, t.pid)", p}, {"tasks.map(t, t.cmdline)", p}} {
		r0, _ := readBytes(t)
		out, errb, code := runCLI(t, nil, args...)
		r1, _ := readBytes(t)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errb)
		}
		if args[0] == "inspect" && !bytes.Contains([]byte(out), []byte("var/lib/blob")) {
			t.Errorf("%v: rootfs-diff.tar not listed:\n%s", args, out)
		}
		read := r1 - r0
		t.Logf("%v: read %d bytes of a %d-byte archive", args, read, st.Size())
		if read < st.Size() || float64(read) > 1.2*float64(st.Size()) {
			t.Errorf("%v: read %d bytes of a %d-byte archive: not one pass", args, read, st.Size())
		}
	}
}
