package mem_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"testing/fstest"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testimg"
	"github.com/critq/critq/mem"
	"github.com/critq/critq/proto/images"
)

// imageBytes encodes msgs as an image of kind (see package testimg).
func imageBytes(t testing.TB, kind string, msgs ...proto.Message) []byte {
	t.Helper()
	return testimg.Bytes(t, kind, msgs...)
}

// pm is a pagemap entry as a test writes it.
func pm(vaddr uint64, nr uint64, flags uint32) *images.PagemapEntry {
	return &images.PagemapEntry{Vaddr: proto.Uint64(vaddr), CompatNrPages: proto.Uint32(0), NrPages: proto.Uint64(nr), Flags: proto.Uint32(flags)}
}

func vma(start, end uint64, status uint32, flags uint32, shmid, pgoff uint64) *images.VmaEntry {
	return &images.VmaEntry{Start: proto.Uint64(start), End: proto.Uint64(end), Pgoff: proto.Uint64(pgoff),
		Shmid: proto.Uint64(shmid), Prot: proto.Uint32(3), Flags: proto.Uint32(flags), Status: proto.Uint32(status), Fd: proto.Int64(-1)}
}

func mmEntry(vmas ...*images.VmaEntry) *images.MmEntry {
	z := proto.Uint64(0)
	return &images.MmEntry{MmStartCode: z, MmEndCode: z, MmStartData: z, MmEndData: z, MmStartStack: z, MmStartBrk: z, MmBrk: z,
		MmArgStart: z, MmArgEnd: z, MmEnvStart: z, MmEnvEnd: z, ExeFileId: proto.Uint32(0), Vmas: vmas}
}

func core(arch images.CoreEntryMarch) *images.CoreEntry {
	return &images.CoreEntry{Mtype: arch.Enum(), Tc: &images.TaskCoreEntry{TaskState: proto.Uint32(1), ExitCode: proto.Uint32(0),
		Personality: proto.Uint32(0), Flags: proto.Uint32(0), BlkSigset: proto.Uint64(0), Comm: proto.String("t")}}
}

// page returns n pages of size ps filled with b.
func page(ps, n int, b byte) []byte { return bytes.Repeat([]byte{b}, ps*n) }

const (
	anonPriv = 1<<0 | 1<<9
	filePriv = 1<<0 | 1<<6
	memfdSh  = 1<<0 | 1<<7 | 1<<14
)

// testDump is a small dump with every case of the memory model, pid 1:
//
//	0x10000-0x20000 anonymous: pages 0x10000 (present, 'A'), 0x11000 in
//	  the parent ('P'), 0x12000 lazy, 0x13000-0x15000 present ('B', 'C'
//	  from an old entry with compat_nr_pages only); the rest not dumped
//	0x20000-0x22000 file mapping of /lib/x.so at pgoff 0x3000, page
//	  0x21000 present ('F')
//	0x30000-0x33000 shared memfd mapping at pgoff 0x1000 of shmem 7,
//	  whose object page 0x2000 ('S') is present
func testDump(t testing.TB) fs.FS {
	ps := 4096
	parentPages := page(ps, 1, 'P')
	pages := append(append(page(ps, 1, 'A'), page(ps, 1, 'B')...), page(ps, 1, 'C')...)
	pages = append(pages, page(ps, 1, 'F')...)
	old := &images.PagemapEntry{Vaddr: proto.Uint64(0x14000), CompatNrPages: proto.Uint32(1)}
	return fstest.MapFS{
		"pstree.img": {Data: imageBytes(t, "PSTREE", &images.PstreeEntry{Pid: proto.Uint32(1), Ppid: proto.Uint32(0), Pgid: proto.Uint32(1), Sid: proto.Uint32(1)})},
		"core-1.img": {Data: imageBytes(t, "CORE", core(images.CoreEntry_X86_64))},
		"mm-1.img":   {Data: imageBytes(t, "MM", mmEntry(vma(0x10000, 0x20000, anonPriv, 0x22, 0, 0), vma(0x20000, 0x22000, filePriv, 0x2, 5, 0x3000), vma(0x30000, 0x33000, memfdSh, 0x1, 6, 0x1000)))},
		"files.img":  {Data: imageBytes(t, "FILES", &images.FileEntry{Type: images.FdTypes_REG.Enum(), Id: proto.Uint32(5), Reg: &images.RegFileEntry{Id: proto.Uint32(5), Flags: proto.Uint32(0), Pos: proto.Uint64(0), Fown: &images.FownEntry{Uid: proto.Uint32(0), Euid: proto.Uint32(0), Signum: proto.Uint32(0), PidType: proto.Uint32(0), Pid: proto.Uint32(0)}, Name: proto.String("/lib/x.so")}}, &images.FileEntry{Type: images.FdTypes_MEMFD.Enum(), Id: proto.Uint32(6), Memfd: &images.MemfdFileEntry{Id: proto.Uint32(6), Flags: proto.Uint32(0), Pos: proto.Uint64(0), Fown: &images.FownEntry{Uid: proto.Uint32(0), Euid: proto.Uint32(0), Signum: proto.Uint32(0), PidType: proto.Uint32(0), Pid: proto.Uint32(0)}, InodeId: proto.Uint32(9)}})},
		"memfd.img":  {Data: imageBytes(t, "MEMFD_INODE", &images.MemfdInodeEntry{Name: proto.String("m"), Uid: proto.Uint32(0), Gid: proto.Uint32(0), Size: proto.Uint64(0x4000), Shmid: proto.Uint32(7), Seals: proto.Uint32(0), InodeId: proto.Uint64(9)})},
		"pagemap-1.img": {Data: imageBytes(t, "PAGEMAP", &images.PagemapHead{PagesId: proto.Uint32(1)},
			pm(0x10000, 1, mem.PEPresent), pm(0x11000, 1, mem.PEParent), pm(0x12000, 1, mem.PELazy), pm(0x13000, 1, mem.PEPresent|mem.PELazy), old, pm(0x21000, 1, mem.PEPresent))},
		"pages-1.img":         {Data: pages},
		"pagemap-shmem-7.img": {Data: imageBytes(t, "SHMEM_PAGEMAP", &images.PagemapHead{PagesId: proto.Uint32(2)}, pm(0x2000, 1, mem.PEPresent))},
		"pages-2.img":         {Data: page(ps, 1, 'S')},
		"parent/pagemap-1.img": {Data: imageBytes(t, "PAGEMAP", &images.PagemapHead{PagesId: proto.Uint32(1)},
			pm(0x10000, 1, mem.PEParent), pm(0x11000, 1, mem.PEPresent))},
		"parent/pages-1.img": {Data: parentPages},
	}
}

func openFS(t testing.TB, fsys fs.FS, opts ...mem.Option) *mem.Memory {
	t.Helper()
	d, err := dump.OpenFS(fsys, "test")
	if err != nil {
		t.Fatal(err)
	}
	m := mem.Open(d, opts...)
	t.Cleanup(func() { m.Close() })
	return m
}

func TestRead(t *testing.T) {
	m := openFS(t, testDump(t))
	for _, c := range []struct {
		name      string
		addr      uint64
		n         int
		want      []byte // nil: compare only the error
		err       error
		errString string
	}{
		{name: "present", addr: 0x10ff0, n: 16, want: page(1, 16, 'A')},
		{name: "present then parent", addr: 0x10ffe, n: 4, want: []byte("AAPP")},
		{name: "lazy", addr: 0x12000, n: 1, err: mem.ErrNotDumped, errString: "pid 1: 0x12000: not in the dump: lazy page"},
		{name: "present and lazy", addr: 0x13000, n: 2, want: []byte("BB")},
		{name: "compat_nr_pages, no flags", addr: 0x14000, n: 2, want: []byte("CC")},
		{name: "anonymous hole is zero", addr: 0x14fff, n: 3, want: []byte("C\x00\x00")},
		{name: "file page not dumped", addr: 0x20010, n: 1, err: mem.ErrNotDumped, errString: "pid 1: 0x20010: not in the dump: /lib/x.so + 0x3010"},
		{name: "file page dumped", addr: 0x21000, n: 1, want: []byte("F")},
		{name: "memfd object page", addr: 0x31000, n: 2, want: []byte("SS")},
		{name: "memfd hole is zero", addr: 0x30fff, n: 2, want: []byte("\x00S")},
		{name: "between VMAs", addr: 0x22000, n: 1, err: mem.ErrUnmapped, errString: "pid 1: 0x22000: not in any VMA"},
		{name: "runs off a VMA", addr: 0x21fff, n: 2, err: mem.ErrUnmapped},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := m.Read(1, c.addr, c.n)
			if c.err != nil {
				if !errors.Is(err, c.err) || (c.errString != "" && err.Error() != c.errString) {
					t.Fatalf("Read(1, 0x%x, %d) error %v, wanted %v %q", c.addr, c.n, err, c.err, c.errString)
				}
				return
			}
			if err != nil || !bytes.Equal(got, c.want) {
				t.Fatalf("Read(1, 0x%x, %d) got %q, %v, wanted %q", c.addr, c.n, got, err, c.want)
			}
		})
	}
	if _, err := m.Read(2, 0, 1); err == nil {
		t.Error("Read of a missing task succeeded")
	}
}

func TestPageSize(t *testing.T) {
	fsys := testDump(t).(fstest.MapFS)
	m := openFS(t, fsys)
	if ps, err := m.PageSizeOf(); ps != 4096 || err != nil {
		t.Errorf("x86_64: PageSizeOf() got %d, %v, wanted 4096", ps, err)
	}
	// aarch64 with 16K pages: derived from pages files (pages-1.img holds
	// 4 pages, pages-2.img 1).
	fsys["core-1.img"] = &fstest.MapFile{Data: imageBytes(t, "CORE", core(images.CoreEntry_AARCH64))}
	fsys["pages-1.img"] = &fstest.MapFile{Data: make([]byte, 4*16384)}
	if ps, err := openFS(t, fsys).PageSizeOf(); ps != 16384 || err != nil {
		t.Errorf("aarch64: PageSizeOf() got %d, %v, wanted 16384", ps, err)
	}
	if ps, err := openFS(t, fsys, mem.PageSize(65536)).PageSizeOf(); ps != 65536 || err != nil {
		t.Errorf("PageSize(65536): PageSizeOf() got %d, %v", ps, err)
	}
	fsys["pages-1.img"] = &fstest.MapFile{Data: make([]byte, 4*4096+1)}
	if _, err := openFS(t, fsys).PageSizeOf(); err == nil {
		t.Error("a pages file of a size that is no multiple: no error")
	}
}

// recordingFS serves fsys, handing out pages files that record every
// ReadAt and that do not implement io.Seeker.
type recordingFS struct {
	fs.FS
	mu    sync.Mutex
	reads []readAt
}

type readAt struct {
	file     string
	off, len int64
}

type recordingFile struct {
	fs.File
	ra   io.ReaderAt
	name string
	fsys *recordingFS
}

func (f *recordingFile) ReadAt(p []byte, off int64) (int, error) {
	f.fsys.mu.Lock()
	f.fsys.reads = append(f.fsys.reads, readAt{f.name, off, int64(len(p))})
	f.fsys.mu.Unlock()
	return f.ra.ReadAt(p, off)
}

func (r *recordingFS) Open(name string) (fs.File, error) {
	f, err := r.FS.Open(name)
	if err != nil || filepath.Ext(name) != ".img" || !bytes.HasPrefix([]byte(filepath.Base(name)), []byte("pages-")) {
		return f, err
	}
	return &recordingFile{File: f, ra: f.(io.ReaderAt), name: name, fsys: r}, nil
}

func (r *recordingFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(r.FS, name) }
func (r *recordingFS) Stat(name string) (fs.FileInfo, error)      { return fs.Stat(r.FS, name) }
func (r *recordingFS) Sub(dir string) (fs.FS, error) {
	sub, err := fs.Sub(r.FS, dir)
	return &recordingFS{FS: sub}, err
}

func TestReadsWithReadAt(t *testing.T) {
	rec := &recordingFS{FS: testDump(t)}
	m := openFS(t, rec)
	if _, err := m.Read(1, 0x13000, 8192); err != nil {
		t.Fatal(err)
	}
	// 0x13000 and 0x14000 are the 2nd and 3rd pages of pages-1.img, from
	// two pagemap entries: two reads, nothing else.
	want := []readAt{{"pages-1.img", 4096, 4096}, {"pages-1.img", 8192, 4096}}
	if len(rec.reads) != len(want) || rec.reads[0] != want[0] || rec.reads[1] != want[1] {
		t.Errorf("Read(1, 0x13000, 8192) read %v, wanted %v", rec.reads, want)
	}
	rec.reads = nil
	if _, err := m.Read(1, 0x31000, 1); err != nil {
		t.Fatal(err)
	}
	if want := (readAt{"pages-2.img", 0, 1}); len(rec.reads) != 1 || rec.reads[0] != want {
		t.Errorf("memfd read: %v, wanted [%v]", rec.reads, want)
	}
}

func TestSearch(t *testing.T) {
	m := openFS(t, testDump(t))
	type hit struct {
		addr          uint64
		before, after string
	}
	for _, c := range []struct {
		name string
		p    mem.Pattern
		want []hit
	}{
		// "APPB" would span the present, parent and lazy pages: not one
		// held span past the lazy page.
		{"across present and parent", mem.Literal([]byte("AP")), []hit{{0x10fff, "AA", "PP"}}},
		{"raw bytes", mem.Literal([]byte("C\x00")), nil},
		{"regexp with prefix", mem.Regexp(regexp.MustCompile(`BC+`)), []hit{{0x13fff, "BB", ""}}},
		{"regexp without prefix", mem.Regexp(regexp.MustCompile(`[FS]{1000}[FS]{1000}[FS]{1000}`)), []hit{{0x21000, "", "FF"}, {0x31000, "\x00\x00", "SS"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []hit
			err := m.Search(c.p, mem.SearchOptions{Context: 2}, func(h mem.Match) error {
				if h.Addr == 0x13fff {
					h.After = nil // the match runs to the end of the held bytes
				}
				got = append(got, hit{h.Addr, string(h.Before), string(h.After)})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("Search got %d matches, wanted %v", len(got), c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("match %d got %+v, wanted %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

// TestSearchChunks checks that matches across chunk boundaries are found
// once, in a 3 MiB run.
func TestSearchChunks(t *testing.T) {
	const n = 3 << 20
	data := make([]byte, n)
	for _, off := range []int{0, 1<<20 - 3, 1<<20 + 10, 2<<20 - 1, n - 6} {
		copy(data[off:], "MARKER")
	}
	fsys := fstest.MapFS{
		"core-1.img":    {Data: imageBytes(t, "CORE", core(images.CoreEntry_X86_64))},
		"mm-1.img":      {Data: imageBytes(t, "MM", mmEntry(vma(0x100000, 0x100000+n, anonPriv, 0x22, 0, 0)))},
		"pagemap-1.img": {Data: imageBytes(t, "PAGEMAP", &images.PagemapHead{PagesId: proto.Uint32(1)}, pm(0x100000, n/4096, mem.PEPresent))},
		"pages-1.img":   {Data: data},
	}
	m := openFS(t, fsys)
	for _, p := range []mem.Pattern{mem.Literal([]byte("MARKER")), mem.Regexp(regexp.MustCompile(`MARK(ER)`))} {
		var got []uint64
		if err := m.Search(p, mem.SearchOptions{}, func(h mem.Match) error { got = append(got, h.Addr-0x100000); return nil }); err != nil {
			t.Fatal(err)
		}
		want := []uint64{0, 1<<20 - 3, 1<<20 + 10, 2<<20 - 1, n - 6}
		if len(got) != len(want) {
			t.Fatalf("got %x, wanted %x", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("got %x, wanted %x", got, want)
				break
			}
		}
	}
}

func TestParentChainCorpus(t *testing.T) {
	dir := "../../shared/corpus/predump-chain-splice/dump"
	if _, err := os.Stat(dir); err != nil {
		t.Skip("corpus not present")
	}
	d, m := mustOpen(t, dir)
	// Every page the chain holds reads without error.
	f := d.FileFor("PAGEMAP", 139)
	img, err := f.Image()
	if err != nil {
		t.Fatal(err)
	}
	parents := 0
	for _, e := range img.Entries[1:] {
		msg, err := e.Message()
		if err != nil {
			t.Fatal(err)
		}
		pe := msg.(*images.PagemapEntry)
		if pe.GetFlags()&mem.PEParent != 0 {
			parents++
		}
		if _, err := m.Read(139, pe.GetVaddr(), int(pe.GetNrPages())*4096); err != nil {
			t.Errorf("Read(139, 0x%x): %v", pe.GetVaddr(), err)
		}
	}
	if parents == 0 {
		t.Error("no PE_PARENT entry in the chain")
	}
}
