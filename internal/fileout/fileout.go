// Package fileout writes the output files of critq without harm to what
// the path names: a regular file (or a new one) is replaced atomically, by
// a synced temporary file beside it renamed over it; anything else (a
// character or block device such as /dev/null, a FIFO, a socket, a
// /proc/self/fd/N link) is written in place, never replaced. A symbolic
// link is followed to its target, which is replaced, so the link stays;
// a dangling link creates its target.
package fileout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// TempPrefix starts the names of temporary files: hidden, and claimed by
// no image kind, so that a reader of a dump never takes one for an image.
const TempPrefix = ".critq-new."

// File is an output being written. Close it with Commit or Abort.
type File struct {
	*os.File
	Path   string // the file that is replaced or written (links followed)
	direct bool   // written in place
	closed bool
}

// Target returns the file that writing to p changes and whether it is
// written in place (not a regular file, or a link of /proc, which names
// an open file); links are followed. A folder is an error.
func Target(p string) (string, bool, error) {
	st, err := os.Stat(p)
	switch {
	case err == nil && st.IsDir():
		return "", false, fmt.Errorf("%s: is a directory", p)
	case err == nil && !st.Mode().IsRegular():
		return p, true, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", false, err
	}
	r, proc, err := resolve(p)
	if err != nil {
		return "", false, err
	}
	if st != nil && proc {
		return p, true, nil // /proc/self/fd/N, /dev/stdout: the open file itself
	}
	return r, false, nil
}

// Resolve follows the symbolic links of the last element of p, dangling
// or not, and returns the path they lead to.
func Resolve(p string) (string, error) {
	r, _, err := resolve(p)
	return r, err
}

// resolve is Resolve; proc reports a link of /proc on the way, whose
// target is an open file rather than a path.
func resolve(p string) (r string, proc bool, err error) {
	for range 40 {
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, proc, nil
		}
		if err != nil {
			return "", proc, err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			return p, proc, nil
		}
		if abs, err := filepath.Abs(p); err == nil && strings.HasPrefix(abs, "/proc/") {
			proc = true
		}
		t, err := os.Readlink(p)
		if err != nil {
			return "", proc, err
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		p = t
	}
	return "", proc, fmt.Errorf("%s: too many levels of symbolic links", p)
}

// Create opens p for writing. A new or regular file gets mode; it is
// written to a temporary file that Commit renames over it.
func Create(p string, mode fs.FileMode) (*File, error) {
	target, direct, err := Target(p)
	if err != nil {
		return nil, err
	}
	if direct {
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return nil, err
		}
		return &File{File: f, Path: target, direct: true}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(target), TempPrefix+filepath.Base(target)+".*")
	if err != nil {
		return nil, err
	}
	temps.add(f.Name())
	out := &File{File: f, Path: target}
	// CreateTemp makes it 0600 and the umask may narrow mode: set it.
	if err := f.Chmod(mode); err != nil {
		out.Abort()
		return nil, err
	}
	return out, nil
}

// Commit syncs the file and renames it over its target (and syncs the
// folder); a file written in place is closed. On failure the temporary
// file is removed and the target is as it was.
func (f *File) Commit() error {
	if f.closed {
		return os.ErrClosed
	}
	if f.direct {
		f.closed = true
		return f.File.Close()
	}
	err := f.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	f.closed = true
	if err == nil {
		err = os.Rename(f.Name(), f.Path)
	}
	if err != nil {
		os.Remove(f.Name())
		temps.remove(f.Name())
		return err
	}
	temps.remove(f.Name())
	return SyncDir(filepath.Dir(f.Path))
}

// Abort closes the file and removes the temporary file: the target is as
// it was (a file written in place keeps what was written). It does
// nothing after Commit.
func (f *File) Abort() {
	if f.closed {
		return
	}
	f.closed = true
	f.File.Close()
	if !f.direct {
		os.Remove(f.Name())
		temps.remove(f.Name())
	}
}

// Close is Abort: an output is kept only by Commit.
func (f *File) Close() error {
	f.Abort()
	return nil
}

// WriteFile writes p with fill, as Create and Commit do; when fill fails
// the target is as it was.
func WriteFile(p string, mode fs.FileMode, fill func(io.Writer) error) error {
	f, err := Create(p, mode)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// SyncDir syncs a folder, so that the names created or renamed in it last.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return syncDirError(err)
	}
	return nil
}

// The temporary files being written, for RemoveTemps.
var temps = tempSet{m: map[string]bool{}}

type tempSet struct {
	sync.Mutex
	m map[string]bool
}

func (s *tempSet) add(p string)    { s.Lock(); s.m[p] = true; s.Unlock() }
func (s *tempSet) remove(p string) { s.Lock(); delete(s.m, p); s.Unlock() }

// RemoveTemps removes the temporary files of the outputs being written:
// a program calls it before it dies of a signal.
func RemoveTemps() {
	temps.Lock()
	defer temps.Unlock()
	for p := range temps.m {
		os.Remove(p)
		delete(temps.m, p)
	}
}

// Real returns p absolute, its links followed as far as it exists (the
// part that does not exist yet is joined as it is).
func Real(p string) (string, error) {
	p, err := Resolve(p)
	if err != nil {
		return "", err
	}
	p, err = filepath.Abs(p)
	if err != nil {
		return "", err
	}
	var rest []string
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(append([]string{r}, rest...)...), nil
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(append([]string{p}, rest...)...), nil
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = parent
	}
}

// Within reports whether path p is dir or inside it, links followed.
func Within(p, dir string) bool {
	rp, err1 := Real(p)
	rd, err2 := Real(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(rd, rp)
	return err == nil && (rel == "." || rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}
