// Package mem reads the memory of the tasks of a CRIU dump: bytes at an
// address, C strings, the command line and environment, and searches.
//
// A task's memory is described by its VMAs (mm-PID.img) and its pagemap
// (pagemap-PID.img): runs of pages that are in the pages file the pagemap's
// head names (PE_PRESENT, PE_LAZY ones included when present), in the parent
// dump of an incremental dump (PE_PARENT, followed to any depth), or not in
// the dump at all. Each pagemap is turned once into an index sorted by
// address, so that an address is found in O(log n); pages are then read
// with ReadAt, never whole files.
//
// A page that the dump does not hold reads as zero in an anonymous mapping,
// and is an error that names the file and offset in a file mapping (the
// bytes are in that file on the dumping host, not in the dump). Shared
// anonymous memory, memfd and SysV shared memory come from the
// pagemap-shmem-ID.img images, whose addresses are offsets in the object.
// An address in no VMA is an error.
//
// The page size is not recorded in a dump: it is 4096 on x86_64, arm and
// s390x (core_entry.mtype), otherwise derived from the sizes of the pages
// files, and it can be given with [PageSize]. The reading host's page size
// never matters.
package mem

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
)

// MaxRead bounds the length of one Read.
const MaxRead = 256 << 20

// Option configures a Memory.
type Option func(*Memory)

// PageSize sets the page size of the dump instead of deriving it.
func PageSize(n int) Option {
	return func(m *Memory) {
		if n > 0 {
			m.fixedPS = uint64(n)
		}
	}
}

// Memory reads the memory of the tasks of one dump. Indexes are built on
// first use and kept; a Memory is safe for concurrent use. Close releases
// the pages files it opened.
type Memory struct {
	d       *dump.Dump
	fixedPS uint64
	child   *Memory // the dump this one is the parent of

	mu       sync.Mutex
	psDone   bool
	ps       uint64
	psErr    error
	tasks    map[uint32]*task
	indexes  map[string]*indexSlot
	pages    map[uint32]*pagesFile
	memfdShm map[uint32]uint32 // memfd inode id -> shmid
	metaErr  error
	metaDone bool
	parent   *Memory
	pDone    bool
	pErr     error
}

type indexSlot struct {
	ix  *pageIndex
	err error
}

// task is what Memory knows of one task.
type task struct {
	pid  uint32
	mm   *images.MmEntry // nil for zombies and dead tasks
	vmas []*images.VmaEntry
	err  error
}

// Open returns the memory of dump d. Nothing is read until asked.
func Open(d *dump.Dump, opts ...Option) *Memory {
	m := &Memory{d: d}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Dump returns the dump the memory belongs to.
func (m *Memory) Dump() *dump.Dump { return m.d }

// Close closes the pages files opened so far, those of parent dumps too.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var first error
	for _, p := range m.pages {
		if err := p.close(); err != nil && first == nil {
			first = err
		}
	}
	m.pages = nil
	if m.parent != nil {
		if err := m.parent.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// PageSizeOf returns the page size of the dump: the one given with
// [PageSize], 4096 for x86_64, arm and s390x dumps, or else the size of a
// pages file divided by the number of pages its pagemaps put in it.
func (m *Memory) PageSizeOf() (uint64, error) {
	if m.fixedPS != 0 {
		return m.fixedPS, nil
	}
	if m.child != nil {
		return m.child.PageSizeOf()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.psDone {
		m.ps, m.psErr = m.pageSize()
		m.psDone = true
	}
	return m.ps, m.psErr
}

func (m *Memory) pageSize() (uint64, error) {
	for _, f := range m.d.Kind("CORE") {
		core, err := model.First[*images.CoreEntry](f)
		if err != nil || core == nil {
			continue
		}
		if fixedPageArch(core.GetMtype()) {
			return 4096, nil
		}
		break // one task tells the architecture of all
	}
	// Derive it from the pages files: size / pages.
	count := map[uint32]uint64{}
	for _, kind := range []string{"PAGEMAP", "SHMEM_PAGEMAP"} {
		for _, f := range m.d.Kind(kind) {
			img, err := f.Image()
			if err != nil {
				return 0, err
			}
			id, n, err := countPresent(img.Entries)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", f.Name, err)
			}
			count[id] += n
		}
	}
	ids := make([]uint32, 0, len(count))
	for id := range count {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		n := count[id]
		f := m.d.FileFor("PAGES", uint64(id))
		if n == 0 || f == nil || f.Size <= 0 {
			continue
		}
		ps := uint64(f.Size) / n
		if uint64(f.Size)%n == 0 && ps >= 4096 && ps <= 1<<20 && ps&(ps-1) == 0 {
			return ps, nil
		}
		return 0, fmt.Errorf("%s: %d bytes for %d pages: cannot tell the page size (give it)", f.Name, f.Size, n)
	}
	return 0, errors.New("cannot tell the page size of the dump (give it)")
}

// fixedPageArch reports whether pages are always 4096 bytes on arch.
func fixedPageArch(arch images.CoreEntryMarch) bool {
	switch arch {
	case images.CoreEntry_X86_64, images.CoreEntry_ARM, images.CoreEntry_S390:
		return true
	}
	return false
}

// index returns the page index of a pagemap file, built once.
func (m *Memory) index(f *dump.File) (*pageIndex, error) {
	ps, err := m.PageSizeOf()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.indexes == nil {
		m.indexes = map[string]*indexSlot{}
	}
	if s, ok := m.indexes[f.Name]; ok {
		return s.ix, s.err
	}
	s := &indexSlot{}
	img, err := f.Image()
	if err != nil {
		s.err = err
	} else {
		s.ix, s.err = m.checkedIndex(f.Name, img.Entries, ps)
	}
	m.indexes[f.Name] = s
	return s.ix, s.err
}

// taskIndex returns the page index of pid's pagemap, or nil if the dump
// has none.
func (m *Memory) taskIndex(pid uint32) (*pageIndex, error) {
	f := m.d.FileFor("PAGEMAP", uint64(pid))
	if f == nil {
		if m.child != nil {
			return nil, nil // a parent dump need not hold every task
		}
		if t, err := m.modelTask(pid); err != nil || t != nil {
			if err == nil {
				_, err = model.Of(m.d).Pagemap(t)
			}
			return nil, err
		}
		return nil, nil
	}
	return m.index(f)
}

// modelTask returns the task pid of the dump's process tree; nil and no
// error for a dump without pstree.img (a pre-dump) or a pid not in it.
func (m *Memory) modelTask(pid uint32) (*model.Task, error) {
	tree, err := model.Of(m.d).Tree()
	if model.IsMissing(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return tree.ByPID[pid], nil
}

// shmIndex returns the page index of shared memory object shmid, or nil.
func (m *Memory) shmIndex(shmid uint64) (*pageIndex, error) {
	f := m.d.FileFor("SHMEM_PAGEMAP", shmid)
	if f == nil {
		return nil, nil
	}
	return m.index(f)
}

// task loads what Memory needs of pid: its mm, with VMAs sorted by start.
func (m *Memory) task(pid uint32) (*task, error) {
	m.mu.Lock()
	t, ok := m.tasks[pid]
	m.mu.Unlock()
	if ok {
		return t, t.err
	}
	t = &task{pid: pid}
	mmFile := m.d.FileFor("MM", uint64(pid))
	var mt *model.Task
	var err error
	if mmFile == nil {
		// Whether a missing mm is a zombie's is the model's to say.
		mt, err = m.modelTask(pid)
	}
	switch {
	case err != nil:
		t.err = err
	case mt != nil:
		t.mm, t.err = model.Of(m.d).MM(mt)
		if t.mm == nil && t.err == nil {
			if _, ok := model.Of(m.d).Alive(mt); !ok {
				// The core that would say it is a zombie is missing.
				_, t.err = model.Of(m.d).Core(mt)
			}
		}
	default:
		// mm-PID.img is there; or there is no process tree (a pre-dump),
		// or the pid is not in it.
		if f := mmFile; f != nil {
			t.mm, t.err = model.First[*images.MmEntry](f)
			if t.err == nil && t.mm == nil {
				t.err = fmt.Errorf("%s: no entry", f.Name)
			}
		} else if pm := m.d.FileFor("PAGEMAP", uint64(pid)); pm != nil && m.d.File("pstree.img") == nil {
			t.mm, t.vmas, t.err = m.predumpVMAs(pm)
		} else if m.d.FileFor("CORE", uint64(pid)) == nil {
			t.err = fmt.Errorf("no task %d in the dump", pid)
		}
	}
	if t.mm != nil && t.vmas == nil {
		t.vmas = append([]*images.VmaEntry(nil), t.mm.GetVmas()...)
		sort.SliceStable(t.vmas, func(i, j int) bool { return t.vmas[i].GetStart() < t.vmas[j].GetStart() })
	}
	m.mu.Lock()
	if m.tasks == nil {
		m.tasks = map[uint32]*task{}
	}
	m.tasks[pid] = t
	m.mu.Unlock()
	return t, t.err
}

// predumpVMAs returns the memory of a task of a pre-dump, which has its
// pagemap and pages but no mm: one anonymous private VMA for each stretch of
// addresses the pagemap covers (its pages, its parent's, lazy ones), with
// no permissions (a pre-dump does not record them), and an empty mm.
func (m *Memory) predumpVMAs(pm *dump.File) (*images.MmEntry, []*images.VmaEntry, error) {
	ix, err := m.index(pm)
	if err != nil {
		return nil, nil, err
	}
	var vmas []*images.VmaEntry
	for _, r := range ix.runs {
		if r.where == noData {
			continue
		}
		if n := len(vmas); n > 0 && vmas[n-1].GetEnd() == r.start {
			vmas[n-1].End = proto.Uint64(r.end)
			continue
		}
		vmas = append(vmas, &images.VmaEntry{Start: proto.Uint64(r.start), End: proto.Uint64(r.end), Pgoff: proto.Uint64(0),
			Shmid: proto.Uint64(0), Prot: proto.Uint32(0), Flags: proto.Uint32(flagnames.MapPrivate | 0x20 /* MAP_ANONYMOUS */),
			Status: proto.Uint32(flagnames.VMAAreaRegular | flagnames.VMAAnonPrivate), Fd: proto.Int64(-1)})
	}
	return &images.MmEntry{}, vmas, nil
}

// MM returns the mm_entry of pid, or nil for a zombie or dead task (which
// has no memory).
func (m *Memory) MM(pid uint32) (*images.MmEntry, error) {
	t, err := m.task(pid)
	if err != nil {
		return nil, err
	}
	return t.mm, nil
}

// VMAs returns the VMAs of pid sorted by address; none for a zombie.
// The entries are shared: do not modify them.
func (m *Memory) VMAs(pid uint32) ([]*images.VmaEntry, error) {
	t, err := m.task(pid)
	if err != nil {
		return nil, err
	}
	return t.vmas, nil
}

// loadMeta reads files.img (through the dump's model) and memfd.img,
// once.
func (m *Memory) loadMeta() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.metaDone {
		return m.metaErr
	}
	m.metaDone = true
	m.memfdShm = map[uint32]uint32{}
	if _, err := model.Of(m.d).Files(); err != nil {
		m.metaErr = err
		return err
	}
	m.metaErr = model.Each(m.d, "MEMFD_INODE", func(mi *images.MemfdInodeEntry) { m.memfdShm[uint32(mi.GetInodeId())] = mi.GetShmid() })
	return m.metaErr
}

// LoadFiles reads files.img and memfd.img (once), which name the files of
// file mappings and hold the shared memory ids of memfd mappings, and
// returns why they cannot be read. Reads of such mappings fail with the
// same error, and File returns nil for every id.
func (m *Memory) LoadFiles() error { return m.loadMeta() }

// File returns the file object with id from files.img, or nil (also when
// files.img cannot be read: see [Memory.LoadFiles]; a missing files.img is
// recorded by the dump's model).
func (m *Memory) File(id uint32) *images.FileEntry {
	if m.loadMeta() != nil {
		return nil
	}
	fe, _ := model.Of(m.d).File(id)
	return fe
}

// fileName returns the path of a file mapping's file, for messages.
func (m *Memory) fileName(id uint64) string {
	fe := m.File(uint32(id))
	if fe == nil {
		return "file " + strconv.FormatUint(id, 10)
	}
	if r := fe.GetReg(); r != nil {
		return r.GetName()
	}
	return fe.GetType().String() + "." + strconv.FormatUint(id, 10)
}

// ShmemID returns the id of the shared memory object that backs vma (its
// pagemap is pagemap-shmem-ID.img): for shared anonymous memory and SysV
// shm the VMA's shmid, for a memfd mapping the memfd inode's shmid. It
// reports false for other VMAs.
func (m *Memory) ShmemID(vma *images.VmaEntry) (uint64, bool) {
	st := vma.GetStatus()
	switch {
	case st&flagnames.VMAAreaMemfd != 0:
		fe := m.File(uint32(vma.GetShmid()))
		if fe == nil || fe.GetMemfd() == nil {
			return 0, false
		}
		id, ok := m.memfdShm[fe.GetMemfd().GetInodeId()]
		return uint64(id), ok
	case st&(flagnames.VMAAnonShared|flagnames.VMAAreaSysVIPC) != 0:
		return vma.GetShmid(), true
	}
	return 0, false
}

// shmemID is ShmemID for readers: for a memfd or file mapping it first
// makes sure files.img could be read, so that a broken image is an error
// rather than a mapping read as something else.
func (m *Memory) shmemID(vma *images.VmaEntry) (uint64, bool, error) {
	if vma.GetStatus()&(flagnames.VMAAreaMemfd|flagnames.VMAFilePrivate|flagnames.VMAFileShared) != 0 {
		if err := m.loadMeta(); err != nil {
			return 0, false, err
		}
	}
	id, ok := m.ShmemID(vma)
	return id, ok, nil
}

// Parent returns the memory of the parent dump of an incremental dump, or
// nil when there is none.
func (m *Memory) Parent() (*Memory, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.pDone {
		m.pDone = true
		pd, err := m.d.Parent()
		if err != nil {
			m.pErr = fmt.Errorf("parent of %s: %w", m.d.Name, err)
		} else if pd != nil {
			m.parent = &Memory{d: pd, fixedPS: m.fixedPS, child: m}
		}
	}
	return m.parent, m.pErr
}

// pagesFile is an open pages image read with ReadAt.
type pagesFile struct {
	name string
	ra   io.ReaderAt
	c    io.Closer
}

func (p *pagesFile) close() error {
	if p.c != nil {
		return p.c.Close()
	}
	return nil
}

// pagesFor returns the pages file with the given id, opened once.
func (m *Memory) pagesFor(id uint32) (*pagesFile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.pages[id]; ok {
		return p, nil
	}
	f := m.d.FileFor("PAGES", uint64(id))
	if f == nil {
		return nil, fmt.Errorf("%s: %w", m.d.Name, model.Of(m.d).Pages(uint64(id)))
	}
	fh, err := f.Open()
	if err != nil {
		return nil, err
	}
	p := &pagesFile{name: f.Name, ra: asReaderAt(fh), c: fh}
	if m.pages == nil {
		m.pages = map[uint32]*pagesFile{}
	}
	m.pages[id] = p
	return p, nil
}

// asReaderAt returns f as an io.ReaderAt: itself when it is one, a
// seek-and-read adapter when it can seek, and otherwise an adapter that
// reads forward and reopens nothing (so only forward reads work).
func asReaderAt(f fs.File) io.ReaderAt {
	if ra, ok := f.(io.ReaderAt); ok {
		return ra
	}
	if s, ok := f.(io.ReadSeeker); ok {
		return &seekReaderAt{r: s}
	}
	return &streamReaderAt{r: f}
}

type seekReaderAt struct {
	mu sync.Mutex
	r  io.ReadSeeker
}

func (s *seekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.r.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.ReadFull(s.r, p)
}

type streamReaderAt struct {
	mu  sync.Mutex
	r   io.Reader
	pos int64
}

func (s *streamReaderAt) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off < s.pos {
		return 0, fmt.Errorf("cannot read back to offset %d of a stream at %d", off, s.pos)
	}
	n, err := io.CopyN(io.Discard, s.r, off-s.pos)
	s.pos += n
	if err != nil {
		return 0, err
	}
	k, err := io.ReadFull(s.r, p)
	s.pos += int64(k)
	return k, err
}
