package dump

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ArchiveOptions configure OpenArchive. The bounds are checked against
// the sizes in the tar headers before a member's data is read, so an
// archive that passes one fails at once; zero means the bound of
// DefaultLimits.
type ArchiveOptions struct {
	// SpoolPages copies the pages images of a compressed archive to a
	// temporary folder during the one pass that reads the archive, for
	// commands that will read memory. Without it they are copied by a
	// second pass the first time one is opened.
	SpoolPages bool
	// TempDir is where pages are spooled; "" means os.TempDir().
	TempDir string
	// MaxBytes bounds the bytes a compressed archive decompresses to
	// (every member, kept or not, and the tar's own blocks).
	MaxBytes int64
	// MaxMeta bounds the bytes of the images other than pages, which a
	// compressed archive keeps in memory.
	MaxMeta int64
	// MaxSpool bounds the bytes of pages images copied to TempDir.
	MaxSpool int64
	// MaxMembers bounds the number of members of the tar.
	MaxMembers int
	// Context, when set, stops the reading of the archive (an
	// ErrAborted error) when it is done.
	Context context.Context
	// Visit, when set, sees every member of the tar in order during the
	// pass that opens the archive (not during a later copy of pages):
	// its name as CleanMemberName returns it and its header, after the
	// checks of names, links and bounds. For a regular member the
	// archive does not keep (rootfs-diff.tar, other folders) data reads
	// its bytes, which Visit may consume; for the others data is nil
	// (read a kept member with ReadFile once the archive is open). An
	// error of Visit stops the reading and is OpenArchive's error. So a
	// caller that also needs the members the archive skips reads a
	// compressed archive once.
	Visit func(name string, h *tar.Header, data io.Reader) error
}

// Archive is a container checkpoint archive as Podman, CRI-O and
// Kubernetes write it: a tar (plain, gzip or zstd) whose checkpoint/ folder
// is the CRIU dump, with stats-dump, config.dump and spec.dump at its root.
//
// A plain tar is read in place: members are served from their offsets.
// A compressed one is read in one streaming pass that keeps the images of
// checkpoint/ and the root's metadata files in memory, except pages images,
// which are copied to a temporary folder (see ArchiveOptions.SpoolPages).
// Nothing else is unpacked. Members whose names escape the archive (an
// absolute path, "..") and links are refused.
//
// An Archive is an fs.FS of the members it keeps. Close removes the
// temporary folder. Rewrite writes it again with the data of some members
// replaced (package transform's archive output).
type Archive struct {
	path string
	opts ArchiveOptions
	ra   io.ReaderAt // the archive's bytes
	size int64
	c    io.Closer // the file OpenArchive opened, closed by Close
	gz   bool      // compressed (gzip or zstd)
	comp Compression

	order []MemberHeader // every member of the tar, in order (see Members)

	mu      sync.Mutex
	members map[string]*member
	names   []string // sorted
	spooled bool
	spool   int64 // bytes spooled

	tmpMu sync.Mutex // guards tmp, which CloseArchives may remove during a read
	tmp   string

	abort atomic.Pointer[error] // set by AbortReads: stops the read under way
}

type member struct {
	name  string
	size  int64
	mtime time.Time
	off   int64  // plain tar: offset of the data
	data  []byte // compressed: the bytes kept in memory
	spool string // compressed: the spooled copy of a pages image
	dir   bool
	link  string // "a symbolic link" or "a hard link": listed, never read
}

// rootFiles are the files of the archive root that are kept.
var rootFiles = map[string]bool{"stats-dump": true, "config.dump": true, "spec.dump": true, "status.dump": true,
	"network.status": true, "pod.options": true, "pod.dump": true, "deleted.files": true}

// OpenArchive opens the archive at path. The file stays open until Close.
// An archive beside the journal of an interrupted in-place transform
// (ArchiveJournal) is ErrInterrupted.
func OpenArchive(p string, opts ArchiveOptions) (*Archive, error) {
	if _, err := os.Lstat(ArchiveJournal(p)); err == nil {
		return nil, fmt.Errorf("%s: %w", p, ErrInterrupted)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	a, err := NewArchive(f, st.Size(), p, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	a.c = f
	return a, nil
}

// NewArchive opens the archive of size bytes that r holds; name is used in
// messages. A plain tar is served from r, which must stay readable until
// Close; a compressed one is read once (twice when pages images are spooled
// later).
func NewArchive(r io.ReaderAt, size int64, name string, opts ArchiveOptions) (*Archive, error) {
	opts.setDefaults()
	a := &Archive{path: name, opts: opts, ra: r, size: size, members: map[string]*member{}}
	track(a)
	var head [4]byte
	n, _ := r.ReadAt(head[:], 0)
	a.comp = compressionOf(head[:n])
	a.gz = a.comp != Plain
	var err error
	if a.gz {
		err = a.stream(opts.SpoolPages)
	} else {
		err = a.indexTar()
	}
	if err != nil {
		a.Close()
		return nil, err
	}
	for n := range a.members {
		a.names = append(a.names, n)
	}
	sort.Strings(a.names)
	if a.members["checkpoint"] == nil {
		a.Close()
		return nil, fmt.Errorf("%s: no checkpoint/ folder: not a container checkpoint archive", name)
	}
	return a, nil
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }
func isZstd(b []byte) bool { return bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}) }

// IsArchive reports whether the file at p looks like a checkpoint archive
// (gzip, zstd or tar).
func IsArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 512)
	n, _ := io.ReadFull(f, b)
	b = b[:n]
	return isGzip(b) || isZstd(b) || (n == 512 && bytes.Equal(b[257:262], []byte("ustar")))
}

// cleanName checks a member name and returns it relative to the archive
// root, without a trailing slash.
func cleanName(name string) (string, error) {
	n := strings.TrimPrefix(name, "./")
	n = strings.TrimSuffix(n, "/")
	if n == "" || n == "." {
		return ".", nil
	}
	if strings.HasPrefix(n, "/") || !fs.ValidPath(n) {
		return "", fmt.Errorf("member %q escapes the archive", name)
	}
	return n, nil
}

// keep reports whether the archive keeps a member: the checkpoint folder
// and the root's metadata files.
func keep(name string) bool {
	return name == "checkpoint" || strings.HasPrefix(name, "checkpoint/") || rootFiles[name]
}

func isPages(name string) bool {
	b := path.Base(name)
	return path.Dir(name) == "checkpoint" && strings.HasPrefix(b, "pages-") && strings.HasSuffix(b, ".img")
}

// header checks a tar header; it returns the cleaned name, or "" for a
// member that is skipped. A link is listed, not followed: its member has
// link set, and nothing reads it.
func header(h *tar.Header) (string, error) {
	name, err := cleanName(h.Name)
	if err != nil {
		return "", err
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	default:
		return "", nil // devices, FIFOs, PAX globals: never dump images
	}
	if name == "." || !keep(name) {
		return "", nil
	}
	if h.Size < 0 {
		return "", fmt.Errorf("member %q: negative size", h.Name)
	}
	return name, nil
}

// indexTar records the members of a plain tar with the offsets of their
// data: tar reads whole 512-byte blocks and no further, so after Next the
// reader is at the member's data; it seeks over the data it skips.
func (a *Archive) indexTar() error {
	sr := io.NewSectionReader(a.ra, 0, a.size)
	tr := tar.NewReader(sr)
	for n := 1; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", a.path, err)
		}
		if err := a.checkMembers(n); err != nil {
			return err
		}
		name, err := header(h)
		if err != nil {
			return fmt.Errorf("%s: %w", a.path, err)
		}
		a.record(h)
		pos, err := sr.Seek(0, io.SeekCurrent)
		if err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg && (h.Size < 0 || h.Size > a.size || pos > a.size-h.Size) {
			return fmt.Errorf("%s: member %q: %d bytes past the end of the archive", a.path, h.Name, h.Size)
		}
		if err := a.visit(h, name, func() io.Reader { return io.NewSectionReader(a.ra, pos, h.Size) }); err != nil {
			return err
		}
		if name == "" {
			continue
		}
		a.add(&member{name: name, size: h.Size, mtime: h.ModTime, off: pos, dir: h.Typeflag == tar.TypeDir, link: linkKind(h)})
	}
}

// visit calls ArchiveOptions.Visit for the member of header h, which
// header named name ("" when the archive skips it); data returns the
// reader of its bytes.
func (a *Archive) visit(h *tar.Header, name string, data func() io.Reader) error {
	if a.opts.Visit == nil {
		return nil
	}
	clean, err := cleanName(h.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", a.path, err)
	}
	var r io.Reader
	if name == "" && h.Typeflag == tar.TypeReg {
		r = data()
	}
	return a.opts.Visit(clean, h, r)
}

// linkKind is a member's link field.
func linkKind(h *tar.Header) string {
	switch h.Typeflag {
	case tar.TypeSymlink:
		return "a symbolic link"
	case tar.TypeLink:
		return "a hard link"
	}
	return ""
}

// add records a member and the folders above it.
func (a *Archive) add(m *member) {
	if m.dir || m.link != "" {
		m.size = 0
	}
	a.members[m.name] = m
	for d := path.Dir(m.name); d != "."; d = path.Dir(d) {
		if a.members[d] == nil {
			a.members[d] = &member{name: d, dir: true}
		}
	}
}

// decompress returns a reader of the tar inside a compressed archive.
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, _ := br.Peek(4)
	if isZstd(head) {
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxZstdMemory),
			zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, nil, err
	}
	return zr, func() { zr.Close() }, nil
}

// stream reads a compressed archive once: metadata into memory, pages
// images to the temporary folder when spool is set.
func (a *Archive) stream(spool bool) error {
	r, done, err := a.decompress()
	if err != nil {
		return err
	}
	defer done()
	tr := tar.NewReader(r)
	var meta int64
	for n := 1; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.readError(r, "", err)
		}
		if err := a.checkHeader(r, n, h); err != nil {
			return err
		}
		name, err := header(h)
		if err != nil {
			return fmt.Errorf("%s: %w", a.path, err)
		}
		a.record(h)
		if err := a.visit(h, name, func() io.Reader { return tr }); err != nil {
			if r.err != nil {
				return a.readError(r, h.Name, err)
			}
			return err
		}
		if name == "" {
			continue
		}
		m := &member{name: name, size: h.Size, mtime: h.ModTime, dir: h.Typeflag == tar.TypeDir, link: linkKind(h)}
		switch {
		case m.dir, m.link != "":
		case isPages(name):
			if spool {
				if m.spool, err = a.spoolOne(name, tr, h.Size); err != nil {
					return a.readError(r, name, err)
				}
			}
		default:
			if meta += h.Size; meta > a.opts.MaxMeta {
				return a.limitError(name, "images besides pages kept in memory", meta, a.opts.MaxMeta, "max-meta")
			}
			m.data = make([]byte, h.Size)
			if _, err := io.ReadFull(tr, m.data); err != nil {
				return a.readError(r, name, err)
			}
		}
		a.add(m)
	}
	if err := r.drain(); err != nil {
		return err
	}
	a.spooled = spool
	return nil
}

func (a *Archive) spoolOne(name string, r io.Reader, size int64) (string, error) {
	if a.spool += size; a.spool > a.opts.MaxSpool {
		return "", a.limitError(name, "pages copied to the temporary folder", a.spool, a.opts.MaxSpool, "max-spool")
	}
	a.tmpMu.Lock()
	if a.tmp == "" {
		dir, err := makeTemp(a.opts.TempDir)
		if err != nil {
			a.tmpMu.Unlock()
			return "", err
		}
		a.tmp = dir
	}
	p := filepath.Join(a.tmp, path.Base(name))
	a.tmpMu.Unlock()
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(out, io.LimitReader(r, size))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		os.Remove(p)
		return "", err
	}
	return p, nil
}

// spoolPages makes the second pass over a compressed archive that copies
// its pages images, once.
func (a *Archive) spoolPages() error {
	if a.spooled {
		return nil
	}
	r, done, err := a.decompress()
	if err != nil {
		return err
	}
	defer done()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.readError(r, "", err)
		}
		if err := a.checkHeader(r, 0, h); err != nil {
			return err
		}
		name, err := header(h)
		if err != nil || name == "" || !isPages(name) {
			continue
		}
		if m := a.members[name]; m != nil && m.spool == "" && m.link == "" {
			if m.spool, err = a.spoolOne(name, tr, h.Size); err != nil {
				return a.readError(r, name, err)
			}
		}
	}
	if err := r.drain(); err != nil {
		return err
	}
	a.spooled = true
	return nil
}

// Close closes the archive and removes its temporary folder.
func (a *Archive) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var err error
	if a.c != nil {
		err = a.c.Close()
		a.c = nil
	}
	a.tmpMu.Lock()
	if a.tmp != "" {
		if rerr := os.RemoveAll(a.tmp); err == nil {
			err = rerr
		}
		a.tmp = ""
	}
	a.tmpMu.Unlock()
	untrack(a)
	return err
}

// ReadFile returns a member kept at the archive root (config.dump,
// spec.dump, ...) or in checkpoint/.
func (a *Archive) ReadFile(name string) ([]byte, error) {
	f, err := a.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Dump opens the CRIU dump of the archive: checkpoint/, with the root's
// stats-dump when checkpoint/ has none. The dump closes the archive when
// it is closed.
func (a *Archive) Dump() (*Dump, error) {
	d, err := OpenFS(checkpointFS{a}, a.path)
	if err != nil {
		return nil, err
	}
	d.closer = a
	return d, nil
}

// checkpointFS is the checkpoint/ folder with the root's stats-dump.
type checkpointFS struct{ a *Archive }

func (c checkpointFS) name(n string) string {
	if n == "." {
		return "checkpoint"
	}
	if n == "stats-dump" && c.a.members["checkpoint/stats-dump"] == nil {
		return n
	}
	return "checkpoint/" + n
}

func (c checkpointFS) Open(n string) (fs.File, error) {
	if !fs.ValidPath(n) {
		return nil, &fs.PathError{Op: "open", Path: n, Err: fs.ErrInvalid}
	}
	if n == "." {
		return c.a.openDir("checkpoint", c.ReadDir)
	}
	return c.a.Open(c.name(n))
}

// linkKind says which kind of link member n is, "" if none.
func (c checkpointFS) linkKind(n string) string {
	if m := c.a.members[c.name(n)]; m != nil {
		return m.link
	}
	return ""
}

func (c checkpointFS) ReadDir(n string) ([]fs.DirEntry, error) {
	ents, err := c.a.ReadDir(c.name(n))
	if err != nil || n != "." || c.a.members["checkpoint/stats-dump"] != nil {
		return ents, err
	}
	if m := c.a.members["stats-dump"]; m != nil {
		ents = append(ents, fs.FileInfoToDirEntry(m.info()))
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	}
	return ents, nil
}

func (c checkpointFS) Stat(n string) (fs.FileInfo, error) {
	f, err := c.Open(n)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// Open opens a member.
func (a *Archive) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return a.openDir(".", a.ReadDir)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.members[name]
	if m == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if m.dir {
		return &archiveFile{m: m, r: io.NewSectionReader(bytes.NewReader(nil), 0, 0), dirs: func() ([]fs.DirEntry, error) { return a.readDir(name) }}, nil
	}
	if m.link != "" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%s, not read", m.link)}
	}
	switch {
	case !a.gz:
		return &archiveFile{m: m, r: io.NewSectionReader(a.ra, m.off, m.size)}, nil
	case m.data != nil || !isPages(name):
		return &archiveFile{m: m, r: io.NewSectionReader(bytes.NewReader(m.data), 0, int64(len(m.data)))}, nil
	}
	if m.spool == "" {
		if err := a.spoolPages(); err != nil {
			return nil, err
		}
	}
	return os.Open(m.spool)
}

func (a *Archive) openDir(name string, list func(string) ([]fs.DirEntry, error)) (fs.File, error) {
	m := &member{name: name, dir: true}
	return &archiveFile{m: m, r: io.NewSectionReader(bytes.NewReader(nil), 0, 0), dirs: func() ([]fs.DirEntry, error) { return list(".") }}, nil
}

// ReadDir lists a folder of the archive.
func (a *Archive) ReadDir(name string) ([]fs.DirEntry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.readDir(name)
}

func (a *Archive) readDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		if m := a.members[name]; m == nil || !m.dir {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
		}
	}
	var out []fs.DirEntry
	for _, n := range a.names {
		if path.Dir(n) == name {
			out = append(out, fs.FileInfoToDirEntry(a.members[n].info()))
		}
	}
	return out, nil
}

// archiveFile is an open member; it implements io.ReaderAt and io.Seeker.
type archiveFile struct {
	m    *member
	r    *io.SectionReader
	dirs func() ([]fs.DirEntry, error)
}

func (f *archiveFile) Stat() (fs.FileInfo, error)                { return f.m.info(), nil }
func (f *archiveFile) Read(p []byte) (int, error)                { return f.r.Read(p) }
func (f *archiveFile) ReadAt(p []byte, off int64) (int, error)   { return f.r.ReadAt(p, off) }
func (f *archiveFile) Seek(off int64, whence int) (int64, error) { return f.r.Seek(off, whence) }
func (f *archiveFile) Close() error                              { return nil }
func (f *archiveFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if f.dirs == nil {
		return nil, errors.New("not a directory")
	}
	ents, err := f.dirs()
	if err != nil || n <= 0 {
		return ents, err
	}
	if len(ents) == 0 {
		return nil, io.EOF
	}
	return ents[:min(n, len(ents))], nil
}

type memberInfo struct{ m *member }

func (m *member) info() fs.FileInfo { return memberInfo{m} }

func (i memberInfo) Name() string       { return path.Base(i.m.name) }
func (i memberInfo) Size() int64        { return i.m.size }
func (i memberInfo) ModTime() time.Time { return i.m.mtime }
func (i memberInfo) IsDir() bool        { return i.m.dir }
func (i memberInfo) Sys() any           { return nil }
func (i memberInfo) Mode() fs.FileMode {
	if i.m.dir {
		return fs.ModeDir | 0o555
	}
	if i.m.link != "" {
		return fs.ModeSymlink | 0o777
	}
	return 0o444
}

// Archive returns the checkpoint archive the dump was read from, or nil
// for a dump of a directory.
func (d *Dump) Archive() *Archive {
	a, _ := d.closer.(*Archive)
	return a
}

// ErrNotArchive is the error of OpenAny for a file that is neither a dump
// directory nor a checkpoint archive.
var ErrNotArchive = errors.New("not a CRIU dump or checkpoint archive (tar, tar.gz, tar.zst)")

// OpenAny opens p as a user names a dump: a dump directory (as Open does)
// or a checkpoint archive, read with opts (as OpenArchive and
// Archive.Dump do; closing the dump closes the archive). Any other file is
// ErrNotArchive.
func OpenAny(p string, opts ArchiveOptions) (*Dump, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return Open(p)
	}
	if !st.Mode().IsRegular() || !IsArchive(p) {
		return nil, fmt.Errorf("%s: %w", p, ErrNotArchive)
	}
	return openArchiveWith(p, opts)
}

// openArchive opens the dump of a checkpoint archive for Open.
func openArchive(p string) (*Dump, error) { return openArchiveWith(p, ArchiveOptions{}) }

// openArchiveWith opens the dump of the checkpoint archive p; closing the
// dump closes the archive.
func openArchiveWith(p string, opts ArchiveOptions) (*Dump, error) {
	a, err := OpenArchive(p, opts)
	if err != nil {
		return nil, err
	}
	d, err := a.Dump()
	if err != nil {
		a.Close()
	}
	return d, err
}

// Close releases what the dump holds: the archive it was read from and
// its temporary folder. A dump of a directory holds nothing.
func (d *Dump) Close() error {
	if d.closer == nil {
		return nil
	}
	return d.closer.Close()
}
