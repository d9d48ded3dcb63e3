// Package elfcore writes ELF core files from a CRIU dump, as the kernel
// writes them when a process dumps core, for gdb, lldb and eu-stack.
//
// A core holds an ELF header for the dump's architecture (x86_64 and
// aarch64), one PT_NOTE and one PT_LOAD per VMA (more when a VMA has
// pages that are left out between pages that are written, see below).
// The notes are, as criu-coredump orders them: NT_PRPSINFO, then for every
// thread NT_PRSTATUS, NT_FPREGSET, NT_SIGINFO and the architecture's extra
// register sets (NT_X86_XSTATE; NT_ARM_TLS), then NT_AUXV (mm_saved_auxv)
// and NT_FILE (the VMAs that have a file, with their offsets).
//
// The bytes of a VMA come from the dump's pages (through package mem: the
// parents of an incremental dump followed, shared memory objects read,
// anonymous pages that the dump does not hold read as zero). The pages of
// a file mapping that the dump does not hold are in the file on the dumping
// host: they are read from Options.Root when it is set and the file there
// has the size (and build-id) the images record; otherwise they are left
// out (p_filesz stops before them, as the kernel leaves out unmodified
// file pages) and Plan.Missing says how many bytes of which file. The
// reading host's files are never read unless Root names them.
package elfcore

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/explore"
	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/mem"
	"github.com/critq/critq/proto/images"
)

// Options configure a Writer.
type Options struct {
	// Root is a directory that stands for the dumping host's file system
	// ("/" for this host): the pages of file mappings that the dump does
	// not hold are read from Root/PATH. Empty: they are left out.
	Root string
}

// Writer writes the cores of the tasks of one dump. It is not safe for
// concurrent use.
type Writer struct {
	d    *dump.Dump
	m    *mem.Memory
	e    *explore.Explorer
	opts Options
	root *os.Root
	rerr error
	// files caches what Root says about a mapped file, by path.
	files map[string]*rootFile
}

// New returns a Writer of the cores of dump d, whose memory m reads.
func New(d *dump.Dump, m *mem.Memory, opts Options) *Writer {
	w := &Writer{d: d, m: m, e: explore.New(d, m), opts: opts, files: map[string]*rootFile{}}
	if opts.Root != "" {
		w.root, w.rerr = os.OpenRoot(opts.Root)
	}
	return w
}

// Close releases the files of Root opened so far.
func (w *Writer) Close() error {
	for _, f := range w.files {
		if f.f != nil {
			f.f.Close()
		}
	}
	w.files = map[string]*rootFile{}
	if w.root != nil {
		return w.root.Close()
	}
	return nil
}

// Source says where the bytes of a part of a segment come from.
type Source int

const (
	FromDump Source = iota // the dump's pages, or zero for anonymous memory it does not hold
	FromRoot               // the file under Options.Root (the tail of its last page past its end is zero)
	LeftOut                // not in the core (p_filesz ends before)
)

// Part is a run of pages of a segment with one source.
type Part struct {
	Start, End uint64
	Source     Source
	File       string // for FromRoot and left-out file pages: the mapped file
	Offset     uint64 // FromRoot: offset in the file of Start
	Why        string // LeftOut: why
}

// Segment is one PT_LOAD.
type Segment struct {
	Start, End uint64 // p_vaddr, p_vaddr+p_memsz
	FileSize   uint64 // p_filesz
	Offset     uint64 // p_offset
	Flags      elf.ProgFlag
	Parts      []Part // cover [Start, Start+FileSize), then the left-out rest
}

// Missing is what a core leaves out of one mapped file (or kernel area).
type Missing struct {
	File  string
	Bytes uint64
	Why   string
}

// Plan is the layout of one core: everything but the bytes of memory.
type Plan struct {
	PID      uint32
	Comm     string
	Machine  elf.Machine
	Threads  []uint32
	Zombie   bool
	Notes    []byte
	Segments []Segment
	Size     int64 // bytes of the core file

	// Bytes of the VMAs by where they come from. MissingBytes are left
	// out (file pages without a root, kernel areas), detailed in Missing;
	// NoAccessBytes are PROT_NONE memory the dump holds nothing of, left
	// out as criu-coredump does.
	DumpBytes, RootBytes, MissingBytes, NoAccessBytes uint64
	Missing                                           []Missing
}

const whyProtNone = "PROT_NONE, nothing in the dump"

// Plan lays out the core of task pid without reading its memory.
func (w *Writer) Plan(pid uint32) (*Plan, error) {
	t, err := w.e.Task(pid)
	if err != nil {
		return nil, err
	}
	if t.Core == nil {
		return nil, fmt.Errorf("pid %d: no core-%d.img", pid, pid)
	}
	arch, err := archOf(t.Core)
	if err != nil {
		return nil, fmt.Errorf("core-%d.img: %w", pid, err)
	}
	p := &Plan{PID: pid, Comm: t.Core.GetTc().GetComm(), Machine: arch.machine}
	p.Zombie = !t.HasMemory()
	var mm *images.MmEntry
	var vmas []*images.VmaEntry
	var ps uint64 = 4096
	if !p.Zombie {
		if mm, err = w.m.MM(pid); err != nil {
			return nil, err
		}
		if mm == nil {
			p.Zombie = true
		}
	}
	if !p.Zombie {
		if ps, err = w.m.PageSizeOf(); err != nil {
			return nil, err
		}
		if vmas, err = w.m.VMAs(pid); err != nil {
			return nil, err
		}
		if err := w.m.LoadFiles(); err != nil {
			return nil, err
		}
	}
	threads, err := w.threads(t)
	if err != nil {
		return nil, err
	}
	for _, th := range threads {
		p.Threads = append(p.Threads, th.tid)
	}
	var paths []string
	if len(vmas) > 0 {
		maps, err := w.e.Maps(pid)
		if err != nil {
			return nil, err
		}
		if len(maps.Tasks) != 1 || len(maps.Tasks[0].Lines) != len(vmas) {
			return nil, fmt.Errorf("pid %d: maps and VMAs disagree", pid)
		}
		for _, l := range maps.Tasks[0].Lines {
			paths = append(paths, l.Path)
		}
	}
	args := w.psargs(pid, mm, p.Comm)
	notes, err := buildNotes(arch, t, threads, mm, vmas, paths, ps, args)
	if err != nil {
		return nil, err
	}
	p.Notes = notes
	missing := map[[2]string]uint64{}
	if len(vmas) > 0 {
		spans, err := w.m.Spans(pid)
		if err != nil {
			return nil, err
		}
		for i, v := range vmas {
			parts, err := w.parts(v, paths[i], spans, ps)
			if err != nil {
				return nil, fmt.Errorf("pid %d: vma 0x%x-0x%x: %w", pid, v.GetStart(), v.GetEnd(), err)
			}
			for _, pt := range parts {
				n := pt.End - pt.Start
				switch pt.Source {
				case FromDump:
					p.DumpBytes += n
				case FromRoot:
					p.RootBytes += n
				case LeftOut:
					if pt.Why == whyProtNone {
						p.NoAccessBytes += n
						continue
					}
					p.MissingBytes += n
					missing[[2]string{pt.File, pt.Why}] += n
				}
			}
			p.Segments = append(p.Segments, segments(v, parts)...)
		}
	}
	for k, n := range missing {
		p.Missing = append(p.Missing, Missing{File: k[0], Why: k[1], Bytes: n})
	}
	sort.Slice(p.Missing, func(i, j int) bool {
		if p.Missing[i].File != p.Missing[j].File {
			return p.Missing[i].File < p.Missing[j].File
		}
		return p.Missing[i].Why < p.Missing[j].Why
	})
	p.layout(ps)
	return p, nil
}

// phnum returns the number of program headers.
func (p *Plan) phnum() int { return 1 + len(p.Segments) }

// layout sets the offsets of the segments and the size of the file.
func (p *Plan) layout(ps uint64) {
	off := uint64(ehdrSize + phdrSize*p.phnum() + len(p.Notes))
	off = (off + ps - 1) / ps * ps
	for i := range p.Segments {
		p.Segments[i].Offset = off
		off += p.Segments[i].FileSize
	}
	if p.phnum() >= pnXnum {
		off += shdrSize
	}
	p.Size = int64(off)
}

// thread is one thread of a task with its core image.
type thread struct {
	tid  uint32
	core *images.CoreEntry
}

// threads returns the threads of t, the main thread first.
func (w *Writer) threads(t *explore.Task) ([]thread, error) {
	out := []thread{{tid: t.PID, core: t.Core}}
	for _, tid := range t.Threads {
		if tid == t.PID || tid == 0 {
			continue
		}
		f := w.d.FileFor("CORE", uint64(tid))
		if f == nil {
			return nil, fmt.Errorf("pid %d: thread %d has no core-%d.img", t.PID, tid, tid)
		}
		msg, err := f.First()
		if err != nil {
			return nil, err
		}
		c, ok := msg.(*images.CoreEntry)
		if !ok || c == nil {
			return nil, fmt.Errorf("%s: no entry", f.Name)
		}
		out = append(out, thread{tid: tid, core: c})
	}
	return out, nil
}

// psargs returns the command line as the kernel puts it in pr_psargs:
// the arguments joined by spaces; the comm when memory has none.
func (w *Writer) psargs(pid uint32, mm *images.MmEntry, comm string) string {
	if mm == nil {
		return comm
	}
	n := mm.GetMmArgEnd() - mm.GetMmArgStart()
	if mm.GetMmArgEnd() < mm.GetMmArgStart() || n > psargsLen {
		n = psargsLen
	}
	b, _ := w.m.Read(pid, mm.GetMmArgStart(), int(n))
	s := strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
	if s == "" {
		return comm
	}
	return s
}

// fileVMA reports whether a VMA has a file in the kernel (vm_file): those
// are listed in NT_FILE.
func fileVMA(v *images.VmaEntry) bool {
	return v.GetStatus()&(flagnames.VMAFilePrivate|flagnames.VMAFileShared|flagnames.VMAAreaMemfd|
		flagnames.VMAAnonShared|flagnames.VMAAreaSysVIPC|flagnames.VMAAreaAIORing) != 0
}

// parts splits a VMA into runs of pages by source. spans are the ranges
// of the task that the dump holds, sorted.
func (w *Writer) parts(v *images.VmaEntry, mapsPath string, spans [][2]uint64, ps uint64) ([]Part, error) {
	start, end := v.GetStart(), v.GetEnd()
	if end <= start || start%ps != 0 || end%ps != 0 {
		return nil, fmt.Errorf("bad VMA bounds (page size %d)", ps)
	}
	st := v.GetStatus()
	_, shm := w.m.ShmemID(v)
	held := heldIn(spans, start, end)
	all := func(s Source, why string) []Part {
		p := Part{Start: start, End: end, Source: s, Why: why}
		if s == LeftOut {
			p.File = orString(mapsPath, "anonymous")
		}
		return []Part{p}
	}
	switch {
	case shm:
		return all(FromDump, ""), nil
	case st&(flagnames.VMAAreaVVAR|flagnames.VMAAreaVsyscall|flagnames.VMAAreaAIORing|flagnames.VMAAreaSocket) != 0 || st&flagnames.VMAAreaRegular == 0:
		return all(LeftOut, "kernel area, not in the dump"), nil
	case st&(flagnames.VMAFilePrivate|flagnames.VMAFileShared) != 0:
		// below
	case v.GetProt() == 0 && len(held) == 0:
		return all(LeftOut, whyProtNone), nil
	default:
		return all(FromDump, ""), nil
	}
	name := w.m.File(uint32(v.GetShmid())).GetReg().GetName()
	if name == "" {
		name = fmt.Sprintf("file %d", v.GetShmid())
	}
	var out []Part
	add := func(p Part) {
		if n := len(out); n > 0 && out[n-1].End == p.Start && out[n-1].Source == p.Source &&
			out[n-1].File == p.File && out[n-1].Why == p.Why &&
			(p.Source != FromRoot || out[n-1].Offset+(out[n-1].End-out[n-1].Start) == p.Offset) {
			out[n-1].End = p.End
			return
		}
		out = append(out, p)
	}
	gap := func(a, b uint64) {
		if a >= b {
			return
		}
		if v.GetProt() == 0 {
			add(Part{Start: a, End: b, Source: LeftOut, File: name, Why: whyProtNone})
			return
		}
		for _, p := range w.fromRoot(v, name, a, b, ps) {
			add(p)
		}
	}
	cur := start
	for _, h := range held {
		gap(cur, h[0])
		add(Part{Start: h[0], End: h[1], Source: FromDump})
		cur = h[1]
	}
	gap(cur, end)
	return out, nil
}

func orString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// heldIn returns the parts of spans inside [start, end).
func heldIn(spans [][2]uint64, start, end uint64) [][2]uint64 {
	i := sort.Search(len(spans), func(i int) bool { return spans[i][1] > start })
	var out [][2]uint64
	for ; i < len(spans) && spans[i][0] < end; i++ {
		a, b := max(spans[i][0], start), min(spans[i][1], end)
		if a < b {
			out = append(out, [2]uint64{a, b})
		}
	}
	return out
}

// segments turns the parts of a VMA into PT_LOADs: one per VMA, unless
// pages that are written follow pages that are left out; then a new
// PT_LOAD starts there.
func segments(v *images.VmaEntry, parts []Part) []Segment {
	flags := progFlags(v.GetProt())
	var out []Segment
	var cur *Segment
	for _, pt := range parts {
		in := pt.Source != LeftOut
		if cur == nil || (in && cur.Start+cur.FileSize != cur.End) {
			out = append(out, Segment{Start: pt.Start, End: pt.Start, Flags: flags})
			cur = &out[len(out)-1]
		}
		if in {
			cur.FileSize += pt.End - pt.Start
		}
		cur.End = pt.End
		cur.Parts = append(cur.Parts, pt)
	}
	return out
}

func progFlags(prot uint32) elf.ProgFlag {
	var f elf.ProgFlag
	if prot&1 != 0 {
		f |= elf.PF_R
	}
	if prot&2 != 0 {
		f |= elf.PF_W
	}
	if prot&4 != 0 {
		f |= elf.PF_X
	}
	return f
}

// rootFile is what Root holds of one mapped file.
type rootFile struct {
	f    *os.File
	size uint64
	why  string // why it cannot be used, or ""
}

// rootFileOf opens the file name of a file mapping under Root, once, and
// checks it against the images' record.
func (w *Writer) rootFileOf(v *images.VmaEntry, name string) *rootFile {
	if rf, ok := w.files[name]; ok {
		return rf
	}
	rf := &rootFile{}
	w.files[name] = rf
	reg := w.m.File(uint32(v.GetShmid())).GetReg()
	switch {
	case w.opts.Root == "":
		rf.why = "file pages not in the dump (no --root)"
	case w.rerr != nil:
		rf.why = w.rerr.Error()
	case reg == nil || !path.IsAbs(name):
		rf.why = "no file record"
	default:
		f, err := w.root.Open(strings.TrimPrefix(path.Clean(name), "/"))
		if err != nil {
			rf.why = "not under the root: " + errText(err)
			break
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			f.Close()
			rf.why = "not a regular file under the root"
			break
		}
		if reg.Size != nil && uint64(fi.Size()) != reg.GetSize() {
			f.Close()
			rf.why = fmt.Sprintf("the file under the root has %d bytes, the dump recorded %d", fi.Size(), reg.GetSize())
			break
		}
		if bid := reg.GetBuildId(); len(bid) > 0 {
			if got, ok := buildID(f); !ok || !sameBuildID(got, bid) {
				f.Close()
				rf.why = "the file under the root has another build-id"
				break
			}
		}
		rf.f, rf.size = f, uint64(fi.Size())
	}
	return rf
}

func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// fromRoot returns the parts of [a, b) of a file mapping that the dump
// does not hold: from the file under Root, or left out.
func (w *Writer) fromRoot(v *images.VmaEntry, name string, a, b, ps uint64) []Part {
	rf := w.rootFileOf(v, name)
	if rf.f == nil {
		return []Part{{Start: a, End: b, Source: LeftOut, File: name, Why: rf.why}}
	}
	off := v.GetPgoff() + (a - v.GetStart())
	var out []Part
	if off < rf.size {
		// Whole pages in the file, then the last page of the file whose
		// tail past the end reads as zero, as the kernel shows it.
		n := min(b-a, (rf.size-off+ps-1)/ps*ps)
		out = append(out, Part{Start: a, End: a + n, Source: FromRoot, File: name, Offset: off})
		a += n
	}
	if a < b {
		out = append(out, Part{Start: a, End: b, Source: LeftOut, File: name, Why: "past the end of the file (SIGBUS)"})
	}
	return out
}

// Write lays out the core of task pid and writes it to out. On an error
// part of the core may have been written: write to a temporary file.
func (w *Writer) Write(out io.Writer, pid uint32) (*Plan, error) {
	p, err := w.Plan(pid)
	if err != nil {
		return nil, err
	}
	return p, w.WritePlan(out, p)
}
