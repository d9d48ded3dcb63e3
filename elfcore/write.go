package elfcore

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

const (
	ehdrSize = 64
	phdrSize = 56
	shdrSize = 64
	pnXnum   = 0xffff // e_phnum when the count is in section 0 (ELF extended numbering)
	// chunk bounds one read of memory while writing.
	chunk = 4 << 20
)

var le = binary.LittleEndian

// header returns the ELF header and the program headers of p.
func (p *Plan) header(ps uint64) []byte {
	n := p.phnum()
	b := make([]byte, ehdrSize+phdrSize*n)
	copy(b, elf.ELFMAG)
	b[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	b[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	b[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	b[elf.EI_OSABI] = byte(elf.ELFOSABI_NONE)
	le.PutUint16(b[16:], uint16(elf.ET_CORE))
	le.PutUint16(b[18:], uint16(p.Machine))
	le.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(b[32:], ehdrSize) // e_phoff
	le.PutUint16(b[52:], ehdrSize)
	le.PutUint16(b[54:], phdrSize)
	if n >= pnXnum {
		// The count is in sh_info of section 0 (ELF extended numbering),
		// written after the data as the kernel does.
		le.PutUint16(b[56:], pnXnum)
		le.PutUint64(b[40:], uint64(p.Size)-shdrSize)
		le.PutUint16(b[58:], shdrSize)
		le.PutUint16(b[60:], 1)
	} else {
		le.PutUint16(b[56:], uint16(n))
	}
	ph := b[ehdrSize:]
	put := func(i int, typ elf.ProgType, flags elf.ProgFlag, off, vaddr, filesz, memsz, align uint64) {
		h := ph[i*phdrSize:]
		le.PutUint32(h[0:], uint32(typ))
		le.PutUint32(h[4:], uint32(flags))
		le.PutUint64(h[8:], off)
		le.PutUint64(h[16:], vaddr)
		le.PutUint64(h[24:], 0)
		le.PutUint64(h[32:], filesz)
		le.PutUint64(h[40:], memsz)
		le.PutUint64(h[48:], align)
	}
	put(0, elf.PT_NOTE, 0, uint64(ehdrSize+phdrSize*n), 0, uint64(len(p.Notes)), 0, 0)
	for i, s := range p.Segments {
		put(i+1, elf.PT_LOAD, s.Flags, s.Offset, s.Start, s.FileSize, s.End-s.Start, ps)
	}
	return b
}

// WritePlan writes the core that p lays out to out, reading the memory
// now. The bytes written are exactly p.Size.
func (w *Writer) WritePlan(out io.Writer, p *Plan) error {
	ps := uint64(4096)
	if len(p.Segments) > 0 {
		var err error
		if ps, err = w.m.PageSizeOf(); err != nil {
			return err
		}
	}
	var bw interface {
		io.Writer
		Flush() error
	}
	if f, ok := out.(*os.File); ok {
		// A file gets holes where memory is zero, as the kernel's cores.
		bw = &sparseFile{f: f, size: p.Size}
	} else {
		bw = bufio.NewWriterSize(&errWriter{out}, 1<<20)
	}
	hdr := p.header(ps)
	bw.Write(hdr)
	bw.Write(p.Notes)
	pos := uint64(len(hdr) + len(p.Notes))
	var buf []byte
	for _, s := range p.Segments {
		if s.FileSize == 0 {
			continue
		}
		if err := pad(bw, s.Offset-pos); err != nil {
			return err
		}
		pos = s.Offset
		for _, pt := range s.Parts {
			if pt.Source == LeftOut {
				break
			}
			for a := pt.Start; a < pt.End; {
				n := min(pt.End-a, chunk)
				if uint64(cap(buf)) < n {
					buf = make([]byte, n)
				}
				b := buf[:n]
				if err := w.read(p.PID, pt, a, b); err != nil {
					return err
				}
				if _, err := bw.Write(b); err != nil {
					return err
				}
				a += n
				pos += n
			}
		}
	}
	if pos < uint64(p.Size) {
		if p.phnum() >= pnXnum {
			if err := pad(bw, uint64(p.Size)-shdrSize-pos); err != nil {
				return err
			}
			sh := make([]byte, shdrSize)
			le.PutUint32(sh[44:], uint32(p.phnum())) // sh_info
			bw.Write(sh)
		} else if err := pad(bw, uint64(p.Size)-pos); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// read fills b with the bytes of part pt at address a.
func (w *Writer) read(pid uint32, pt Part, a uint64, b []byte) error {
	switch pt.Source {
	case FromDump:
		got, err := w.m.Read(pid, a, len(b))
		if err != nil {
			return err
		}
		copy(b, got)
	case FromRoot:
		rf := w.files[pt.File]
		if rf == nil || rf.f == nil {
			return fmt.Errorf("%s: not open", pt.File)
		}
		off := pt.Offset + (a - pt.Start)
		n, err := rf.f.ReadAt(b, int64(off))
		if n < len(b) {
			if off+uint64(n) < rf.size {
				return fmt.Errorf("%s under the root: %d bytes at offset %d: %v", pt.File, len(b), off, err)
			}
			clear(b[n:]) // the last page of the file, past its end
		}
	default:
		return fmt.Errorf("pid %d: 0x%x: nothing to read", pid, a)
	}
	return nil
}

// WriteError is the error of the writer a core is written to (as opposed
// to an error reading the dump).
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

type errWriter struct{ w io.Writer }

func (e *errWriter) Write(b []byte) (int, error) {
	n, err := e.w.Write(b)
	if err != nil {
		err = &WriteError{err}
	}
	return n, err
}

var zeros [64 << 10]byte

// sparseFile writes a file, seeking over runs of zero pages instead of
// writing them. Flush sets the size.
type sparseFile struct {
	f    *os.File
	hole int64 // zero bytes not written yet
	size int64
}

func (s *sparseFile) Write(b []byte) (int, error) {
	const page = 4096
	n := 0
	for len(b) > 0 {
		z := 0
		for z+page <= len(b) && allZero(b[z:z+page]) {
			z += page
		}
		if z > 0 {
			s.hole += int64(z)
			b, n = b[z:], n+z
			continue
		}
		d := min(page, len(b))
		for d+page <= len(b) && !allZero(b[d:d+page]) {
			d += page
		}
		if len(b)-d < page {
			d = len(b) // a tail shorter than a page is written
		}
		if s.hole > 0 {
			if _, err := s.f.Seek(s.hole, io.SeekCurrent); err != nil {
				return n, &WriteError{err}
			}
			s.hole = 0
		}
		k, err := s.f.Write(b[:d])
		n += k
		if err != nil {
			return n, &WriteError{err}
		}
		b = b[d:]
	}
	return n, nil
}

func (s *sparseFile) Flush() error {
	if s.hole == 0 {
		return nil
	}
	pos, err := s.f.Seek(s.hole, io.SeekCurrent)
	if err == nil {
		s.hole = 0
		err = s.f.Truncate(pos)
	}
	if err != nil {
		return &WriteError{err}
	}
	return nil
}

func allZero(b []byte) bool {
	for len(b) >= len(zeros) {
		if !bytes.Equal(b[:len(zeros)], zeros[:]) {
			return false
		}
		b = b[len(zeros):]
	}
	return bytes.Equal(b, zeros[:len(b)])
}

func pad(w io.Writer, n uint64) error {
	for n > 0 {
		k := min(n, uint64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
