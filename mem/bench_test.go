package mem_test

import (
	"bufio"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/mem"
	"github.com/critq/critq/proto/images"
)

const (
	benchBase  = 0x7f0000000000
	benchSize  = 1 << 30 // bytes of pages
	benchEntry = 64      // pages per pagemap entry
)

// writeBigDump writes into dir a dump of one task with benchSize bytes of
// pseudo-random pages in one anonymous VMA, described by pagemap entries
// of benchEntry pages, with a marker every 64 MiB.
func writeBigDump(b testing.TB, dir string) string {
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write("pstree.img", imageBytes(b, "PSTREE", &images.PstreeEntry{Pid: proto.Uint32(1), Ppid: proto.Uint32(0), Pgid: proto.Uint32(1), Sid: proto.Uint32(1), Threads: []uint32{1}}))
	write("core-1.img", imageBytes(b, "CORE", core(images.CoreEntry_X86_64)))
	write("mm-1.img", imageBytes(b, "MM", mmEntry(vma(benchBase, benchBase+benchSize, anonPriv, 0x22, 0, 0))))
	msgs := []proto.Message{&images.PagemapHead{PagesId: proto.Uint32(1)}}
	for a := uint64(0); a < benchSize; a += benchEntry * 4096 {
		msgs = append(msgs, pm(benchBase+a, benchEntry, mem.PEPresent))
	}
	write("pagemap-1.img", imageBytes(b, "PAGEMAP", msgs...))
	f, err := os.Create(filepath.Join(dir, "pages-1.img"))
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for off := 0; off < benchSize; off += len(buf) {
		rng.Read(buf)
		if off%(64<<20) == 0 {
			copy(buf[4093:], "CRITQ-MARKER-bench-42") // across a page boundary
		}
		w.Write(buf)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// TestWriteBigDump writes the 1 GiB dump of BenchmarkMemory1GiB into the
// folder CRITQ_BIG_DUMP names, to time the critq command on it:
//
//	CRITQ_BIG_DUMP=/tmp/big go test ./mem -run TestWriteBigDump
//	critq mem search /tmp/big CRITQ-MARKER-bench
func TestWriteBigDump(t *testing.T) {
	dir := os.Getenv("CRITQ_BIG_DUMP")
	if dir == "" {
		t.Skip("CRITQ_BIG_DUMP is not set")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeBigDump(t, dir)
}

// BenchmarkMemory1GiB measures search and random reads over 1 GiB of
// pages. Throughput is in bytes of pages scanned; peak-RSS-MB is the
// process's maximum resident size so far.
func BenchmarkMemory1GiB(b *testing.B) {
	dir := writeBigDump(b, b.TempDir())
	_, m := mustOpen(b, dir)
	search := func(b *testing.B, p mem.Pattern) {
		b.SetBytes(benchSize)
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			n = 0
			if err := m.Search(p, mem.SearchOptions{}, func(mem.Match) error { n++; return nil }); err != nil {
				b.Fatal(err)
			}
		}
		if n != benchSize/(64<<20) {
			b.Fatalf("%d matches, wanted %d", n, benchSize/(64<<20))
		}
		b.ReportMetric(maxRSSMB(), "peak-RSS-MB")
	}
	b.Run("search-literal", func(b *testing.B) { search(b, mem.Literal([]byte("CRITQ-MARKER-bench"))) })
	b.Run("search-regexp-prefix", func(b *testing.B) {
		search(b, mem.Regexp(regexp.MustCompile(`CRITQ-MARKER-[a-z]+-[0-9]+`)))
	})
	b.Run("read-4KiB-random", func(b *testing.B) {
		if _, err := m.Read(1, benchBase, 1); err != nil { // builds the index
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		for b.Loop() {
			addr := benchBase + rng.Uint64N(benchSize-4096)
			if _, err := m.Read(1, addr, 4096); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(maxRSSMB(), "peak-RSS-MB")
	})
}
