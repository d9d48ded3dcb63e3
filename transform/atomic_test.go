package transform_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testkill"
	"github.com/critq/critq/proto/images"
	"github.com/critq/critq/transform"
)

// copyDump copies the images of a testdata dump into a new temporary folder.
func copyDump(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("../testdata/dumps", name)
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// snapshot returns the contents of every file of dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// renamePlan changes the pid of pstree's first entry and the comm of the
// task's core: two images, so that a half-done run would be visible.
func renamePlan(t testing.TB, dir string) *transform.Plan {
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := &transform.Plan{Images: map[string][]byte{}}
	for _, name := range []string{"pstree.img", "fs-19635.img"} {
		f := d.File(name)
		img, err := f.Image()
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Entries[0].Message()
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *images.PstreeEntry:
			m.Sid = proto.Uint32(4242)
		case *images.FsEntry:
			m.Umask = proto.Uint32(0o077)
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		p.Images[name], err = transform.RewriteImage(name, img, map[int]*transform.Change{0: {Payload: b}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestWriteDir(t *testing.T) {
	src := copyDump(t, "sleep-plain")
	before := snapshot(t, src)
	p := renamePlan(t, src)
	out := filepath.Join(t.TempDir(), "out")
	if err := transform.WriteDir(src, out, p, transform.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(t, src); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Error("WriteDir changed the source dump")
	}
	after := snapshot(t, out)
	for name, old := range before {
		if want, changed := p.Images[name]; changed {
			if after[name] != string(want) {
				t.Errorf("%s: not the new image", name)
			}
		} else if after[name] != old {
			t.Errorf("%s: not copied byte for byte", name)
		}
	}
	if err := transform.WriteDir(src, out, p, transform.WriteOptions{}); err == nil {
		t.Error("WriteDir into a non-empty directory succeeded")
	}
}

// TestRewriteKeepsBytes drops one entry of a multi-entry image: every other
// entry must be copied as it was.
func TestRewriteKeepsBytes(t *testing.T) {
	d, err := dump.Open("../testdata/dumps/pipes-fifo")
	if err != nil {
		t.Fatal(err)
	}
	img, err := d.File("pipes-data.img").Image()
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Entries) < 2 {
		t.Fatalf("pipes-data.img has %d entries", len(img.Entries))
	}
	b, err := transform.RewriteImage("pipes-data.img", img, map[int]*transform.Change{0: {Drop: true}})
	if err != nil {
		t.Fatal(err)
	}
	e0 := img.Entries[0]
	orig, _ := os.ReadFile("../testdata/dumps/pipes-fifo/pipes-data.img")
	want := append(append([]byte(nil), orig[:e0.Offset]...), orig[e0.Offset+e0.Len():]...)
	if !bytes.Equal(b, want) {
		t.Error("dropping entry 0 changed other bytes")
	}
	// An extra that does not match its entry is refused.
	if _, err := transform.RewriteImage("pipes-data.img", img, map[int]*transform.Change{0: {Payload: e0.Payload, Extra: []byte("x")}}); err == nil {
		t.Error("a mismatched extra was accepted")
	}
}

// The kill test: a child process runs ApplyInPlace and kills itself with
// SIGKILL before step N. Afterwards the dump must say it is interrupted (or
// be clean), and Recover must leave it wholly old or wholly new.
func TestInPlaceKilled(t *testing.T) {
	if os.Getenv("CRITQ_KILL_AT") != "" {
		return // in the child, TestKillChild does the work
	}
	for _, backup := range []bool{true, false} {
		for n := 0; ; n++ {
			dir := copyDump(t, "sleep-plain")
			old := snapshot(t, dir)
			p := renamePlan(t, dir)
			killed := testkill.Run(t, "TestKillChild", "CRITQ_KILL_AT="+strconv.Itoa(n), "CRITQ_KILL_DIR="+dir, "CRITQ_KILL_BACKUP="+strconv.FormatBool(backup))
			st, err := transform.Status(dir)
			if err != nil {
				t.Fatal(err)
			}
			if st == transform.Interrupted {
				if _, err := dump.Open(dir); !errors.Is(err, dump.ErrInterrupted) {
					t.Errorf("step %d: dump.Open on an interrupted dump: %v", n, err)
				}
			}
			if _, err := transform.Recover(dir); err != nil {
				t.Fatalf("step %d: Recover: %v", n, err)
			}
			got := snapshot(t, dir)
			isOld, isNew := true, true
			for name, b := range old {
				if got[name] != b {
					isOld = false
				}
				want := b
				if nb, ok := p.Images[name]; ok {
					want = string(nb)
				}
				if got[name] != want {
					isNew = false
				}
				if backup && isNew && p.Images[name] != nil && got[name+".orig"] != b {
					t.Errorf("step %d: %s.orig is not the old image", n, name)
				}
			}
			if !isOld && !isNew {
				t.Fatalf("step %d (killed %v): the dump is a mix of old and new", n, killed)
			}
			if st, _ := transform.Status(dir); st != transform.Clean {
				t.Fatalf("step %d: after Recover the state is %v", n, st)
			}
			if !killed {
				if !isNew {
					t.Fatalf("a complete run left the old dump")
				}
				t.Logf("backup %v: killed at each of %d steps", backup, n)
				break
			}
		}
	}
}

func TestKillChild(t *testing.T) {
	at := os.Getenv("CRITQ_KILL_AT")
	if at == "" {
		t.Skip("run by TestInPlaceKilled")
	}
	n, _ := strconv.Atoi(at)
	dir := os.Getenv("CRITQ_KILL_DIR")
	p := renamePlan(t, dir)
	err := transform.ApplyInPlace(dir, p, transform.InPlaceOptions{
		NoBackup: os.Getenv("CRITQ_KILL_BACKUP") == "false",
		Step:     testkill.At(n),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestInPlaceTwice: a second in-place run keeps the first run's backup and
// backs up the intermediate images as NAME.orig.1; rewritten images keep
// their file mode.
func TestInPlaceTwice(t *testing.T) {
	dir := copyDump(t, "sleep-plain")
	if err := os.Chmod(filepath.Join(dir, "pstree.img"), 0o600); err != nil {
		t.Fatal(err)
	}
	orig := snapshot(t, dir)
	p := renamePlan(t, dir)
	if err := transform.ApplyInPlace(dir, p, transform.InPlaceOptions{}); err != nil {
		t.Fatal(err)
	}
	first := snapshot(t, dir)
	// The second run changes the same images again.
	p2 := &transform.Plan{Images: map[string][]byte{}}
	for name, b := range p.Images {
		p2.Images[name] = b
	}
	p2.Images["pstree.img"] = []byte(orig["pstree.img"])
	if err := transform.ApplyInPlace(dir, p2, transform.InPlaceOptions{}); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, dir)
	if got["pstree.img.orig"] != orig["pstree.img"] {
		t.Error("pstree.img.orig is no longer the original image")
	}
	if got["pstree.img.orig.1"] != first["pstree.img"] {
		t.Error("pstree.img.orig.1 is not the image of the first run")
	}
	st, err := os.Stat(filepath.Join(dir, "pstree.img"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("pstree.img has mode %v after two rewrites, want 0600", st.Mode().Perm())
	}
}
