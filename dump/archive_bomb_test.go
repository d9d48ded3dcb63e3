//go:build unix

package dump_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/bomb"
)

// writeBomb writes an archive with fill (after the checkpoint/ folder and
// a real inventory) to a file and returns its path.
func writeBomb(t testing.TB, compression string, fill func(b *bomb.Writer)) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bomb.tar."+compression)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bomb.New(f, compression)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := os.ReadFile("../testdata/dumps/sleep-plain/inventory.img")
	if err != nil {
		t.Fatal(err)
	}
	b.Dir("checkpoint/")
	b.File("checkpoint/inventory.img", inv)
	fill(b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// cpuTime is the CPU time the process used so far: the bounds of time are
// checked on it, since the wall time of a test depends on the machine's
// load.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapGrowth runs f and returns how much the live heap grew at its
// highest, sampled every 20 ms.
func heapGrowth(f func()) uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	done := make(chan struct{})
	go func() { f(); close(done) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return peak - base
		case <-tick.C:
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
}

// TestArchiveBombs: the archives of the campaign fail, within 5 s and
// 64 MiB of heap, at the bound they pass, with a message naming it and
// its flag, and leave no temporary folder: an 896 MiB metadata image
// compressed to 1 MB, 3 GiB of zero pages (spooled by commands that read
// memory), 5 GiB of zeros in a member that is not kept, and a tar of a
// million tiny members.
func TestArchiveBombs(t *testing.T) {
	for _, tc := range []struct {
		name, compression string
		spool             bool
		fill              func(b *bomb.Writer)
		want              string
	}{
		{"896 MiB metadata image", "gz", false, func(b *bomb.Writer) { b.ZeroFile("checkpoint/core-1.img", 896<<20) },
			"more than 256 MiB of images besides pages kept in memory: 896.0 MiB (a bound against archive bombs; raise it with --max-meta)"},
		{"3 GiB of zero pages spooled", "zst", true, func(b *bomb.Writer) { b.ZeroFile("checkpoint/pages-1.img", 3<<30) },
			"more than 2 GiB of pages copied to the temporary folder: 3 GiB (a bound against archive bombs; raise it with --max-spool)"},
		{"3 GiB of zero pages spooled, gzip", "gz", true, func(b *bomb.Writer) { b.ZeroFile("checkpoint/pages-1.img", 3<<30) },
			"raise it with --max-spool"},
		{"5 GiB not kept", "zst", false, func(b *bomb.Writer) { b.ZeroFile("rootfs-diff.tar", 5<<30) },
			"more than 4 GiB of decompressed data"},
		{"3 GiB after the end of the tar", "gz", false, func(b *bomb.Writer) { b.Zeros(1024); b.Zeros(3 << 30) },
			"damaged archive: more than 1048576 bytes after the end of the tar"},
		{"a million tiny members", "gz", false, func(b *bomb.Writer) { b.Tiny("checkpoint", 1_000_000, 110_000) },
			"more than 100000 members (a bound against archive bombs; raise it with --max-members)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeBomb(t, tc.compression, tc.fill)
			st, _ := os.Stat(p)
			tmp := t.TempDir()
			var err error
			start, cpu := time.Now(), cpuTime()
			grew := heapGrowth(func() {
				_, err = dump.OpenArchive(p, dump.ArchiveOptions{SpoolPages: tc.spool, TempDir: tmp})
			})
			took, cpu := time.Since(start), cpuTime()-cpu
			t.Logf("%s (%d bytes): %v (CPU %v), heap +%d MiB: %v", tc.name, st.Size(), took, cpu, grew>>20, err)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p+": ") {
				t.Fatalf("error %v: want %q", err, tc.want)
			}
			if cpu > 5*time.Second || grew > 64<<20 {
				t.Errorf("took %v of CPU and %d MiB of heap: want under 5 s and 64 MiB", cpu, grew>>20)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
				t.Errorf("left %s in the temporary folder", ents[0].Name())
			}
		})
	}
}

// TestArchiveBoundsRaised: the bounds are options; raised, the archive
// that passed one opens (bounds are checked against the headers, so the
// check costs nothing when it passes).
func TestArchiveBoundsRaised(t *testing.T) {
	p := writeBomb(t, "gz", func(b *bomb.Writer) { b.ZeroFile("checkpoint/pages-1.img", 8<<20) })
	tmp := t.TempDir()
	if _, err := dump.OpenArchive(p, dump.ArchiveOptions{SpoolPages: true, TempDir: tmp, MaxSpool: 4 << 20}); err == nil ||
		!strings.Contains(err.Error(), "--max-spool") {
		t.Fatalf("8 MiB of pages under a 4 MiB bound: %v", err)
	}
	restore := dump.SetDefaultLimits(dump.Limits{MaxSpool: 4 << 20, MaxMembers: 2})
	_, err := dump.OpenArchive(p, dump.ArchiveOptions{TempDir: tmp})
	restore()
	if err == nil || !strings.Contains(err.Error(), "more than 2 members") {
		t.Fatalf("SetDefaultLimits(MaxMembers 2): %v", err)
	}
	a, err := dump.OpenArchive(p, dump.ArchiveOptions{SpoolPages: true, TempDir: tmp, MaxSpool: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := a.ReadFile("checkpoint/pages-1.img"); err != nil || len(b) != 8<<20 {
		t.Fatalf("pages: %d bytes, %v", len(b), err)
	}
	a.Close()
}

// TestArchiveDamagedTrailer: a gzip archive whose CRC or length is wrong,
// whose trailer is cut off, or a zstd archive whose checksum is wrong is
// an error naming the archive, although the tar ends before the damage.
func TestArchiveDamagedTrailer(t *testing.T) {
	tar := func(t *testing.T) []byte {
		var buf bytes.Buffer
		root := map[string][]byte{"config.dump": []byte(`{}`)}
		if err := dump.WriteArchive(&buf, os.DirFS("../testdata/dumps/sleep-plain"), root, "MANIFEST.txt"); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tar)
	zw.Close()
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	zst := enc.EncodeAll(tar, nil)
	edit := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"gzip CRC", edit(gz.Bytes(), func(b []byte) []byte { b[len(b)-8] ^= 1; return b }), "damaged archive: gzip: invalid checksum"},
		{"gzip length", edit(gz.Bytes(), func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), "damaged archive: gzip: invalid checksum"},
		{"gzip trailer cut", gz.Bytes()[:gz.Len()-5], "damaged archive: unexpected EOF"},
		{"zstd checksum", edit(zst, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), "damaged archive:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "a.tar")
			os.WriteFile(p, tc.data, 0o600)
			_, err := dump.OpenArchive(p, dump.ArchiveOptions{TempDir: t.TempDir()})
			if err == nil || !strings.HasPrefix(err.Error(), p+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v: want %q", err, tc.want)
			}
		})
	}
	// Undamaged, both open.
	for _, data := range [][]byte{gz.Bytes(), zst} {
		a, err := dump.NewArchive(bytes.NewReader(data), int64(len(data)), "ok", dump.ArchiveOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
	}
}

// TestArchiveReadStopped: a read of an archive stops promptly when its
// Context is canceled or AbortReads is called, with ErrAborted, and
// leaves no temporary folder.
func TestArchiveReadStopped(t *testing.T) {
	p := writeBomb(t, "zst", func(b *bomb.Writer) {
		b.ZeroFile("checkpoint/pages-1.img", 1<<30)
		b.ZeroFile("rootfs-diff.tar", 3<<30)
	})
	for _, how := range []string{"context", "AbortReads"} {
		t.Run(how, func(t *testing.T) {
			tmp := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			time.AfterFunc(50*time.Millisecond, func() {
				if how == "context" {
					cancel()
				} else {
					dump.AbortReads()
				}
			})
			start := time.Now()
			_, err := dump.OpenArchive(p, dump.ArchiveOptions{Context: ctx, TempDir: tmp, SpoolPages: true, MaxSpool: 2 << 30})
			took := time.Since(start)
			if !errors.Is(err, dump.ErrAborted) || took > time.Second {
				t.Errorf("after %v: %v: want ErrAborted within 1 s", took, err)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
				t.Errorf("left %s in the temporary folder", ents[0].Name())
			}
		})
	}
}

// TestRemoveStaleTemp: the temporary folder of a process that is gone, or
// whose pid another process has now, is removed; that of a live process,
// of this one, and one whose owner cannot be told are kept.
func TestRemoveStaleTemp(t *testing.T) {
	dead := exec.Command(os.Args[0], "-test.run=^$")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	mk := func(name, owner string) string {
		p := filepath.Join(parent, name)
		os.Mkdir(p, 0o700)
		os.WriteFile(filepath.Join(p, "pages-1.img"), []byte("spooled"), 0o600)
		if owner != "" {
			os.WriteFile(filepath.Join(p, "owner"), []byte(owner), 0o600)
		}
		return p
	}
	ppid := os.Getppid()
	gone := mk(fmt.Sprintf("critq-archive-%d-1", dead.Process.Pid), fmt.Sprintf("%d 123\n", dead.Process.Pid))
	goneNoOwner := mk(fmt.Sprintf("critq-archive-%d-2", dead.Process.Pid), "")
	reused := mk(fmt.Sprintf("critq-archive-%d-3", ppid), fmt.Sprintf("%d 1\n", ppid))
	alive := mk(fmt.Sprintf("critq-archive-%d-4", ppid), "")
	mine := mk(fmt.Sprintf("critq-archive-%d-5", os.Getpid()), "")
	old := mk("critq-archive-123456", "")
	removed := dump.RemoveStaleTemp(parent)
	want := []string{gone, goneNoOwner}
	if runtime.GOOS == "linux" {
		want = append(want, reused)
	}
	sort.Strings(removed)
	sort.Strings(want)
	if fmt.Sprint(removed) != fmt.Sprint(want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	for _, p := range []string{alive, mine, old} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed", p)
		}
	}
}
