package transform

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/fileout"
)

// Plan holds the new bytes of the images a transform changes, by file name.
// Every other file of the dump stays as it is.
type Plan struct {
	Images map[string][]byte
}

// names returns the changed file names, sorted.
func (p *Plan) names() []string {
	names := make([]string, 0, len(p.Images))
	for n := range p.Images {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// verify decodes every new image back.
func (p *Plan) verify() error {
	for _, name := range p.names() {
		r, err := codec.NewBytesReader(p.Images[name], codec.ReadOptions{Name: name})
		if err == nil {
			_, err = r.ReadAll()
		}
		if err != nil {
			return fmt.Errorf("new image does not read back: %w", err)
		}
	}
	return nil
}

// WriteOptions configure WriteDir.
type WriteOptions struct {
	// Link hard-links the images no rule touched instead of copying them.
	Link bool
}

// WriteDir writes a new dump in out: the images of p, and every other file
// of the dump in src copied byte for byte (or hard-linked). out must not
// exist or be empty. A "parent" link of an incremental dump is written so
// that it still reaches the parent from out. Files are written to temporary
// names, synced, and renamed; on failure nothing is left: a folder out it
// made is removed, an empty one it was given is emptied again.
func WriteDir(src, out string, p *Plan, o WriteOptions) error {
	if err := p.verify(); err != nil {
		return err
	}
	// A link names the folder to make: MkdirAll of a dangling link fails.
	out, err := fileout.Resolve(out)
	if err != nil {
		return err
	}
	if fileout.Within(out, src) {
		return fmt.Errorf("%s: the output is inside the dump %s", out, src)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for name := range p.Images {
		if _, err := os.Stat(filepath.Join(src, name)); err != nil {
			return fmt.Errorf("%s: not in the dump", name)
		}
	}
	made := false
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s: output directory is not empty", out)
	} else if errors.Is(err, fs.ErrNotExist) {
		made = true
	} else if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := writeDir(src, out, ents, p, o); err != nil {
		// Nothing is left behind: the folder made, or what was
		// written in the empty one.
		if made {
			os.RemoveAll(out)
		} else {
			for _, e := range ents {
				os.Remove(filepath.Join(out, e.Name()))
			}
		}
		return err
	}
	return nil
}

// writeDir writes the files of WriteDir into out.
func writeDir(src, out string, ents []fs.DirEntry, p *Plan, o WriteOptions) error {
	var err error
	for _, e := range ents {
		name := e.Name()
		srcPath, dstPath := filepath.Join(src, name), filepath.Join(out, name)
		switch {
		case p.Images[name] != nil:
			err = writeFileSync(dstPath, modeOf(srcPath), p.Images[name])
		case name == "parent":
			err = writeParentLink(src, out)
		case e.IsDir():
			continue // golden/, proc/ and the like are not part of the dump
		case o.Link:
			err = os.Link(srcPath, dstPath)
			if err != nil {
				err = copyFileSync(srcPath, dstPath)
			}
		default:
			err = copyFileSync(srcPath, dstPath)
		}
		if err != nil {
			return err
		}
	}
	return syncDir(out)
}

// writeParentLink makes out/parent reach the parent of the dump in src.
func writeParentLink(src, out string) error {
	target, err := parentTarget(src)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	outAbs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(outAbs, abs)
	if err != nil {
		rel = abs
	}
	return os.Symlink(rel, filepath.Join(out, "parent"))
}

// parentTarget returns the directory the parent link of src names.
func parentTarget(src string) (string, error) {
	p := filepath.Join(src, "parent")
	if t, err := os.Readlink(p); err == nil {
		if !filepath.IsAbs(t) {
			t = filepath.Join(src, t)
		}
		return t, nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	t := strings.TrimRight(string(b), "\n")
	if !filepath.IsAbs(t) {
		t = filepath.Join(src, t)
	}
	return t, nil
}

func writeFileSync(path string, mode fs.FileMode, data []byte) error {
	return writeAtomic(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func copyFileSync(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	return writeAtomic(dst, st.Mode().Perm(), func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// writeAtomic writes path through fill into a temporary file beside it,
// syncs it and renames it into place; on failure nothing is left behind.
func writeAtomic(path string, mode fs.FileMode, fill func(io.Writer) error) error {
	return fileout.WriteFile(path, mode, fill)
}

// modeOf returns the permissions of the file at path, or 0644 when it
// cannot be read: a rewritten image keeps the mode of the image it replaces.
func modeOf(path string) fs.FileMode {
	if st, err := os.Stat(path); err == nil {
		return st.Mode().Perm()
	}
	return 0o644
}

func syncDir(dir string) error { return fileout.SyncDir(dir) }

// tempName is where a new file is written before it is renamed: hidden, and
// claimed by no kind, so a reader of the dump never mistakes it for an image.
func tempName(path string) string {
	return filepath.Join(filepath.Dir(path), fileout.TempPrefix+filepath.Base(path))
}

// In-place rewrites.
//
// ApplyInPlace writes every new image beside the old one (a hidden temporary
// name), syncs it, and checks that it decodes; until then the dump is the old
// one. It then writes the journal (dump.JournalName) listing the images: the
// commit point. Past it, the old images are linked to NAME.orig (unless
// NoBackup) and each new image is renamed over the old; last, the journal is
// removed. Recover finishes an interrupted run from the journal, or, when no
// journal was written, removes the temporary files: a dump is always wholly
// old or wholly new after it, and dump.Open refuses a dump with a journal.

// InPlaceOptions configure ApplyInPlace.
type InPlaceOptions struct {
	// NoBackup drops the old images instead of keeping them as NAME.orig.
	NoBackup bool
	// Step, when set, is called before each step with its name; tests use
	// it to interrupt a run.
	Step func(step string)
	// Lock is the caller's lock of the dump (LockDump), taken before it
	// read the dump to plan the change; without it the run takes one,
	// waiting up to DefaultLockWait.
	Lock *Lock
}

func (o *InPlaceOptions) step(s string) {
	if o.Step != nil {
		o.Step(s)
	}
}

// ApplyInPlace rewrites the dump in dir with the images of p.
func ApplyInPlace(dir string, p *Plan, o InPlaceOptions) error {
	_, release, err := o.lockFor(dir)
	if err != nil {
		return err
	}
	defer release()
	if st, err := Status(dir); err != nil {
		return err
	} else if st == Interrupted {
		return fmt.Errorf("%s: %w", dir, dump.ErrInterrupted)
	}
	if err := p.verify(); err != nil {
		return err
	}
	names := p.names()
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%s: not in the dump", name)
		}
	}
	for _, name := range names {
		o.step("write " + name)
		if err := writeTemp(filepath.Join(dir, name), p.Images[name]); err != nil {
			removeTemps(dir, names)
			return err
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	o.step("journal")
	var j bytes.Buffer
	fmt.Fprintf(&j, "%s\nbackup %v\n", journalHead, !o.NoBackup)
	for _, name := range names {
		fmt.Fprintf(&j, "image %s %s\n", name, backupName(dir, name))
	}
	if err := writeFileSync(filepath.Join(dir, dump.JournalName), 0o644, j.Bytes()); err != nil {
		removeTemps(dir, names)
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return rollForward(dir, &o)
}

func writeTemp(path string, data []byte) error {
	tmp := tempName(path)
	err := writeAtomic(tmp, modeOf(path), func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	// Read it back: what is renamed into place must be what was planned.
	b, err := os.ReadFile(tmp)
	if err == nil && !bytes.Equal(b, data) {
		err = fmt.Errorf("%s: read back differs from what was written", tmp)
	}
	return err
}

// journalHead is the first line of every journal, a folder's or an
// archive's.
const journalHead = "critq transform journal v1"

// backupName is the name the backup of file name in dir gets: a backup
// never replaces the backup of an earlier run, so the first run's is
// NAME.orig, the next NAME.orig.1, ...
func backupName(dir, name string) string {
	backup := name + ".orig"
	for n := 1; exists(filepath.Join(dir, backup)); n++ {
		backup = fmt.Sprintf("%s.orig.%d", name, n)
	}
	return backup
}

// plainName reports whether a name read from a journal is a plain file
// name of the folder it is in (no path, not "." or "..").
func plainName(n string) bool {
	return n != "" && !strings.ContainsAny(n, "/\x00") && n != "." && n != ".."
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func removeTemps(dir string, names []string) {
	for _, name := range names {
		os.Remove(tempName(filepath.Join(dir, name)))
	}
}

type journal struct {
	backup  bool
	images  []string
	backups []string // the backup name of each image
}

func readJournal(dir string) (*journal, error) {
	f, err := os.Open(filepath.Join(dir, dump.JournalName))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	j := &journal{}
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		line := sc.Text()
		switch {
		case i == 0 && line != journalHead:
			return nil, fmt.Errorf("%s: unknown journal format", dump.JournalName)
		case line == "backup true":
			j.backup = true
		case strings.HasPrefix(line, "image "):
			name, backup, _ := strings.Cut(strings.TrimPrefix(line, "image "), " ")
			if backup == "" {
				backup = name + ".orig"
			}
			for _, n := range []string{name, backup} {
				if !plainName(n) {
					return nil, fmt.Errorf("%s: bad image name %q", dump.JournalName, n)
				}
			}
			j.images = append(j.images, name)
			j.backups = append(j.backups, backup)
		}
	}
	return j, sc.Err()
}

// rollForward completes a run whose journal is written. Each step can be
// repeated, so an interrupted roll-forward can be run again.
func rollForward(dir string, o *InPlaceOptions) error {
	j, err := readJournal(dir)
	if err != nil {
		return err
	}
	for i, name := range j.images {
		path := filepath.Join(dir, name)
		tmp := tempName(path)
		if _, err := os.Stat(tmp); err != nil {
			continue // already renamed
		}
		if j.backup {
			o.step("backup " + name)
			backup := filepath.Join(dir, j.backups[i])
			if _, err := os.Lstat(backup); errors.Is(err, fs.ErrNotExist) {
				if err := os.Link(path, backup); err != nil {
					return err
				}
			}
		}
		o.step("rename " + name)
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	o.step("finish")
	if err := os.Remove(filepath.Join(dir, dump.JournalName)); err != nil {
		return err
	}
	return syncDir(dir)
}

// State is the state of a dump with respect to in-place transforms.
type State int

const (
	Clean       State = iota // no transform under way
	Interrupted              // a journal is present: run Recover
	Leftovers                // temporary files of a run killed before its commit point
)

func (s State) String() string {
	return [...]string{"clean", "interrupted", "leftovers"}[s]
}

// Status reports whether a transform of the dump in dir (or of the
// checkpoint archive at dir) was interrupted.
func Status(dir string) (State, error) {
	if isArchive(dir) {
		return archiveStatus(dir)
	}
	if _, err := os.Stat(filepath.Join(dir, dump.JournalName)); err == nil {
		return Interrupted, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return Clean, err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), fileout.TempPrefix) {
			return Leftovers, nil
		}
	}
	return Clean, nil
}

// isArchive reports whether path is a file (a checkpoint archive) rather
// than a dump folder.
func isArchive(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// Recover finishes an interrupted in-place transform (the journal was
// written: the new dump) or removes what a run killed before its commit
// point left (the old dump). It returns the state it found.
func Recover(dir string) (State, error) { return RecoverWith(dir, InPlaceOptions{}) }

// RecoverWith is Recover under o.Lock (or a lock it takes).
func RecoverWith(dir string, o InPlaceOptions) (State, error) {
	lock, release, err := o.lockFor(dir)
	if err != nil {
		return Clean, err
	}
	defer release()
	if isArchive(dir) {
		return recoverArchive(dir, lock)
	}
	st, err := Status(dir)
	if err != nil {
		return st, err
	}
	switch st {
	case Interrupted:
		return st, rollForward(dir, &InPlaceOptions{})
	case Leftovers:
		ents, err := os.ReadDir(dir)
		if err != nil {
			return st, err
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), fileout.TempPrefix) {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
					return st, err
				}
			}
		}
		return st, syncDir(dir)
	}
	return st, nil
}
