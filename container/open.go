package container

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
)

// ErrNotCheckpoint is the error of Open for a path that is neither a
// checkpoint archive, nor a checkpoint folder, nor a dump folder.
var ErrNotCheckpoint = errors.New("not a container checkpoint archive, checkpoint folder or CRIU dump folder")

// rootfsDiff is the name of the rootfs diff in a checkpoint.
const rootfsDiff = "rootfs-diff.tar"

// Open reads the checkpoint at p: an archive, an unpacked archive or a dump
// folder.
func Open(p string, opts Options) (*Checkpoint, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return openFolder(p, opts)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w", p, ErrNotCheckpoint)
	}
	return openArchive(p, opts)
}

// cleanName checks a member name and returns it without "./" and a
// trailing slash; "" is the root.
func cleanName(name string) (string, error) {
	n, err := dump.CleanMemberName(name)
	if err != nil {
		return "", fmt.Errorf("%w: refused", err)
	}
	if n == "." {
		return "", nil
	}
	return n, nil
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n *atomic.Int64
}

func (c countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// visitor sees one member of the outer tar: its cleaned name, header and
// data. For a plain tar the data is an io.ReadSeeker over the member, so
// that what is not read is skipped.
type visitor func(name string, h *tar.Header, data io.Reader) error

// errStop ends a walk early without error.
var errStop = errors.New("stop")

// walkArchive calls fn for each member of the archive at p, in order, and
// returns the archive's size and the bytes read from the file.
func walkArchive(p string, fn visitor) (size, read int64, err error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size = st.Size()
	var n atomic.Int64
	ra := countingReaderAt{f, &n}
	err = walkTar(p, ra, size, fn)
	if errors.Is(err, errStop) {
		err = nil
	}
	return size, n.Load(), err
}

func walkTar(p string, ra io.ReaderAt, size int64, fn visitor) error {
	var head [4]byte
	k, _ := ra.ReadAt(head[:], 0)
	var r io.Reader
	sr := io.NewSectionReader(ra, 0, size)
	plain := !dump.IsCompressed(head[:k])
	if plain {
		r = sr
	} else {
		zr, done, err := decompress(sr, head[:k])
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		defer done()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		name, err := cleanName(h.Name)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if name == "" {
			continue
		}
		var data io.Reader = tr
		if plain && h.Typeflag == tar.TypeReg {
			pos, err := sr.Seek(0, io.SeekCurrent)
			if err != nil {
				return err
			}
			if h.Size < 0 || h.Size > size || pos > size-h.Size {
				return fmt.Errorf("%s: member %q: %d bytes past the end of the archive", p, h.Name, h.Size)
			}
			data = io.NewSectionReader(ra, pos, h.Size)
		}
		if err := fn(name, h, data); err != nil {
			return err
		}
	}
}

// readMeta reads a small member whole.
func readMeta(p, name string, h *tar.Header, r io.Reader) ([]byte, error) {
	if h.Size > maxMeta {
		return nil, fmt.Errorf("%s: %s: %d bytes, more than the %d a metadata file may have", p, name, h.Size, maxMeta)
	}
	b := make([]byte, h.Size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", p, name, err)
	}
	return b, nil
}

// isPages reports whether an image name (in checkpoint/) is a pages image.
func isPages(base string) bool {
	return strings.HasPrefix(base, "pages-") && strings.HasSuffix(base, ".img")
}

func isAMDGPUPages(base string) bool {
	return strings.HasPrefix(base, "amdgpu-pages-") && strings.HasSuffix(base, ".img")
}

// sizeImage adds an image of checkpoint/ to the sizes.
func (s *Sizes) addImage(base string, size int64) {
	s.Checkpoint += size
	switch {
	case isPages(base):
		s.Pages += size
	case isAMDGPUPages(base):
		s.AMDGPUPages += size
	}
}

func openArchive(p string, opts Options) (*Checkpoint, error) {
	sc := newScan(p, opts)
	size, read, err := walkArchive(p, sc.member)
	sc.c.read = read
	if err != nil {
		return nil, err
	}
	return sc.finish(size, nil)
}

// scan gathers a checkpoint from the members of an archive's outer tar,
// seen in order.
type scan struct {
	p             string
	opts          Options
	c             *Checkpoint
	files         map[string][]byte // metadata files by name (stats-dump: the last of checkpoint/ and the root)
	kept          map[string]string // metadata files left to read from the archive: name -> member
	others        map[string]int    // index in c.Members of a root member
	hasCheckpoint bool
}

func newScan(p string, opts Options) *scan {
	return &scan{p: p, opts: opts, c: &Checkpoint{Path: p, Kind: KindArchive, Processes: -1, RootfsFiles: -1},
		files: map[string][]byte{}, kept: map[string]string{}, others: map[string]int{}}
}

// meta reads a small member whole, or, when data is nil (package dump
// keeps the member), records it to be read from the archive by finish.
func (s *scan) meta(key, name string, h *tar.Header, data io.Reader) error {
	if data == nil {
		s.kept[key] = name
		return nil
	}
	b, err := readMeta(s.p, name, h, data)
	s.files[key] = b
	return err
}

// member sees one member of the outer tar; data is nil for a member whose
// bytes are not to be read here (see dump.ArchiveOptions.Visit).
func (s *scan) member(name string, h *tar.Header, data io.Reader) error {
	if name == "." || name == "" {
		return nil
	}
	c := s.c
	top, rest, _ := strings.Cut(name, "/")
	if top == "checkpoint" {
		s.hasCheckpoint = true
		if rest == "" || h.Typeflag != tar.TypeReg || strings.Contains(rest, "/") {
			return nil
		}
		c.Sizes.addImage(rest, h.Size)
		if rest == "pstree.img" || rest == "stats-dump" {
			return s.meta(rest, name, h, data)
		}
		return nil
	}
	switch {
	case rest == "" && metaFiles[name] && h.Typeflag == tar.TypeReg:
		return s.meta(name, name, h, data)
	case name == rootfsDiff && h.Typeflag == tar.TypeReg:
		c.Sizes.RootfsDiff = h.Size
		if !s.opts.Rootfs || data == nil {
			return nil
		}
		ms, err := listRootfs(data)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", s.p, rootfsDiff, err)
		}
		c.Rootfs, c.RootfsFiles = ms, len(ms)
		return nil
	}
	i, ok := s.others[top]
	if !ok {
		i = len(c.Members)
		s.others[top] = i
		c.Members = append(c.Members, RootMember{Name: top, Dir: rest != "" || h.Typeflag == tar.TypeDir})
	}
	if h.Typeflag == tar.TypeReg {
		c.Members[i].Size += h.Size
	}
	return nil
}

// finish completes the checkpoint of an archive of size bytes once every
// member was seen; a reads the members package dump kept (nil when the
// scan read them all).
func (s *scan) finish(size int64, a *dump.Archive) (*Checkpoint, error) {
	c := s.c
	if !s.hasCheckpoint {
		return nil, fmt.Errorf("%s: no checkpoint/ folder: %w", s.p, ErrNotCheckpoint)
	}
	for key, name := range s.kept {
		if _, ok := s.files[key]; ok || a == nil {
			continue
		}
		b, err := a.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", s.p, name, err)
		}
		s.files[key] = b
	}
	c.Sizes.Total = size
	c.Processes = countProcesses(s.files["pstree.img"])
	delete(s.files, "pstree.img")
	if err := c.fill(s.files); err != nil {
		return nil, err
	}
	return c, nil
}

// Scan returns a visitor of the members of a checkpoint archive for
// dump.ArchiveOptions.Visit, and the function that returns the archive's
// Checkpoint, as Open does, once dump.OpenArchive has read it: with them a
// command that opens the dump and shows its container part reads a
// compressed archive once.
func Scan(p string, opts Options) (visit func(name string, h *tar.Header, data io.Reader) error, finish func(a *dump.Archive) (*Checkpoint, error)) {
	sc := newScan(p, opts)
	return sc.member, func(a *dump.Archive) (*Checkpoint, error) { return sc.finish(a.Size(), a) }
}

// countProcesses counts the entries of pstree.img; -1 when it cannot be
// read.
func countProcesses(b []byte) int {
	if b == nil {
		return -1
	}
	r, err := codec.NewBytesReader(b, codec.ReadOptions{Name: "pstree.img"})
	if err != nil {
		return -1
	}
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			return n
		}
		if err != nil {
			return -1
		}
		n++
	}
}

// openFolder reads a checkpoint folder (an unpacked archive: checkpoint/
// beside config.dump ...) or a plain dump folder.
func openFolder(p string, opts Options) (*Checkpoint, error) {
	c := &Checkpoint{Path: p, Kind: KindFolder, Processes: -1, RootfsFiles: -1}
	images := filepath.Join(p, "checkpoint")
	if st, err := os.Stat(images); err != nil || !st.IsDir() {
		if _, err := os.Stat(filepath.Join(p, "inventory.img")); err != nil {
			return nil, fmt.Errorf("%s: %w", p, ErrNotCheckpoint)
		}
		c.Kind, images = KindDump, p
	}
	ents, err := os.ReadDir(images)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		c.Sizes.addImage(e.Name(), info.Size())
		switch e.Name() {
		case "pstree.img":
			b, err := readFileMax(filepath.Join(images, e.Name()))
			if err != nil {
				return nil, err
			}
			c.Processes = countProcesses(b)
		case "inventory.img":
			if c.Kind == KindDump {
				t := info.ModTime().UTC()
				c.Checkpointed = &t
			}
		}
	}
	c.Sizes.Total = c.Sizes.Checkpoint
	if c.Kind == KindDump {
		return c, nil
	}
	ents, err = os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name := e.Name()
		fp := filepath.Join(p, name)
		switch {
		case name == "checkpoint":
			continue
		case metaFiles[name] && e.Type().IsRegular():
			b, err := readFileMax(fp)
			if err != nil {
				return nil, err
			}
			files[name] = b
			c.Sizes.Total += int64(len(b))
			continue
		}
		sz := treeSize(fp)
		c.Sizes.Total += sz
		if name == rootfsDiff && e.Type().IsRegular() {
			c.Sizes.RootfsDiff = sz
			if opts.Rootfs {
				f, err := os.Open(fp)
				if err != nil {
					return nil, err
				}
				ms, err := listRootfs(f)
				f.Close()
				if err != nil {
					return nil, fmt.Errorf("%s: %w", fp, err)
				}
				c.Rootfs, c.RootfsFiles = ms, len(ms)
			}
			continue
		}
		c.Members = append(c.Members, RootMember{Name: name, Size: sz, Dir: e.IsDir()})
	}
	if err := c.fill(files); err != nil {
		return nil, err
	}
	return c, nil
}

// readFileMax reads a metadata file of a folder, refusing a huge one.
func readFileMax(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMeta+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMeta {
		return nil, fmt.Errorf("%s: more than the %d bytes a metadata file may have", p, maxMeta)
	}
	return b, nil
}

// treeSize is the size of the regular files at or under p (symlinks not
// followed).
func treeSize(p string) int64 {
	var n int64
	filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// Decoders are pooled: a zstd decoder allocates its window (8 MiB for
// the encoder's default) once, not once per archive of a list.
var (
	zstdPool sync.Pool
	gzipPool sync.Pool
)

// decompress returns a reader of the tar inside a compressed archive whose
// first bytes are head, and the function that returns its decoder to the
// pool.
func decompress(r io.Reader, head []byte) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<16)
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		if zr, ok := gzipPool.Get().(*gzip.Reader); ok {
			if err := zr.Reset(br); err != nil {
				return nil, nil, err
			}
			return zr, func() { gzipPool.Put(zr) }, nil
		}
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { gzipPool.Put(zr) }, nil
	}
	zr, ok := zstdPool.Get().(*zstd.Decoder)
	if !ok {
		var err error
		zr, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, nil, err
		}
	}
	if err := zr.Reset(br); err != nil {
		return nil, nil, err
	}
	return zr, func() { zstdPool.Put(zr) }, nil
}

// FromArchive reads the container fields (engine, names, ids, image,
// times, pod, annotations, mounts, networks) of a checkpoint archive that
// package dump has already opened, from the root members it keeps: no
// second pass over the archive. Sizes, processes and rootfs-diff.tar are
// not filled (Processes and RootfsFiles are -1); Open reads those.
func FromArchive(a *dump.Archive, path string) (*Checkpoint, error) {
	c := &Checkpoint{Path: path, Kind: KindArchive, Processes: -1, RootfsFiles: -1}
	files := map[string][]byte{}
	for name := range metaFiles {
		b, err := a.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	return c, c.fill(files)
}
