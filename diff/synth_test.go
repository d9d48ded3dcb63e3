package diff

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/proto/images"
)

const pageSize = 4096

// synth describes a synthetic one-task dump: nvmas small VMAs from
// vmaBase (VMA i has PROT_READ|PROT_WRITE, PROT_READ only where i is in
// readOnly), and, when memPages > 0, one anonymous VMA of memPages pages at
// memBase, all in the pages file, whose page i holds fill(i).
type synth struct {
	nvmas    int
	readOnly map[int]bool
	memPages uint64
	fill     func(i uint64) []byte
}

const (
	vmaBase = uint64(0x10000000)
	memBase = uint64(0x7f0000000000)
)

func writeImage(path, kind string, msgs ...proto.Message) error {
	k, ok := magic.ByName(kind)
	if !ok {
		return fmt.Errorf("no kind %s", kind)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w, err := codec.NewWriter(f, codec.HeaderFor(k))
	for _, m := range msgs {
		if err == nil {
			err = w.WriteMessage(m, nil)
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// write writes pstree.img, core-1.img, mm-1.img and, with memory,
// pagemap-1.img and pages-1.img into dir, with the codec.
func (s synth) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mm := &images.MmEntry{MmStartCode: proto.Uint64(0x400000), MmEndCode: proto.Uint64(0x401000)}
	mm.Vmas = make([]*images.VmaEntry, 0, s.nvmas+1)
	for i := 0; i < s.nvmas; i++ {
		start := vmaBase + uint64(i)*0x2000
		prot := uint32(1 | 2)
		if s.readOnly[i] {
			prot = 1
		}
		mm.Vmas = append(mm.Vmas, &images.VmaEntry{Start: proto.Uint64(start), End: proto.Uint64(start + 0x1000), Pgoff: proto.Uint64(0),
			Shmid: proto.Uint64(0), Prot: proto.Uint32(prot), Flags: proto.Uint32(0x22), Status: proto.Uint32(1 | 1<<9), Fd: proto.Int64(-1)})
	}
	if s.memPages > 0 {
		mm.Vmas = append(mm.Vmas, &images.VmaEntry{Start: proto.Uint64(memBase), End: proto.Uint64(memBase + s.memPages*pageSize), Pgoff: proto.Uint64(0),
			Shmid: proto.Uint64(0), Prot: proto.Uint32(3), Flags: proto.Uint32(0x22), Status: proto.Uint32(1 | 1<<9), Fd: proto.Int64(-1)})
	}
	core := &images.CoreEntry{Mtype: images.CoreEntry_X86_64.Enum(),
		Tc: &images.TaskCoreEntry{TaskState: proto.Uint32(1), ExitCode: proto.Uint32(0), Personality: proto.Uint32(0),
			Flags: proto.Uint32(0), BlkSigset: proto.Uint64(0), Comm: proto.String("synth")}}
	ps := &images.PstreeEntry{Pid: proto.Uint32(1), Ppid: proto.Uint32(0), Pgid: proto.Uint32(1), Sid: proto.Uint32(1), Threads: []uint32{1}}
	for _, img := range []struct {
		kind, name string
		msg        proto.Message
	}{{"PSTREE", "pstree.img", ps}, {"CORE", "core-1.img", core}, {"MM", "mm-1.img", mm}} {
		if err := writeImage(filepath.Join(dir, img.name), img.kind, img.msg); err != nil {
			return err
		}
	}
	if s.memPages == 0 {
		return nil
	}
	if err := writeImage(filepath.Join(dir, "pagemap-1.img"), "PAGEMAP", &images.PagemapHead{PagesId: proto.Uint32(1)},
		&images.PagemapEntry{Vaddr: proto.Uint64(memBase), NrPages: proto.Uint64(s.memPages), Flags: proto.Uint32(4)}); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "pages-1.img"))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := uint64(0); i < s.memPages && err == nil; i++ {
		_, err = w.Write(s.fill(i))
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// memFill fills every page: its index as text ("page 12"), then bytes
// 0x80|i; version 2 changes the pages whose index is a multiple of 4096
// ("page 4096 v2"). The returned page is reused by the next call.
func memFill(version int) func(i uint64) []byte {
	b := make([]byte, pageSize)
	return func(i uint64) []byte {
		for j := range b {
			b[j] = 0x80 | byte(i&0x7f)
		}
		text := fmt.Sprintf("page %d", i)
		if i%4096 == 0 && version == 2 {
			text += " v2"
		}
		copy(b, text)
		return b
	}
}

// synthPair returns the pair of synthetic dumps the speed figures of the
// note are measured on: nvmas VMAs, one made read-only and added more in b;
// memPages pages of memory, every 4096th one changed in b.
func synthPair(nvmas, added int, memPages uint64) (a, b synth) {
	a = synth{nvmas: nvmas, memPages: memPages, fill: memFill(1)}
	b = synth{nvmas: nvmas + added, readOnly: map[int]bool{nvmas / 2: true}, memPages: memPages, fill: memFill(2)}
	return a, b
}

// TestSynthetic checks the diff of a small synthetic pair: exactly the
// protection change, the added VMAs and the changed pages.
func TestSynthetic(t *testing.T) {
	const nvmas, added, pages = 2000, 20, 3 * 4096
	sa, sb := synthPair(nvmas, added, pages)
	dir := t.TempDir()
	for _, x := range []struct {
		s    synth
		name string
	}{{sa, "a"}, {sb, "b"}} {
		if err := x.s.write(filepath.Join(dir, x.name)); err != nil {
			t.Fatal(err)
		}
	}
	cs := diffDirs(t, filepath.Join(dir, "a"), filepath.Join(dir, "b"), Options{Pages: true, Bytes: true})
	var prot, add, mem int
	for _, c := range cs {
		switch {
		case c.GetSection() == "vmas" && c.GetOp() == Changed && c.GetPath() == "prot" && c.GetKey() == hexKey(vmaBase+nvmas/2*0x2000) &&
			c.GetOld() == "PROT_READ | PROT_WRITE" && c.GetNew() == "PROT_READ":
			prot++
		case c.GetSection() == "vmas" && c.GetOp() == Added:
			add++
		case c.GetSection() == "memory" && c.GetOp() == Changed && c.GetPages() == 1 && (c.GetAddr()-memBase)/pageSize%4096 == 0:
			i := (c.GetAddr() - memBase) / pageSize
			// "page N" in a, "page N v2" in b
			v1 := fmt.Sprintf("page %d", i)
			want := fmt.Sprintf("0x%x: %x", c.GetAddr()+uint64(len(v1)), " v2")
			if len(c.GetNew()) < len(want) || c.GetNew()[:len(want)] != want {
				t.Errorf("page %d: first difference %q, want %q...", i, c.GetNew(), want)
			}
			mem++
		default:
			t.Errorf("unexpected %s", show(c))
		}
	}
	if prot != 1 || add != added || mem != pages/4096 {
		t.Errorf("%d protection changes (want 1), %d added VMAs (want %d), %d changed pages (want %d)", prot, add, added, mem, pages/4096)
	}
}

// TestWriteSyntheticPair writes the pairs the note times whole commands on,
// to $CRITQ_SYNTH_DIR: vmas-a, vmas-b (100,000 VMAs; one made read-only and
// 1,000 added in b) and, with CRITQ_SYNTH_MEM_GIB=N, mem-a and mem-b (N GiB
// of memory, every page written, every 4096th changed in b). Remove the
// folder afterwards.
func TestWriteSyntheticPair(t *testing.T) {
	dir := os.Getenv("CRITQ_SYNTH_DIR")
	if dir == "" {
		t.Skip("CRITQ_SYNTH_DIR not set")
	}
	sa, sb := synthPair(100_000, 1000, 0)
	if err := sa.write(filepath.Join(dir, "vmas-a")); err != nil {
		t.Fatal(err)
	}
	if err := sb.write(filepath.Join(dir, "vmas-b")); err != nil {
		t.Fatal(err)
	}
	gib, _ := strconv.Atoi(os.Getenv("CRITQ_SYNTH_MEM_GIB"))
	if gib <= 0 {
		return
	}
	sa, sb = synthPair(10, 0, uint64(gib)<<30/pageSize)
	sb.readOnly = nil
	if err := sa.write(filepath.Join(dir, "mem-a")); err != nil {
		t.Fatal(err)
	}
	if err := sb.write(filepath.Join(dir, "mem-b")); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkDiffVMAs diffs two dumps of 100,000 VMAs (one protection changed, 1,000 added).
func BenchmarkDiffVMAs(b *testing.B) {
	sa, sb := synthPair(100_000, 1000, 0)
	dir := b.TempDir()
	if err := sa.write(filepath.Join(dir, "a")); err != nil {
		b.Fatal(err)
	}
	if err := sb.write(filepath.Join(dir, "b")); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		cs, err := Dumps(context.Background(), openDump(b, filepath.Join(dir, "a")), openDump(b, filepath.Join(dir, "b")), Options{})
		if err != nil || len(cs) != 1001 {
			b.Fatal(len(cs), err)
		}
	}
}
