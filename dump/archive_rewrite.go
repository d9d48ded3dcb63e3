package dump

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/critq/critq/internal/fileout"
)

// The write side of checkpoint archives: a new archive is the old one with
// the data of some members replaced. Everything else of the tar stream
// (the header blocks of every other member, extended headers included, its
// data, the padding, the end blocks and what follows them) is copied as it
// was, so a tar of the new archive differs from the old only in the
// replaced members.

// Compression is the compression of a checkpoint archive.
type Compression int

const (
	Plain Compression = iota // a tar
	Gzip                     // a tar.gz
	Zstd                     // a tar.zst
)

func (c Compression) String() string {
	return [...]string{"tar", "tar.gz", "tar.zst"}[c]
}

// compressionOf names the compression whose magic starts head.
func compressionOf(head []byte) Compression {
	switch {
	case isGzip(head):
		return Gzip
	case isZstd(head):
		return Zstd
	}
	return Plain
}

// CompressionFor returns the compression the extension of an archive's
// name names (.tar, .tar.gz or .tgz, .tar.zst or .tzst), and whether it
// names one.
func CompressionFor(name string) (Compression, bool) {
	n := strings.ToLower(filepath.Base(name))
	switch {
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return Gzip, true
	case strings.HasSuffix(n, ".tar.zst"), strings.HasSuffix(n, ".tzst"):
		return Zstd, true
	case strings.HasSuffix(n, ".tar"):
		return Plain, true
	}
	return Plain, false
}

// Compression returns the compression of the archive.
func (a *Archive) Compression() Compression { return a.comp }

// Compress returns a writer that compresses to w with c; its Close ends
// the compressed stream (and does not close w).
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Gzip:
		return gzip.NewWriter(w), nil
	case Zstd:
		// One goroutine: the encoder's memory stays a few window sizes.
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
	}
	return nopWriteCloser{w}, nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// ArchiveJournal is the file beside the archive at p (p's symbolic
// links followed) that an in-place transform of it (package transform)
// keeps from its commit point until the new archive has replaced the old;
// OpenArchive refuses an archive that has one (ErrInterrupted).
func ArchiveJournal(p string) string {
	if r, err := fileout.Resolve(p); err == nil {
		p = r
	}
	return filepath.Join(filepath.Dir(p), filepath.Base(p)+"."+JournalName)
}

// MemberHeader is a member of the tar of an archive as its header names
// it.
type MemberHeader struct {
	Name     string // as in the header, not cleaned
	Typeflag byte
	Size     int64
}

// Members returns every member of the archive, kept or not, in the order
// of the tar.
func (a *Archive) Members() []MemberHeader { return a.order }

func (a *Archive) record(h *tar.Header) {
	a.order = append(a.order, MemberHeader{Name: h.Name, Typeflag: h.Typeflag, Size: h.Size})
}

// MemberOf returns the member of the archive that holds the file name of
// its dump (as Archive.Dump names them): checkpoint/NAME, or stats-dump at
// the root when checkpoint/ has none.
func (a *Archive) MemberOf(name string) string { return checkpointFS{a}.name(name) }

// Rewrite writes to w the tar of the archive (uncompressed; see Compress)
// with the data of the members named in repl (cleaned names, as MemberOf
// gives them) replaced: their headers keep every field but the size, and
// every other byte of the tar is copied as it is, in order. It reads the
// archive once, as it streams: no member is held in memory but the new
// ones. A member of repl the archive lacks is an error, so is a sparse
// member (its bytes cannot be copied as they are).
func (a *Archive) Rewrite(out io.Writer, repl map[string][]byte) error {
	w := &writer{w: out}
	var src io.Reader
	var g *guard
	if a.gz {
		r, done, err := a.decompress()
		if err != nil {
			return err
		}
		defer done()
		src, g = r, r
	} else {
		src = io.NewSectionReader(a.ra, 0, a.size)
	}
	rec := &recorder{r: src}
	tr := tar.NewReader(rec)
	seen := map[string]bool{}
	fail := func(member string, err error) error {
		if g != nil {
			return a.readError(g, member, err)
		}
		return fmt.Errorf("%s: %w", a.path, err)
	}
	prevReplaced := false
	for n := 1; ; n++ {
		pad := int(-rec.n & (blockSize - 1)) // the previous member's padding
		rec.start()
		h, err := tr.Next()
		raw := rec.stop()
		if err != nil && err != io.EOF {
			return fail("", err)
		}
		if len(raw) < pad {
			return fail("", io.ErrUnexpectedEOF)
		}
		if !prevReplaced {
			if _, err := w.Write(raw[:pad]); err != nil {
				return err
			}
		}
		raw = raw[pad:]
		if err == io.EOF {
			if _, err := w.Write(raw); err != nil {
				return err
			}
			break
		}
		if g != nil {
			err = a.checkHeader(g, n, h)
		} else {
			err = a.checkMembers(n)
		}
		if err != nil {
			return err
		}
		name, err := header(h)
		if err != nil {
			return fmt.Errorf("%s: %w", a.path, err)
		}
		if isSparse(h) {
			return fmt.Errorf("%s: member %q is sparse: it cannot be copied as it is", a.path, h.Name)
		}
		data, replaced := repl[name]
		prevReplaced = replaced && name != ""
		if !prevReplaced {
			if _, err := w.Write(raw); err != nil {
				return err
			}
			if _, err := io.Copy(w, tr); err != nil {
				return w.or(fail(h.Name, err))
			}
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return fmt.Errorf("%s: member %q is not a regular file", a.path, h.Name)
		}
		seen[name] = true
		if m := a.members[name]; m != nil && m.size != h.Size {
			return fmt.Errorf("%s: member %q: %d bytes, but %d when the archive was opened", a.path, h.Name, h.Size, m.size)
		}
		nh, err := resize(raw, h, int64(len(data)))
		if err != nil {
			return fmt.Errorf("%s: member %q: %w", a.path, h.Name, err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return fail(h.Name, err)
		}
		for _, b := range [][]byte{nh, data, make([]byte, -len(data)&(blockSize-1))} {
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
	}
	// What follows the end blocks (writers pad to a record) is copied too;
	// a compressed stream is read to its end, which checks its checksums.
	k, err := io.Copy(w, io.LimitReader(rec, maxTrailing+1))
	switch {
	case err != nil:
		return w.or(fail("", err))
	case k > maxTrailing:
		return fmt.Errorf("%s: damaged archive: more than %d bytes after the end of the tar", a.path, maxTrailing)
	}
	for name := range repl {
		if !seen[name] {
			return fmt.Errorf("%s: no member %s in the archive", a.path, name)
		}
	}
	return nil
}

// writer keeps the error of a failed write, so that a copy that fails
// is told apart from damage of the archive.
type writer struct {
	w   io.Writer
	err error
}

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// or returns the write error, if any, else err.
func (w *writer) or(err error) error {
	if w.err != nil {
		return w.err
	}
	return err
}

const blockSize = 512

// isSparse reports whether a member is a sparse file (GNU or PAX), whose
// data in the tar is not the bytes the reader returns.
func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// resize returns the header blocks raw of member h with its size set to
// size. A lone ustar or GNU header is patched in place (the size field and
// the checksum, in the widths they had), so that every other byte stays;
// a header with extended records, or one whose fields do not have the
// usual shape, is encoded again with the same fields.
func resize(raw []byte, h *tar.Header, size int64) ([]byte, error) {
	if b, ok := patchSize(raw, size); ok {
		if back, err := tar.NewReader(bytes.NewReader(b)).Next(); err == nil && back.Name == h.Name && back.Size == size {
			return b, nil
		}
	}
	var buf bytes.Buffer
	nh := *h
	nh.Size = size
	if err := tar.NewWriter(&buf).WriteHeader(&nh); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// patchSize sets the octal size field of a lone header block and its
// checksum; ok is false when the block is not of that shape.
func patchSize(raw []byte, size int64) ([]byte, bool) {
	const sizeOff, sizeLen, sumOff = 124, 11, 148
	if len(raw) != blockSize || !octal(raw[sizeOff:sizeOff+sizeLen]) || !octal(raw[sumOff:sumOff+6]) ||
		(raw[sizeOff+sizeLen] != 0 && raw[sizeOff+sizeLen] != ' ') || (raw[sumOff+6] != 0 && raw[sumOff+6] != ' ') {
		return nil, false
	}
	s := strconv.FormatInt(size, 8)
	if len(s) > sizeLen {
		return nil, false
	}
	b := bytes.Clone(raw)
	copy(b[sizeOff:], strings.Repeat("0", sizeLen-len(s))+s)
	copy(b[sumOff:sumOff+8], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[sumOff:sumOff+6], fmt.Sprintf("%06o", sum))
	b[sumOff+6], b[sumOff+7] = raw[sumOff+6], raw[sumOff+7]
	return b, true
}

func octal(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '7' {
			return false
		}
	}
	return true
}

// recorder counts the bytes read through it and, between start and stop,
// keeps them: the header blocks tar.Reader.Next reads.
type recorder struct {
	r   io.Reader
	n   int64
	on  bool
	buf []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if r.on {
		r.buf = append(r.buf, p[:n]...)
	}
	return n, err
}

func (r *recorder) start() { r.on, r.buf = true, r.buf[:0] }

func (r *recorder) stop() []byte { r.on = false; return r.buf }
