package container

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/panics"
)

// DefaultDir is where the kubelet writes checkpoint archives.
const DefaultDir = "/var/lib/kubelet/checkpoints"

// Row is one checkpoint of a list. The JSON field names are stable.
type Row struct {
	Path         string     `json:"path"`
	Kind         string     `json:"kind"`
	Container    string     `json:"container,omitempty"`
	Pod          string     `json:"pod,omitempty"`
	Namespace    string     `json:"namespace,omitempty"`
	Engine       string     `json:"engine,omitempty"`
	Checkpointed *time.Time `json:"checkpointed,omitempty"`
	Size         int64      `json:"size"`
	Processes    int        `json:"processes"`
	Memory       int64      `json:"memory_size"`

	read int64 // bytes read from the archive file (instrumentation)
}

// RowOf is the list row of a checkpoint.
func RowOf(c *Checkpoint) Row {
	r := Row{Path: c.Path, Kind: c.Kind, Container: c.Name, Pod: c.Pod, Namespace: c.Namespace, Engine: c.Engine,
		Size: c.Sizes.Total, Processes: c.Processes, Memory: c.Sizes.Pages, read: c.read}
	if t := c.Time(); !t.IsZero() {
		r.Checkpointed = &t
	}
	return r
}

// ListError is a path a list found but could not read.
type ListError struct {
	Path string
	Err  error
}

func (e *ListError) Error() string { return e.Err.Error() }
func (e *ListError) Unwrap() error { return e.Err }

// Find finds the checkpoints under dirs, recursively: archives (symlinks to
// archives included), checkpoint folders and dump folders, whose subfolders
// are not searched. Symlinks to folders are not followed. Each checkpoint
// is read as Open reads it, without its rootfs-diff.tar listing (so only
// the small members of an archive are read), several at once. The rows are
// sorted by time, then path; the errors name the paths that could not be
// read, the unreadable folders included.
func Find(dirs []string) ([]Row, []error) {
	var paths []string
	var errs []error
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, &ListError{p, err})
				if e != nil && e.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if e.IsDir() {
				if isCheckpointFolder(p) {
					paths = append(paths, p)
					if p == d {
						return nil // a checkpoint named itself: nothing under it
					}
					return fs.SkipDir
				}
				return nil
			}
			if e.Type()&fs.ModeSymlink != 0 {
				st, err := os.Stat(p)
				if err != nil || !st.Mode().IsRegular() {
					return nil
				}
			} else if !e.Type().IsRegular() {
				return nil
			}
			if dump.IsArchive(p) {
				paths = append(paths, p)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, &ListError{d, err})
		}
	}
	rows := make([]Row, len(paths))
	ok := make([]bool, len(paths))
	perr := make([]error, len(paths))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(runtime.GOMAXPROCS(0), 8, len(paths)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var c *Checkpoint
				err := panics.Call(func() (err error) {
					c, err = Open(paths[i], Options{})
					return err
				})
				if err != nil {
					perr[i] = &ListError{paths[i], err}
					continue
				}
				rows[i], ok[i] = RowOf(c), true
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	out := rows[:0]
	for i := range rows {
		if ok[i] {
			out = append(out, rows[i])
		} else {
			errs = append(errs, perr[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		ti, tj := out[i].time(), out[j].time()
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return out[i].Path < out[j].Path
	})
	return out, errs
}

func (r Row) time() time.Time {
	if r.Checkpointed == nil {
		return time.Time{}
	}
	return *r.Checkpointed
}

// isCheckpointFolder reports whether folder p is a dump folder or an
// unpacked checkpoint archive.
func isCheckpointFolder(p string) bool {
	if _, err := os.Stat(filepath.Join(p, "inventory.img")); err == nil {
		return true
	}
	st, err := os.Stat(filepath.Join(p, "checkpoint"))
	if err != nil || !st.IsDir() {
		return false
	}
	for _, f := range []string{"config.dump", "spec.dump"} {
		if _, err := os.Stat(filepath.Join(p, f)); err == nil {
			return true
		}
	}
	return false
}
