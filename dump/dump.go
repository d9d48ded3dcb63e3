// Package dump opens a CRIU dump: a directory (or any fs.FS) of image files.
// Opening indexes the files by kind and id from their names and decodes
// nothing; an image is read the first time something asks for it, once, and
// kept. Reading never changes the dump.
//
// The index comes from package magic's file-name patterns; the bytes from
// package codec. The kind of an image is what its magic says: a file named
// like one kind that holds another is a [KindError]. Package model joins the
// images of a Dump into one model (kept in the Dump, see [Dump.Value]),
// which package query's CEL views, package explore's views and package mem
// read.
package dump

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/magic"
)

// Dump is an opened dump. Its methods are safe for concurrent use.
type Dump struct {
	// Name is how the dump was named when opened (a directory path).
	Name string

	fsys    fs.FS
	dir     string    // the directory on disk, "" for other file systems
	closer  io.Closer // the archive the dump is read from, or nil
	files   []*File
	byName  map[string]*File
	notRead map[string]string // image name -> why it is not read (see NotRead)
	opts    codec.ReadOptions

	mu     sync.Mutex
	values map[any]any       // see Value
	hook   func(name string) // called when an image is read (tests, :time)
	parent *Dump
	perr   error
	pdone  bool
	below  []string // the real paths of this dump and the dumps it is a parent of
}

// maxChain bounds a chain of parent dumps.
const maxChain = 512

// File is one file of a dump.
type File struct {
	Name string      // base name, "core-42.img"
	Kind *magic.Kind // nil for files no kind claims (dump.log)
	ID   string      // the id in the name ("42"), "" if none
	Size int64

	d    *Dump
	once sync.Once
	img  *Image
	err  error

	monce sync.Once
	msgs  []proto.Message
	merr  error
}

// Image is a decoded image: its header and entries as they are in the file.
type Image struct {
	Header  codec.Header
	Entries []*codec.Entry
}

// JournalName is the file an in-place transform (package transform) keeps in
// a dump while it replaces images. A dump that holds one is half rewritten.
const JournalName = "critq-transform.journal"

// ErrInterrupted is returned by Open for a dump whose in-place transform was
// interrupted; "critq transform --recover DIR" finishes it.
var ErrInterrupted = errors.New("an in-place transform was interrupted: run 'critq transform --recover' on the dump before reading it")

// Open opens the dump in directory dir.
func Open(dir string) (*Dump, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		if st.Mode().IsRegular() && IsArchive(dir) {
			return openArchive(dir)
		}
		return nil, fmt.Errorf("%s: not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, JournalName)); err == nil {
		return nil, fmt.Errorf("%s: %w", dir, ErrInterrupted)
	}
	d, err := OpenFS(os.DirFS(dir), dir)
	if d != nil {
		d.dir = dir
	}
	return d, err
}

// OpenFS opens the dump whose images are the files at the root of fsys.
// name is used in messages.
func OpenFS(fsys fs.FS, name string) (*Dump, error) {
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	d := &Dump{Name: name, fsys: fsys, byName: map[string]*File{}}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		f := &File{Name: e.Name(), d: d}
		f.Kind, f.ID, _ = magic.ForFile(f.Name)
		if !e.Type().IsRegular() {
			// CRIU writes images as regular files; a link could lead out
			// of the dump (/dev/zero, /proc/kcore) and a FIFO block.
			if f.Kind != nil { // not the parent link and friends
				if d.notRead == nil {
					d.notRead = map[string]string{}
				}
				d.notRead[f.Name] = notRegular(fsys, e)
			}
			continue
		}
		if info, err := e.Info(); err == nil {
			f.Size = info.Size()
		}
		d.files = append(d.files, f)
		d.byName[f.Name] = f
	}
	sort.Slice(d.files, func(i, j int) bool { return d.files[i].Name < d.files[j].Name })
	if !d.hasImages() {
		if subs := dumpsIn(fsys, ents); len(subs) > 0 {
			return nil, fmt.Errorf("%s: %w; it holds the dumps %s: name one", name, ErrNotDump, strings.Join(subs, ", "))
		}
		return nil, fmt.Errorf("%s: %w", name, ErrNotDump)
	}
	return d, nil
}

// notRegular says what an entry that is no regular file is.
func notRegular(fsys fs.FS, e fs.DirEntry) string {
	if l, ok := fsys.(interface{ linkKind(string) string }); ok {
		if k := l.linkKind(e.Name()); k != "" {
			return k
		}
	}
	switch t := e.Type(); {
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

// NotRead returns, sorted by name, the files named like images that the
// dump has and does not read because they are no regular files (symbolic
// links, in an archive hard links too, FIFOs, devices), each as "NAME:
// WHAT, not read". Such an image counts as missing: see [Dump.NotReadWhy].
func (d *Dump) NotRead() []string {
	out := make([]string, 0, len(d.notRead))
	for n, why := range d.notRead {
		out = append(out, n+": "+why+", not read")
	}
	sort.Strings(out)
	return out
}

// NotReadWhy returns what the file name is, when the dump has it and does
// not read it ("a symbolic link"), or "".
func (d *Dump) NotReadWhy(name string) string { return d.notRead[name] }

// SetHook sets a function called with the file name each time an image is
// read from the dump. It is for instrumentation; nil removes it.
func (d *Dump) SetHook(h func(name string)) {
	d.mu.Lock()
	d.hook = h
	d.mu.Unlock()
}

// SetLimits sets the codec limits used to read images.
func (d *Dump) SetLimits(maxSize, maxExtra int64) {
	d.opts.MaxSize, d.opts.MaxExtra = maxSize, maxExtra
}

// Value returns the value kept in d under key, built by build the first
// time it is asked for. It lets a package keep what it derived from the
// images (package model's joined model) for as long as the dump lives, once
// per dump. build must not call Value of the same dump.
func (d *Dump) Value(key any, build func() any) any {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.values[key]; ok {
		return v
	}
	if d.values == nil {
		d.values = map[any]any{}
	}
	v := build()
	d.values[key] = v
	return v
}

// FS returns the file system of the dump.
func (d *Dump) FS() fs.FS { return d.fsys }

// Files returns every file of the dump, sorted by name.
func (d *Dump) Files() []*File { return d.files }

// File returns the file with the given base name, or nil.
func (d *Dump) File(name string) *File { return d.byName[name] }

// Kind returns the files of a kind (by crit's name), sorted by name.
func (d *Dump) Kind(name string) []*File {
	var out []*File
	for _, f := range d.files {
		if f.Kind != nil && f.Kind.Name == name {
			out = append(out, f)
		}
	}
	return out
}

// FileFor returns the image of kind name with the given id, or nil:
// FileFor("CORE", "42") is core-42.img.
func (d *Dump) FileFor(kind string, id uint64) *File {
	k, ok := magic.ByName(kind)
	if !ok {
		return nil
	}
	return d.byName[k.FileName(strconv.FormatUint(id, 10))]
}

// Parent returns the dump that the "parent" link of an incremental dump
// points to, or nil when there is none.
func (d *Dump) Parent() (*Dump, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pdone {
		return d.parent, d.perr
	}
	d.pdone = true
	if d.dir != "" {
		// CRIU's parent link is a symlink relative to the dump
		// ("../pre2"). A copy that lost the link may keep its target as
		// the content of a small regular file: follow that too.
		p := filepath.Join(d.dir, "parent")
		st, err := os.Lstat(p)
		if err != nil {
			return nil, nil
		}
		if st.Mode().IsRegular() && st.Size() > 0 && st.Size() < 4096 {
			target, err := os.ReadFile(p)
			if err != nil {
				d.perr = err
				return nil, err
			}
			t := strings.TrimRight(string(target), "\n")
			if !filepath.IsAbs(t) {
				t = filepath.Join(d.dir, t)
			}
			p = t
		}
		below := d.below
		if len(below) == 0 {
			below = []string{realPath(d.dir)}
		}
		rp := realPath(p)
		for _, b := range below {
			if rp == b {
				d.perr = fmt.Errorf("%s: the parent link leads back to %s: a loop", d.Name, b)
				return nil, d.perr
			}
		}
		if len(below) >= maxChain {
			d.perr = fmt.Errorf("%s: more than %d dumps in the chain of parents", d.Name, maxChain)
			return nil, d.perr
		}
		d.parent, d.perr = Open(p)
		if d.parent != nil {
			d.parent.below = append(append([]string(nil), below...), rp)
		}
	} else {
		if _, err := fs.Stat(d.fsys, "parent"); err != nil {
			return nil, nil
		}
		sub, err := fs.Sub(d.fsys, "parent")
		if err != nil {
			d.perr = err
			return nil, err
		}
		d.parent, d.perr = OpenFS(sub, path.Join(d.Name, "parent"))
	}
	if d.parent != nil {
		d.parent.hook = d.hook
		d.parent.opts = d.opts
	}
	return d.parent, d.perr
}

// realPath is p with its links resolved, or p cleaned where that fails.
func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// Open opens a file of the dump for reading raw bytes (pages images).
func (f *File) Open() (fs.File, error) {
	f.d.notify(f.Name)
	return f.d.fsys.Open(f.Name)
}

func (d *Dump) notify(name string) {
	d.mu.Lock()
	h := d.hook
	d.mu.Unlock()
	if h != nil {
		h(name)
	}
}

// dumpsIn returns the names of the folders among ents that hold images,
// sorted: the dumps of a folder above them (a pre-dump chain, dumps taken
// one after another).
func dumpsIn(fsys fs.FS, ents []fs.DirEntry) []string {
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sub, err := fs.ReadDir(fsys, e.Name())
		if err != nil {
			continue
		}
		for _, f := range sub {
			if k, _, ok := magic.ForFile(f.Name()); ok && !f.IsDir() && k != nil && !k.Raw {
				out = append(out, e.Name())
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// ErrNotDump is returned by Open for a directory that holds no CRIU image.
var ErrNotDump = errors.New("not a CRIU dump: no image files (inventory.img, pstree.img, core-*.img, ...)")

// hasImages reports whether any file of d is an image of a kind with
// entries (not only raw data, logs or unknown files).
func (d *Dump) hasImages() bool {
	for _, f := range d.files {
		if f.Kind != nil && !f.Kind.Raw {
			return true
		}
	}
	return false
}

// KindError reports an image whose magic is another kind's than its file
// name says: core-1.img holding an FS image. The kind of an image is what its
// magic says, so such a file is a bad image, never read as its name's kind.
type KindError struct {
	File  string // base name, "core-1.img"
	Want  string // the kind the name says, "CORE"
	Found string // the kind the magic says, "FS"
}

func (e *KindError) Error() string {
	return fmt.Sprintf("%s: magic of a %s image where %s was expected", e.File, e.Found, e.Want)
}

// ErrRaw is returned by Image for raw images (pages, iptables, ...).
var ErrRaw = errors.New("raw image: no entries")

// Image reads and frames the image, once. Errors carry the file name.
func (f *File) Image() (*Image, error) {
	f.once.Do(func() {
		if f.Kind != nil && f.Kind.Raw {
			f.err = fmt.Errorf("%s: %w", f.Name, ErrRaw)
			return
		}
		f.d.notify(f.Name)
		data, err := fs.ReadFile(f.d.fsys, f.Name)
		if err != nil {
			f.err = err
			return
		}
		opts := f.d.opts
		opts.Name = f.Name
		if f.Kind != nil && !f.Kind.Raw && f.Kind.Entry != nil {
			if k, ok := magic.Lookup(f.Kind.Magic); ok && k != f.Kind {
				opts.Kind = f.Kind // a kind that shares its magic
			}
		}
		r, err := codec.NewBytesReader(data, opts)
		if err != nil {
			f.err = err
			return
		}
		if f.Kind != nil && r.Header().Kind.Magic != f.Kind.Magic {
			f.err = &KindError{File: f.Name, Want: f.Kind.Name, Found: r.Header().Kind.Name}
			return
		}
		img := &Image{Header: r.Header()}
		for {
			e, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				f.err = err
				return
			}
			img.Entries = append(img.Entries, e)
		}
		f.img = img
	})
	return f.img, f.err
}

// Messages returns every entry of the image unmarshalled, once. The
// messages are shared: do not modify them.
func (f *File) Messages() ([]proto.Message, error) {
	f.monce.Do(func() {
		img, err := f.Image()
		if err != nil {
			f.merr = err
			return
		}
		f.msgs = make([]proto.Message, len(img.Entries))
		for i, e := range img.Entries {
			m, err := e.Message()
			if err != nil {
				f.merr = &codec.Error{File: f.Name, Kind: img.Header.Kind.Name, Entry: i, Offset: e.Offset, Err: err}
				return
			}
			f.msgs[i] = m
		}
	})
	return f.msgs, f.merr
}

// First returns the first entry of the image unmarshalled, or nil when the
// image has no entries.
func (f *File) First() (proto.Message, error) {
	msgs, err := f.Messages()
	if err != nil || len(msgs) == 0 {
		return nil, err
	}
	return msgs[0], nil
}
