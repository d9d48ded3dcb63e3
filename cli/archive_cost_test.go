package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

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

// runCost runs critq args in process n times and returns the least CPU
// time and the least bytes allocated of a run.
func runCost(t *testing.T, n int, args ...string) (cpu time.Duration, alloc uint64) {
	t.Helper()
	cpu, alloc = time.Duration(1<<62), uint64(1<<63)
	for range n {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c0 := testcpu.Used()
		_, errb, code := runCLI(t, nil, args...)
		c := testcpu.Used() - c0
		runtime.ReadMemStats(&after)
		if code != exitOK {
			t.Fatalf("critq %v: exit %d: %s", args, code, errb)
		}
		cpu, alloc = min(cpu, c), min(alloc, after.TotalAlloc-before.TotalAlloc)
	}
	return cpu, alloc
}

// TestArchiveCost: over a gzip archive of a 100,000-VMA dump a query
// costs at most 1.3x the CPU time of the same query on the folder, and
// ps and inspect allocate at most 1.5x what they allocate on the folder
// (bytes allocated stand for the peak memory, which a test in process
// cannot tell apart from the other tests'; CPU, not wall time, since the
// machine may be loaded).
func TestArchiveCost(t *testing.T) {
	if testcpu.Used() == 0 {
		t.Skip("no CPU time on this system")
	}
	folder, archive := bigDump(t, t.TempDir())
	const query = "vmas.filter(v, v.prot & PROT_EXEC).size()"
	fc, _ := runCost(t, 5, query, folder)
	ac, _ := runCost(t, 5, query, archive)
	t.Logf("query: folder %v, archive %v CPU (%.2fx)", fc, ac, float64(ac)/float64(fc))
	if float64(ac) > 1.3*float64(fc) {
		t.Errorf("query over the archive: %v CPU, more than 1.3x the folder's %v", ac, fc)
	}
	for _, cmd := range []string{"ps", "inspect"} {
		_, fa := runCost(t, 3, cmd, folder)
		_, aa := runCost(t, 3, cmd, archive)
		t.Logf("%s: folder %d, archive %d bytes allocated (%.2fx)", cmd, fa, aa, float64(aa)/float64(fa))
		if float64(aa) > 1.5*float64(fa) {
			t.Errorf("%s over the archive allocates %d bytes, more than 1.5x the folder's %d", cmd, aa, fa)
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
// pass (images, container files and rootfs-diff.tar together), so the
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
	for _, args := range [][]string{{"inspect", p}, {"inspect", "--format", "json", p}, {"ps", p}} {
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
