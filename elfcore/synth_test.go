package elfcore_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/elfcore"
	"github.com/critq/critq/mem"
	"github.com/critq/critq/proto/images"

	"github.com/critq/critq/internal/testcpu"
)

func openSynth(t testing.TB, s synth) *dump.Dump {
	t.Helper()
	d, err := dump.Open(s.write(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func notesOf(t *testing.T, core []byte) (*elf.File, map[uint32][]coreNote) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(core))
	if err != nil {
		t.Fatal(err)
	}
	by := map[uint32][]coreNote{}
	for _, n := range parseNotes(t, f) {
		by[n.typ] = append(by[n.typ], n)
	}
	return f, by
}

func loads(f *elf.File) []*elf.Prog {
	var out []*elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			out = append(out, p)
		}
	}
	return out
}

// TestSynthLayout checks a core of a dump written with the codec: the
// bytes of every page, the file mapping whose first and last pages are
// left out without --root and read from the root with it, the notes.
func TestSynthLayout(t *testing.T) {
	s := synth{VMAs: 3, Pages: 2}
	d := openSynth(t, s)
	files := s.files(t)
	pages := files["pages-1.img"]
	const ps = 4096

	core, p := writeCore(t, d, 1, elfcore.Options{})
	f, notes := notesOf(t, core)
	ls := loads(f)
	// The file VMA: page 0 left out (PT_LOAD with p_filesz 0), page 1 from
	// the dump with page 2 left out after it.
	if len(ls) != 2+s.VMAs {
		t.Fatalf("%d PT_LOADs, want %d", len(ls), 2+s.VMAs)
	}
	if ls[0].Vaddr != synthFile || ls[0].Filesz != 0 || ls[0].Memsz != ps || ls[0].Flags != elf.PF_R|elf.PF_X {
		t.Errorf("file page 0: %+v", ls[0].ProgHeader)
	}
	if ls[1].Vaddr != synthFile+ps || ls[1].Filesz != ps || ls[1].Memsz != 2*ps {
		t.Errorf("file page 1: %+v", ls[1].ProgHeader)
	}
	if p.MissingBytes != 2*ps || len(p.Missing) != 1 || p.Missing[0].File != "/lib/x.so" {
		t.Errorf("missing %d %+v", p.MissingBytes, p.Missing)
	}
	got := make([]byte, ps)
	if _, err := readCore(f, synthFile+ps, got); err != nil || !bytes.Equal(got, pages[:ps]) {
		t.Errorf("file page 1 differs (%v)", err)
	}
	for i := 0; i < s.VMAs; i++ {
		l := ls[2+i]
		if l.Filesz != uint64(s.Pages)*ps || l.Flags != elf.PF_R|elf.PF_W {
			t.Errorf("vma %d: %+v", i, l.ProgHeader)
		}
		got := make([]byte, l.Filesz)
		l.ReadAt(got, 0)
		off := (1 + i*s.Pages) * ps
		if !bytes.Equal(got, pages[off:off+int(l.Filesz)]) {
			t.Errorf("vma %d: bytes differ from the pages", i)
		}
	}
	psinfo := notes[uint32(elf.NT_PRPSINFO)]
	if len(psinfo) != 1 || !strings.HasPrefix(string(psinfo[0].desc[56:]), "synth --flag\x00") {
		t.Errorf("prpsinfo %v", psinfo)
	}
	auxv := notes[6][0].desc
	if len(auxv) != 4*16 || binary.LittleEndian.Uint64(auxv[16:]) != 25 || binary.LittleEndian.Uint64(auxv[48:]) != 0 {
		t.Errorf("auxv % x", auxv)
	}
	fn := notes[0x46494c45][0].desc
	if binary.LittleEndian.Uint64(fn) != 1 || binary.LittleEndian.Uint64(fn[8:]) != ps || !strings.HasSuffix(string(fn), "/lib/x.so\x00") {
		t.Errorf("NT_FILE % x", fn)
	}

	// With a root that holds the file: the whole mapping, the tail of the
	// file's last page zero.
	root := t.TempDir()
	lib := bytes.Repeat([]byte{'L'}, 2*ps+100)
	os.MkdirAll(filepath.Join(root, "lib"), 0o755)
	os.WriteFile(filepath.Join(root, "lib", "x.so"), lib, 0o644)
	core, p = writeCore(t, d, 1, elfcore.Options{Root: root})
	f, _ = notesOf(t, core)
	ls = loads(f)
	if len(ls) != 1+s.VMAs || ls[0].Filesz != 3*ps || p.MissingBytes != 0 || p.RootBytes != 2*ps {
		t.Fatalf("with root: %d PT_LOADs, first %+v, missing %d, root %d", len(ls), ls[0].ProgHeader, p.MissingBytes, p.RootBytes)
	}
	got = make([]byte, 3*ps)
	ls[0].ReadAt(got, 0)
	want := append(append(append([]byte{}, lib[:ps]...), pages[:ps]...), lib[2*ps:]...)
	want = append(want, make([]byte, ps-100)...)
	if !bytes.Equal(got, want) {
		t.Errorf("with root: the file mapping's bytes differ")
	}

	// A root whose file has another size than the images record: left out.
	os.WriteFile(filepath.Join(root, "lib", "x.so"), lib[:ps], 0o644)
	_, p = writeCore(t, d, 1, elfcore.Options{Root: root})
	if p.MissingBytes != 2*ps || !strings.Contains(p.Missing[0].Why, "the dump recorded") {
		t.Errorf("root with another file: missing %d %+v", p.MissingBytes, p.Missing)
	}
	// A path in the images that climbs out of the root is not read.
}

// TestSynthArm64 checks the notes of an aarch64 core.
func TestSynthArm64(t *testing.T) {
	d := openSynth(t, synth{VMAs: 1, Pages: 1, Arch: images.CoreEntry_AARCH64})
	core, _ := writeCore(t, d, 1, elfcore.Options{})
	f, notes := notesOf(t, core)
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("machine %v", f.Machine)
	}
	st := notes[uint32(elf.NT_PRSTATUS)]
	if len(st) != 1 || len(st[0].desc) != 392 {
		t.Fatalf("prstatus %d notes", len(st))
	}
	r := st[0].desc[112:]
	if binary.LittleEndian.Uint64(r) != 0x1000 || binary.LittleEndian.Uint64(r[31*8:]) != synthBase+0x800 ||
		binary.LittleEndian.Uint64(r[32*8:]) != synthBase+0x10 || binary.LittleEndian.Uint32(st[0].desc[384:]) != 1 {
		t.Errorf("aarch64 prstatus regs % x", r[:40])
	}
	fp := notes[uint32(elf.NT_FPREGSET)]
	if len(fp) != 1 || len(fp[0].desc) != 528 || binary.LittleEndian.Uint32(fp[0].desc[512:]) != 0x10 {
		t.Errorf("aarch64 fpregset")
	}
	if tls := notes[0x401]; len(tls) != 1 || binary.LittleEndian.Uint64(tls[0].desc) != 0x7fffdead0000 {
		t.Errorf("aarch64 NT_ARM_TLS")
	}
}

// TestSpeed40MB times the core of a task with 40 MB of pages in 400
// VMAs; the 0.5 s bound (CPU time) is checked with CRITQ_LONG=1 (CI
// machines under the race detector are slower).
func TestSpeed40MB(t *testing.T) {
	s := synth{VMAs: 400, Pages: 25}
	d := openSynth(t, s)
	cpu0 := testcpu.Used()
	start := time.Now()
	m := mem.Open(d)
	w := elfcore.New(d, m, elfcore.Options{})
	p, err := w.Write(io.Discard, 1)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	m.Close()
	el := time.Since(start)
	cpu := testcpu.Used() - cpu0
	t.Logf("core of %d bytes (%d from the dump, %d VMAs) in %v (CPU %v)", p.Size, p.DumpBytes, s.VMAs+1, el, cpu)
	// CPU time, not wall time: on a shared machine the wall time says more
	// about the other processes.
	if os.Getenv("CRITQ_LONG") != "" && cpu > 500*time.Millisecond {
		t.Errorf("took %v of CPU, more than 0.5 s", cpu)
	}
}

func BenchmarkWrite40MB(b *testing.B) {
	d := openSynth(b, synth{VMAs: 400, Pages: 25})
	b.SetBytes(400 * 25 * 4096)
	for b.Loop() {
		m := mem.Open(d)
		w := elfcore.New(d, m, elfcore.Options{})
		if _, err := w.Write(io.Discard, 1); err != nil {
			b.Fatal(err)
		}
		w.Close()
		m.Close()
	}
}

// FuzzCoreImages writes the core of a dump whose core and mm images are
// the fuzzer's: an error or a core of exactly the planned size, never a
// panic.
func FuzzCoreImages(f *testing.F) {
	files := synth{VMAs: 2, Pages: 1}.files(f)
	f.Add(files["core-1.img"], files["mm-1.img"])
	f.Add(files["core-1.img"][:40], files["mm-1.img"])
	f.Add(files["core-1.img"], files["mm-1.img"][:60])
	arm := synth{VMAs: 1, Pages: 1, Arch: images.CoreEntry_AARCH64}.files(f)
	f.Add(arm["core-1.img"], arm["mm-1.img"])
	f.Fuzz(func(t *testing.T, core, mm []byte) {
		fsys := fstest.MapFS{}
		for name, b := range files {
			fsys[name] = &fstest.MapFile{Data: b}
		}
		fsys["core-1.img"] = &fstest.MapFile{Data: core}
		fsys["mm-1.img"] = &fstest.MapFile{Data: mm}
		d, err := dump.OpenFS(fsys, "fuzz")
		if err != nil {
			return
		}
		defer d.Close()
		m := mem.Open(d)
		defer m.Close()
		w := elfcore.New(d, m, elfcore.Options{})
		defer w.Close()
		p, err := w.Plan(1)
		if err != nil {
			return
		}
		if p.Size > 1<<20 {
			return // a huge VMA: fine to write, too slow to fuzz
		}
		var buf bytes.Buffer
		if err := w.WritePlan(&buf, p); err == nil && int64(buf.Len()) != p.Size {
			t.Fatalf("wrote %d bytes, planned %d", buf.Len(), p.Size)
		}
	})
}
