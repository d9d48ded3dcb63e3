package mem

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/proto/images"
)

// Reasons of an AddrError; test them with errors.Is.
var (
	// ErrNotDumped: the bytes are not in the dump (file contents, lazy
	// pages, kernel-provided areas such as [vvar]).
	ErrNotDumped = errors.New("not in the dump")
	// ErrUnmapped: the address is in no VMA of the task.
	ErrUnmapped = errors.New("not in any VMA")
	// ErrNoMemory: the task has no memory (a zombie or a dead task).
	ErrNoMemory = errors.New("the task has no memory (zombie or dead)")
)

// AddrError says why the bytes at an address of a task cannot be read.
type AddrError struct {
	PID  uint32
	Addr uint64
	Err  error // ErrNotDumped, ErrUnmapped, ErrNoMemory or an I/O error
	// File and Offset say where the bytes of a file mapping are, when Err
	// is ErrNotDumped because they are in a file on the dumping host.
	File   string
	Offset uint64
	// Why details a not-dumped page that is not in a file ("lazy page").
	Why string
}

func (e *AddrError) Error() string {
	s := fmt.Sprintf("pid %d: 0x%x: %v", e.PID, e.Addr, e.Err)
	switch {
	case e.File != "":
		s += fmt.Sprintf(": %s + 0x%x", e.File, e.Offset)
	case e.Why != "":
		s += ": " + e.Why
	}
	return s
}

func (e *AddrError) Unwrap() error { return e.Err }

// key names a page index: a task's pagemap or a shared memory object's.
type key struct {
	id  uint64
	shm bool
}

func (m *Memory) keyIndex(k key) (*pageIndex, error) {
	if k.shm {
		return m.shmIndex(k.id)
	}
	return m.taskIndex(uint32(k.id))
}

// held reads into buf the bytes at addr that the index k holds, following
// PE_PARENT runs into parent dumps. It returns n > 0 bytes read, or n == 0
// and gap > 0, the number of bytes from addr the index does not hold.
func (m *Memory) held(k key, addr uint64, buf []byte) (n, gap int, err error) {
	ix, err := m.keyIndex(k)
	if err != nil {
		return 0, 0, err
	}
	if ix == nil {
		return 0, len(buf), nil
	}
	i := ix.find(addr)
	if i == len(ix.runs) || ix.runs[i].start > addr {
		gap = len(buf)
		if i < len(ix.runs) && ix.runs[i].start-addr < uint64(gap) {
			gap = int(ix.runs[i].start - addr)
		}
		return 0, gap, nil
	}
	r := ix.runs[i]
	want := len(buf)
	if r.end-addr < uint64(want) {
		want = int(r.end - addr)
	}
	switch r.where {
	case inPages:
		p, err := m.pagesFor(ix.pagesID)
		if err != nil {
			return 0, 0, err
		}
		off := r.off + int64(addr-r.start)
		if k, err := p.ra.ReadAt(buf[:want], off); k < want {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // the pagemap promised these bytes
			}
			return 0, 0, fmt.Errorf("%s: %d bytes at offset %d: %w", p.name, want, off, err)
		}
		return want, 0, nil
	case inParent:
		pm, err := m.Parent()
		if err != nil {
			return 0, 0, err
		}
		if pm == nil {
			return 0, 0, fmt.Errorf("%s: pages at 0x%x are in the parent dump, which is missing", m.d.Name, addr)
		}
		got := 0
		for got < want {
			n, gap, err := pm.held(k, addr+uint64(got), buf[got:want])
			if err != nil {
				return 0, 0, err
			}
			if gap > 0 {
				return 0, 0, fmt.Errorf("%s: pages at 0x%x are not in the parent dump", m.d.Name, addr+uint64(got))
			}
			got += n
		}
		return want, 0, nil
	case lazyOnly:
		return 0, 0, errLazy
	}
	return 0, want, nil
}

var errLazy = errors.New("lazy page")

// readObject reads bytes of a shared memory object; what its pagemap does
// not hold is zero.
func (m *Memory) readObject(shmid, off uint64, buf []byte) (int, error) {
	got := 0
	for got < len(buf) {
		n, gap, err := m.held(key{id: shmid, shm: true}, off+uint64(got), buf[got:])
		if err != nil {
			return got, err
		}
		if gap > 0 {
			clear(buf[got : got+gap])
			n = gap
		}
		got += n
	}
	return got, nil
}

// readIn reads bytes of pid at addr, all inside vma. It returns how many
// bytes it read before an error.
func (m *Memory) readIn(pid uint32, vma *images.VmaEntry, addr uint64, buf []byte) (int, error) {
	st := vma.GetStatus()
	objOff := func(a uint64) uint64 { return vma.GetPgoff() + (a - vma.GetStart()) }
	shmid, isShm, err := m.shmemID(vma)
	if err != nil {
		return 0, &AddrError{PID: pid, Addr: addr, Err: err}
	}
	if isShm && (vma.GetFlags()&flagnames.MapShared != 0 || st&flagnames.VMAAreaSysVIPC != 0) {
		return m.readObject(shmid, objOff(addr), buf)
	}
	got := 0
	for got < len(buf) {
		a := addr + uint64(got)
		n, gap, err := m.held(key{id: uint64(pid)}, a, buf[got:])
		if err == errLazy {
			return got, &AddrError{PID: pid, Addr: a, Err: ErrNotDumped, Why: "lazy page"}
		}
		if err != nil {
			return got, &AddrError{PID: pid, Addr: a, Err: err}
		}
		if n > 0 {
			got += n
			continue
		}
		chunk := buf[got : got+gap]
		switch {
		case isShm:
			if _, err := m.readObject(shmid, objOff(a), chunk); err != nil {
				return got, &AddrError{PID: pid, Addr: a, Err: err}
			}
		case st&(flagnames.VMAFilePrivate|flagnames.VMAFileShared) != 0:
			return got, &AddrError{PID: pid, Addr: a, Err: ErrNotDumped, File: m.fileName(vma.GetShmid()), Offset: objOff(a)}
		case st&(flagnames.VMAAreaVVAR|flagnames.VMAAreaVsyscall|flagnames.VMAAreaAIORing|flagnames.VMAAreaSocket) != 0 || st&flagnames.VMAAreaRegular == 0:
			return got, &AddrError{PID: pid, Addr: a, Err: ErrNotDumped, Why: "kernel area " + areaName(st)}
		default:
			clear(chunk) // anonymous memory not dumped is zero
		}
		got += gap
	}
	return got, nil
}

func areaName(st uint32) string {
	switch {
	case st&flagnames.VMAAreaVVAR != 0:
		return "[vvar]"
	case st&flagnames.VMAAreaVsyscall != 0:
		return "[vsyscall]"
	case st&flagnames.VMAAreaAIORing != 0:
		return "[aio]"
	case st&flagnames.VMAAreaSocket != 0:
		return "socket"
	}
	return "unsupported"
}

// findVMA returns the VMA of vmas (sorted) that holds addr, or nil.
func findVMA(vmas []*images.VmaEntry, addr uint64) *images.VmaEntry {
	i := sort.Search(len(vmas), func(i int) bool { return vmas[i].GetEnd() > addr })
	if i < len(vmas) && vmas[i].GetStart() <= addr {
		return vmas[i]
	}
	return nil
}

// VMAAt returns the VMA of pid that holds addr, or nil.
func (m *Memory) VMAAt(pid uint32, addr uint64) (*images.VmaEntry, error) {
	t, err := m.task(pid)
	if err != nil {
		return nil, err
	}
	return findVMA(t.vmas, addr), nil
}

// Read returns n bytes of the memory of task pid at addr. When not all of
// them can be read, it returns the bytes before the first unreadable one
// and an [*AddrError] that says why. n is at most [MaxRead].
func (m *Memory) Read(pid uint32, addr uint64, n int) ([]byte, error) {
	if n < 0 || n > MaxRead {
		return nil, fmt.Errorf("read of %d bytes: the limit is %d", n, MaxRead)
	}
	t, err := m.task(pid)
	if err != nil {
		return nil, err
	}
	if t.mm == nil {
		return nil, &AddrError{PID: pid, Addr: addr, Err: ErrNoMemory}
	}
	if addr+uint64(n) < addr {
		return nil, &AddrError{PID: pid, Addr: addr, Err: ErrUnmapped}
	}
	buf := make([]byte, n)
	got := 0
	for got < n {
		a := addr + uint64(got)
		vma := findVMA(t.vmas, a)
		if vma == nil {
			return buf[:got], &AddrError{PID: pid, Addr: a, Err: ErrUnmapped}
		}
		k := n - got
		if vma.GetEnd()-a < uint64(k) {
			k = int(vma.GetEnd() - a)
		}
		r, err := m.readIn(pid, vma, a, buf[got:got+k])
		got += r
		if err != nil {
			return buf[:got], err
		}
	}
	return buf, nil
}

// MaxCString bounds the length of a C string.
const MaxCString = 64 << 10

// CString returns the NUL-terminated string of pid at addr, without the
// NUL. It fails when no NUL comes within MaxCString bytes.
func (m *Memory) CString(pid uint32, addr uint64) (string, error) {
	ps, err := m.PageSizeOf()
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for sb.Len() < MaxCString {
		a := addr + uint64(sb.Len())
		n := int(ps - a%ps) // to the end of the page
		b, err := m.Read(pid, a, n)
		if i := bytes.IndexByte(b, 0); i >= 0 {
			sb.Write(b[:i])
			return sb.String(), nil
		}
		if err != nil {
			return "", err
		}
		sb.Write(b)
	}
	return "", fmt.Errorf("pid %d: 0x%x: no NUL within %d bytes", pid, addr, MaxCString)
}

// Cmdline returns the arguments of pid, read from its memory between
// mm_arg_start and mm_arg_end as /proc/PID/cmdline shows them: split at NUL
// bytes. A zombie or dead task has none.
func (m *Memory) Cmdline(pid uint32) ([]string, error) {
	return m.strings(pid, func(mm *images.MmEntry) (uint64, uint64) { return mm.GetMmArgStart(), mm.GetMmArgEnd() })
}

// Environ returns the environment of pid, read from its memory between
// mm_env_start and mm_env_end. A zombie or dead task has none.
func (m *Memory) Environ(pid uint32) ([]string, error) {
	return m.strings(pid, func(mm *images.MmEntry) (uint64, uint64) { return mm.GetMmEnvStart(), mm.GetMmEnvEnd() })
}

func (m *Memory) strings(pid uint32, bounds func(*images.MmEntry) (uint64, uint64)) ([]string, error) {
	mm, err := m.MM(pid)
	if err != nil || mm == nil {
		return []string{}, err
	}
	start, end := bounds(mm)
	if end < start || end-start > MaxRead {
		return nil, fmt.Errorf("pid %d: bad bounds 0x%x-0x%x", pid, start, end)
	}
	b, err := m.Read(pid, start, int(end-start))
	if err != nil {
		return nil, err
	}
	return splitNUL(b), nil
}

// splitNUL splits NUL-terminated strings; a last string without its NUL
// is kept.
func splitNUL(b []byte) []string {
	out := []string{}
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			out = append(out, string(b))
			break
		}
		out = append(out, string(b[:i]))
		b = b[i+1:]
	}
	return out
}
