package transform

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/fileout"
)

// Checkpoint archives.
//
// WriteArchive writes a new archive: the old one's tar with the data of
// the rewritten images replaced and every other byte copied
// (dump.Archive.Rewrite), compressed as asked, through package fileout
// (a synced temporary file renamed over out; a device or FIFO written in
// place); on failure nothing is left at out.
//
// ApplyArchiveInPlace replaces an archive A the same way the images of a
// folder are replaced, with the archive as the one image: the new archive
// is written to the hidden temporary file T beside A (fileout.TempPrefix
// + A's name), synced and read back; then the journal
// (dump.ArchiveJournal: A's name + ".critq-transform.journal") is written:
// the commit point. Past it A is hard-linked to A.orig (A.orig.N when that
// exists; not with NoBackup) and T is renamed over A; last, the journal is
// removed. A is a whole archive at every moment (the old one, then the
// new); RecoverWith finishes a run from its journal, or removes T when no
// journal was written.
//
// The lock of an archive is flock(2) on the archive file. As the rename
// puts another file at A, the run locks T before it renames it and holds
// that lock to the end, and LockDump checks, once it holds a lock, that A
// is still the file it locked (else it locks A again): a writer that
// waited on the old archive never works on the new one without its lock.

// WriteArchive writes the archive a with the images of p in place of its
// own to out, compressed with c.
func WriteArchive(a *dump.Archive, out string, p *Plan, c dump.Compression) error {
	_, err := writeArchive(a, out, p, c)
	return err
}

// writeArchive is WriteArchive; it returns the SHA-256 of the bytes
// written.
func writeArchive(a *dump.Archive, out string, p *Plan, c dump.Compression) ([]byte, error) {
	if err := p.verify(); err != nil {
		return nil, err
	}
	repl := make(map[string][]byte, len(p.Images))
	for name, b := range p.Images {
		repl[a.MemberOf(name)] = b
	}
	mode := fs.FileMode(0o600)
	if st, err := os.Stat(a.Path()); err == nil {
		mode = st.Mode().Perm()
	}
	var sum hash.Hash = sha256.New()
	err := fileout.WriteFile(out, mode, func(w io.Writer) error {
		bw := bufio.NewWriterSize(io.MultiWriter(w, sum), 1<<16)
		cw, err := dump.Compress(bw, c)
		if err != nil {
			return err
		}
		if err := a.Rewrite(cw, repl); err != nil {
			return err
		}
		if err := cw.Close(); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return nil, err
	}
	return sum.Sum(nil), nil
}

// archiveTemp is where the new archive of an in-place run is written.
func archiveTemp(path string) string { return tempName(path) }

// ApplyArchiveInPlace replaces the archive a (opened from its path) with
// the one WriteArchive would write, in the same compression, keeping the
// old one as NAME.orig unless o.NoBackup. It holds o.Lock (or a lock it
// takes) to the end; the lock then holds the new archive.
func ApplyArchiveInPlace(a *dump.Archive, p *Plan, o InPlaceOptions) error {
	// A link stays a link: the archive it leads to is replaced.
	path, err := fileout.Resolve(a.Path())
	if err != nil {
		return err
	}
	lock := o.Lock
	if lock == nil {
		l, err := LockDump(path, DefaultLockWait, nil)
		if err != nil {
			return err
		}
		defer l.Unlock()
		lock = l
	}
	if st, err := Status(path); err != nil {
		return err
	} else if st == Interrupted {
		return fmt.Errorf("%s: %w", path, dump.ErrInterrupted)
	}
	tmp := archiveTemp(path)
	o.step("write " + filepath.Base(path))
	sum, err := writeArchive(a, tmp, p, a.Compression())
	if err != nil {
		return err
	}
	// Read it back: what is renamed into place must be what was written.
	if err := checkSum(tmp, sum); err != nil {
		os.Remove(tmp)
		return err
	}
	o.step("journal")
	backup := "none"
	if !o.NoBackup {
		backup = backupName(filepath.Dir(path), filepath.Base(path))
	}
	j := fmt.Sprintf("%s\narchive %s\nbackup %s\n", journalHead, filepath.Base(path), backup)
	if err := writeFileSync(dump.ArchiveJournal(path), 0o644, []byte(j)); err != nil {
		os.Remove(tmp)
		return err
	}
	return rollForwardArchive(path, lock, &o)
}

func checkSum(path string, want []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if !bytes.Equal(h.Sum(nil), want) {
		return fmt.Errorf("%s: read back differs from what was written", path)
	}
	return nil
}

// readArchiveJournal returns the backup name of the journal of the
// archive at path ("" for none).
func readArchiveJournal(path string) (string, error) {
	b, err := os.ReadFile(dump.ArchiveJournal(path))
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	jn := filepath.Base(dump.ArchiveJournal(path))
	if len(lines) != 3 || lines[0] != journalHead || lines[1] != "archive "+filepath.Base(path) || !strings.HasPrefix(lines[2], "backup ") {
		return "", fmt.Errorf("%s: unknown journal format", jn)
	}
	backup := strings.TrimPrefix(lines[2], "backup ")
	if backup == "none" {
		return "", nil
	}
	if !plainName(backup) {
		return "", fmt.Errorf("%s: bad backup name %q", jn, backup)
	}
	return backup, nil
}

// rollForwardArchive completes a run whose journal is written; each step
// can be repeated. lock, the lock of the archive, moves to the new one.
func rollForwardArchive(path string, lock *Lock, o *InPlaceOptions) error {
	backup, err := readArchiveJournal(path)
	if err != nil {
		return err
	}
	dir, tmp := filepath.Dir(path), archiveTemp(path)
	if _, err := os.Stat(tmp); err == nil {
		if backup != "" {
			o.step("backup " + filepath.Base(path))
			if _, err := os.Lstat(filepath.Join(dir, backup)); errors.Is(err, fs.ErrNotExist) {
				if err := os.Link(path, filepath.Join(dir, backup)); err != nil {
					return err
				}
			}
		}
		if err := lock.moveTo(tmp); err != nil {
			return err
		}
		o.step("rename " + filepath.Base(path))
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	lock.dropOld()
	o.step("finish")
	if err := os.Remove(dump.ArchiveJournal(path)); err != nil {
		return err
	}
	return syncDir(dir)
}

// archiveStatus is Status for an archive.
func archiveStatus(path string) (State, error) {
	path, err := fileout.Resolve(path)
	if err != nil {
		return Clean, err
	}
	if _, err := os.Lstat(dump.ArchiveJournal(path)); err == nil {
		return Interrupted, nil
	}
	if len(archiveLeftovers(path)) > 0 {
		return Leftovers, nil
	}
	return Clean, nil
}

// archiveLeftovers lists the temporary files of runs on the archive at
// path killed before their commit point: T, and the temporary files
// package fileout writes T and the journal through.
func archiveLeftovers(path string) []string {
	tmp := archiveTemp(path)
	var out []string
	if exists(tmp) {
		out = append(out, tmp)
	}
	for _, p := range []string{tmp, dump.ArchiveJournal(path)} {
		inner, _ := filepath.Glob(filepath.Join(filepath.Dir(p), fileout.TempPrefix+globEscape(filepath.Base(p))+".*"))
		out = append(out, inner...)
	}
	return out
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

// recoverArchive is RecoverWith for an archive.
func recoverArchive(path string, lock *Lock) (State, error) {
	path, err := fileout.Resolve(path)
	if err != nil {
		return Clean, err
	}
	st, err := archiveStatus(path)
	if err != nil {
		return st, err
	}
	switch st {
	case Interrupted:
		return st, rollForwardArchive(path, lock, &InPlaceOptions{})
	case Leftovers:
		for _, p := range archiveLeftovers(path) {
			if err := os.Remove(p); err != nil {
				return st, err
			}
		}
		return st, syncDir(filepath.Dir(path))
	}
	return st, nil
}
