package transform_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/transform"
)

// gzArchive packs the testdata dump name as a gzip checkpoint archive in
// a new folder and returns its path.
func gzArchive(t *testing.T, name string) string {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := dump.Compress(&buf, dump.Gzip)
	if err := dump.WriteArchive(zw, os.DirFS(filepath.Join("../testdata/dumps", name)), map[string][]byte{"config.dump": []byte("{}")}, "MANIFEST.txt"); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	p := filepath.Join(t.TempDir(), "ck.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func openArchive(t *testing.T, p string) *dump.Archive {
	t.Helper()
	a, err := dump.OpenArchive(p, dump.ArchiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// listing names the files of a folder.
func listing(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}

// TestWriteArchiveFails: a write that fails half-way (an image the
// archive lacks is found at the end of the pass) leaves nothing: no
// output, no temporary file.
func TestWriteArchiveFails(t *testing.T) {
	p := gzArchive(t, "sleep-plain")
	a := openArchive(t, p)
	plan := renamePlan(t, p)
	plan.Images["pstree-2.img"] = plan.Images["pstree.img"]
	out := filepath.Join(t.TempDir(), "out.tar.gz")
	err := transform.WriteArchive(a, out, plan, dump.Zstd)
	if err == nil || !strings.Contains(err.Error(), "no member checkpoint/pstree-2.img") {
		t.Errorf("WriteArchive with an image the archive lacks: %v", err)
	}
	if got := listing(t, filepath.Dir(out)); got != "" {
		t.Errorf("a failed WriteArchive left %s", got)
	}
	// The same without the bad image writes a zstd archive with the
	// new images.
	delete(plan.Images, "pstree-2.img")
	if err := transform.WriteArchive(a, out, plan, dump.Zstd); err != nil {
		t.Fatal(err)
	}
	b := openArchive(t, out)
	if b.Compression() != dump.Zstd {
		t.Errorf("written as %v", b.Compression())
	}
	for name, want := range plan.Images {
		if got, err := b.ReadFile(b.MemberOf(name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s in the new archive: %v", name, err)
		}
	}
}

// TestArchiveInPlaceSteps stops an in-place run on an archive at each of
// its steps (a panic, in process; cli's TestTransformArchiveKilled kills
// a real process): the archive is whole, old or new, at every step, and
// after Recover it is old (no journal was written) or new (it was), with
// its backup, and nothing else is left beside it.
func TestArchiveInPlaceSteps(t *testing.T) {
	base := gzArchive(t, "sleep-plain")
	old, _ := os.ReadFile(base)
	var steps []string
	full := func() []byte {
		p := filepath.Join(t.TempDir(), "ck.tar.gz")
		os.WriteFile(p, old, 0o600)
		if err := transform.ApplyArchiveInPlace(openArchive(t, p), renamePlan(t, p), transform.InPlaceOptions{Step: func(s string) { steps = append(steps, s) }}); err != nil {
			t.Fatal(err)
		}
		if got := listing(t, filepath.Dir(p)); got != "ck.tar.gz ck.tar.gz.orig" {
			t.Errorf("after a run: %s", got)
		}
		b, _ := os.ReadFile(p)
		return b
	}()
	if want := "write ck.tar.gz,journal,backup ck.tar.gz,rename ck.tar.gz,finish"; strings.Join(steps, ",") != want {
		t.Errorf("steps %q, want %s", steps, want)
	}
	for n := range steps {
		p := filepath.Join(t.TempDir(), "ck.tar.gz")
		os.WriteFile(p, old, 0o600)
		func() {
			defer func() { _ = recover() }()
			i := 0
			transform.ApplyArchiveInPlace(openArchive(t, p), renamePlan(t, p), transform.InPlaceOptions{Step: func(string) {
				if i == n {
					panic("stop")
				}
				i++
			}})
		}()
		now, _ := os.ReadFile(p)
		if !bytes.Equal(now, old) && !bytes.Equal(now, full) {
			t.Fatalf("stopped at %s: the archive is neither old nor new", steps[n])
		}
		st, err := transform.Status(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dump.OpenArchive(p, dump.ArchiveOptions{}); (st == transform.Interrupted) != errors.Is(err, dump.ErrInterrupted) {
			t.Errorf("stopped at %s (%v): OpenArchive: %v", steps[n], st, err)
		}
		if _, err := transform.Recover(p); err != nil {
			t.Fatal(err)
		}
		now, _ = os.ReadFile(p)
		orig, _ := os.ReadFile(p + ".orig")
		switch {
		case st == transform.Interrupted && (!bytes.Equal(now, full) || !bytes.Equal(orig, old)):
			t.Errorf("stopped at %s past the commit point: after Recover the archive is not the new one with its backup", steps[n])
		case st != transform.Interrupted && !bytes.Equal(now, old):
			t.Errorf("stopped at %s before the commit point: after Recover the archive is not the old one", steps[n])
		}
		if got, want := listing(t, filepath.Dir(p)), map[bool]string{true: "ck.tar.gz ck.tar.gz.orig", false: "ck.tar.gz"}[st == transform.Interrupted]; got != want {
			t.Errorf("stopped at %s: after Recover the folder holds %s, want %s", steps[n], got, want)
		}
	}
}

// TestWriteDirLeavesNothing: a WriteDir that fails half-way (a file of
// the dump cannot be read) removes the folder it made, and empties the
// empty folder it was given.
func TestWriteDirLeavesNothing(t *testing.T) {
	src := copyDump(t, "sleep-plain")
	if err := os.Symlink("nowhere", filepath.Join(src, "zz-dangling")); err != nil {
		t.Fatal(err)
	}
	p := renamePlan(t, src)
	parent := t.TempDir()
	if err := transform.WriteDir(src, filepath.Join(parent, "out"), p, transform.WriteOptions{}); err == nil {
		t.Fatal("WriteDir copied a dangling link")
	}
	if got := listing(t, parent); got != "" {
		t.Errorf("a failed WriteDir left %s", got)
	}
	if err := transform.WriteDir(src, parent, p, transform.WriteOptions{}); err == nil {
		t.Fatal("WriteDir copied a dangling link")
	}
	if got := listing(t, parent); got != "" {
		t.Errorf("a failed WriteDir into an empty folder left %s", got)
	}
}

// TestArchiveInPlaceThroughLink: an archive named by a symbolic link is
// replaced where it is, with its backup beside it; the link stays.
func TestArchiveInPlaceThroughLink(t *testing.T) {
	target := gzArchive(t, "sleep-plain")
	old, _ := os.ReadFile(target)
	link := filepath.Join(t.TempDir(), "link.tar.gz")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := transform.ApplyArchiveInPlace(openArchive(t, link), renamePlan(t, link), transform.InPlaceOptions{}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link is no longer a link: %v", err)
	}
	if b, _ := os.ReadFile(target + ".orig"); !bytes.Equal(b, old) {
		t.Error("no backup of the old archive beside it")
	}
	if b, _ := os.ReadFile(link); bytes.Equal(b, old) {
		t.Error("the archive was not replaced")
	}
	if got := listing(t, filepath.Dir(link)); got != "link.tar.gz" {
		t.Errorf("beside the link: %s", got)
	}
}

// TestArchiveLockFollows: a writer waiting for the lock of an archive
// that an in-place run replaces ends up holding the lock of the new
// archive, not of the old file the run renamed away: while it holds it,
// nobody else takes it.
func TestArchiveLockFollows(t *testing.T) {
	p := gzArchive(t, "sleep-plain")
	l, err := transform.LockDump(p, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *transform.Lock)
	go func() {
		w, err := transform.LockDump(p, 10*time.Second, nil)
		if err != nil {
			t.Error(err)
		}
		got <- w
	}()
	time.Sleep(50 * time.Millisecond) // the waiter has opened the old archive
	// Between locking the new file and renaming it, the old one is
	// still locked (a writer that got it then would read the old archive).
	var atRename error
	step := func(s string) {
		if strings.HasPrefix(s, "rename") {
			if w, err := transform.LockDump(p, 0, nil); err == nil {
				w.Unlock()
			} else {
				atRename = err
			}
		}
	}
	if err := transform.ApplyArchiveInPlace(openArchive(t, p), renamePlan(t, p), transform.InPlaceOptions{Lock: l, NoBackup: true, Step: step}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(atRename, transform.ErrLocked) {
		t.Errorf("the old archive was not locked until the rename: %v", atRename)
	}
	if _, err := transform.LockDump(p, 0, nil); !errors.Is(err, transform.ErrLocked) {
		t.Errorf("the new archive is not locked during the run's end: %v", err)
	}
	l.Unlock()
	w := <-got
	if w == nil {
		t.FailNow()
	}
	if _, err := transform.LockDump(p, 0, nil); !errors.Is(err, transform.ErrLocked) {
		t.Errorf("the waiter does not hold the lock of the new archive: %v", err)
	}
	w.Unlock()
}

// TestArchiveLeftovers: the temporary files a run killed before its
// commit point leaves (the new archive, and the temporary files package
// fileout writes it and the journal through) make the archive's state
// Leftovers, and Recover removes them all and only them.
func TestArchiveLeftovers(t *testing.T) {
	p := gzArchive(t, "sleep-plain")
	dir := filepath.Dir(p)
	others := []string{".critq-new.ck.tar", "ck.tar.gz.orig", ".critq-new.x.ck.tar.gz"}
	for _, n := range append([]string{".critq-new.ck.tar.gz", ".critq-new..critq-new.ck.tar.gz.123", ".critq-new.ck.tar.gz.critq-transform.journal.456"}, others...) {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := transform.Status(p); st != transform.Leftovers || err != nil {
		t.Errorf("Status = %v, %v", st, err)
	}
	if st, err := transform.Recover(p); st != transform.Leftovers || err != nil {
		t.Errorf("Recover = %v, %v", st, err)
	}
	if got, want := listing(t, dir), ".critq-new.ck.tar .critq-new.x.ck.tar.gz ck.tar.gz ck.tar.gz.orig"; got != want {
		t.Errorf("after Recover: %s, want %s", got, want)
	}
}
