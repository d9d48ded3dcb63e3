package dump_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/explore"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/mem"
)

// writeArchive packs dump folder dir as a container checkpoint archive:
// its images under checkpoint/, stats-dump at the root, config.dump and
// spec.dump beside them; compression "", "gz" or "zst".
func writeArchive(t testing.TB, dir, compression string) string {
	t.Helper()
	var buf bytes.Buffer
	w, closer := compress(t, &buf, compression)
	root := map[string][]byte{"config.dump": []byte(`{"id":"c0ffee"}`), "spec.dump": []byte(`{"ociVersion":"1.0.0"}`),
		"rootfs-diff.tar": []byte("not unpacked")}
	if err := dump.WriteArchive(w, os.DirFS(dir), root, "MANIFEST.txt"); err != nil {
		t.Fatal(err)
	}
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "checkpoint.tar."+compression)
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// compress returns a writer that compresses to w: "gz", "zst", or "" for
// none.
func compress(t testing.TB, w io.Writer, compression string) (io.Writer, io.Closer) {
	switch compression {
	case "gz":
		zw := gzip.NewWriter(w)
		return zw, zw
	case "zst":
		zw, err := zstd.NewWriter(w)
		if err != nil {
			t.Fatal(err)
		}
		return zw, zw
	}
	return w, nopCloser{}
}

// views renders the explore views of a dump as text.
func views(t *testing.T, d *dump.Dump) string {
	m := mem.Open(d)
	defer m.Close()
	e := explore.New(d, m)
	var b bytes.Buffer
	for _, get := range []func() (explore.View, error){
		func() (explore.View, error) { return e.XPs() }, func() (explore.View, error) { return e.XFds() },
		func() (explore.View, error) { return e.XMems() }, func() (explore.View, error) { return e.XRss() },
		func() (explore.View, error) { return e.Ps() }, func() (explore.View, error) { return e.Maps(0) },
		func() (explore.View, error) { return e.Fds(0) }, func() (explore.View, error) { return e.Sockets() },
	} {
		v, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Text(&b); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := m.Search(mem.Literal([]byte("HOME=")), mem.SearchOptions{}, func(h mem.Match) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	b.WriteString(strings.Repeat("match\n", n))
	return b.String()
}

func TestArchiveViews(t *testing.T) {
	dirs := []string{"../testdata/dumps/sleep-plain", "../testdata/dumps/unix-sockets"}
	if _, err := os.Stat("../../shared/corpus/proc-tree"); err == nil {
		dirs = append(dirs, "../../shared/corpus/proc-tree", "../../shared/corpus/fds-zoo")
	}
	for _, dir := range dirs {
		folder, err := dump.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		want := views(t, folder)
		for _, comp := range []string{"", "gz", "zst"} {
			t.Run(filepath.Base(dir)+"/"+comp, func(t *testing.T) {
				p := writeArchive(t, dir, comp)
				d, err := dump.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				if d.File("stats-dump") == nil {
					t.Error("stats-dump of the archive root is not in the dump")
				}
				if got := views(t, d); got != want {
					t.Errorf("views of %s differ from the folder's", p)
				}
				a, err := dump.OpenArchive(p, dump.ArchiveOptions{SpoolPages: true})
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				if b, err := a.ReadFile("config.dump"); err != nil || string(b) != `{"id":"c0ffee"}` {
					t.Errorf("config.dump: %q, %v", b, err)
				}
				if _, err := a.ReadFile("rootfs-diff.tar"); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("rootfs-diff.tar was kept: %v", err)
				}
			})
		}
	}
}

func TestArchiveRefusesEscapes(t *testing.T) {
	for _, h := range []*tar.Header{
		{Name: "../evil", Typeflag: tar.TypeReg},
		{Name: "/etc/passwd", Typeflag: tar.TypeReg},
		{Name: "checkpoint/../../x", Typeflag: tar.TypeReg},
		{Name: "../core-1.img", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "checkpoint/", Typeflag: tar.TypeDir, Mode: 0o700})
		h.Mode = 0o600
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Close()
		p := filepath.Join(t.TempDir(), "a.tar")
		os.WriteFile(p, buf.Bytes(), 0o600)
		if a, err := dump.OpenArchive(p, dump.ArchiveOptions{}); err == nil {
			a.Close()
			t.Errorf("member %q (%c) accepted", h.Name, h.Typeflag)
		}
	}
}

// FuzzArchive opens arbitrary archives: no panic, and what opens can be
// walked and read. The archive is read from memory: a file and a folder
// per input made each run cost milliseconds of file system work, and
// coverage-guided fuzzing crawled at a few inputs a second.
func FuzzArchive(f *testing.F) {
	seed := writeArchive(f, "../testdata/dumps/sleep-plain", "")
	b, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[:3072]) // config.dump, rootfs-diff.tar, spec.dump, checkpoint/ and the first image
	for _, comp := range []string{"gz", "zst"} {
		var buf bytes.Buffer
		w, closer := compress(f, &buf, comp)
		w.Write(b[:3072])
		closer.Close()
		f.Add(buf.Bytes())
	}
	tmp := f.TempDir() // for pages spooled by compressed inputs
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := dump.NewArchive(bytes.NewReader(data), int64(len(data)), "fuzz", dump.ArchiveOptions{MaxMeta: 1 << 20, TempDir: tmp})
		if err != nil {
			return
		}
		defer a.Close()
		fs.WalkDir(a, ".", func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				a.ReadFile(path)
			}
			return nil
		})
		if d, err := a.Dump(); err == nil {
			for _, f := range d.Files() {
				f.Image()
			}
		}
	})
}

// TestOpenAny opens what a user may name as a dump: a folder, archives of
// every compression, and files that are neither.
func TestOpenAny(t *testing.T) {
	dir := "../testdata/dumps/sleep-plain"
	tmp := t.TempDir()
	garbage := filepath.Join(tmp, "garbage.tar.gz")
	if err := os.WriteFile(garbage, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(tmp, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		err  error
	}{
		{dir, nil},
		{writeArchive(t, dir, ""), nil},
		{writeArchive(t, dir, "gz"), nil},
		{writeArchive(t, dir, "zst"), nil},
		{garbage, dump.ErrNotArchive},
		{empty, dump.ErrNotArchive},
	} {
		d, err := dump.OpenAny(c.path, dump.ArchiveOptions{SpoolPages: true, TempDir: tmp})
		if c.err != nil {
			if !errors.Is(err, c.err) || err.Error() != c.path+": "+c.err.Error() {
				t.Errorf("OpenAny(%s): %v, wanted %v", c.path, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("OpenAny(%s): %v", c.path, err)
		}
		if d.File("pstree.img") == nil || d.FileFor("PAGES", 1) == nil {
			t.Errorf("OpenAny(%s): no pstree.img or pages-1.img", c.path)
		}
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "critq-archive-*")); len(left) != 0 {
		t.Errorf("spooled pages left after Close: %v", left)
	}
}

// TestArchiveVisit: Visit sees every member of the tar once, in order,
// with the bytes of the regular members the archive skips (and nil for
// those it keeps, which ReadFile still serves); its error is
// OpenArchive's.
func TestArchiveVisit(t *testing.T) {
	for _, comp := range []string{"", "gz", "zst"} {
		t.Run(comp, func(t *testing.T) {
			p := writeArchive(t, "../testdata/dumps/sleep-plain", comp)
			out, err := exec.Command("tar", "-tf", p).Output() // GNU tar, the oracle of the member order
			if err != nil {
				t.Skipf("tar -tf: %v", err)
			}
			var want []string
			for _, n := range strings.Fields(string(out)) {
				want = append(want, strings.TrimSuffix(n, "/"))
			}
			var got []string
			var rootfs []byte
			a, err := dump.OpenArchive(p, dump.ArchiveOptions{Visit: func(name string, h *tar.Header, data io.Reader) error {
				got = append(got, name)
				kept := name == "checkpoint" || strings.HasPrefix(name, "checkpoint/") || name == "config.dump" || name == "spec.dump" || name == "stats-dump"
				if kept != (data == nil) {
					t.Errorf("%s: data %v", name, data)
				}
				if name == "rootfs-diff.tar" {
					var err error
					rootfs, err = io.ReadAll(data)
					return err
				}
				return nil
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("visited %v, the tar holds %v", got, want)
			}
			if string(rootfs) != "not unpacked" {
				t.Errorf("rootfs-diff.tar: %q", rootfs)
			}
			if b, err := a.ReadFile("checkpoint/pstree.img"); err != nil || len(b) == 0 {
				t.Errorf("pstree.img: %d bytes, %v", len(b), err)
			}
			stop := errors.New("stop here")
			_, err = dump.OpenArchive(p, dump.ArchiveOptions{Visit: func(string, *tar.Header, io.Reader) error { return stop }})
			if !errors.Is(err, stop) {
				t.Errorf("error of Visit: OpenArchive returned %v", err)
			}
		})
	}
}

// TestSymlinkImageNotRead: an image file that is a symbolic link (in an
// archive, a symbolic or hard link member) is never followed: the dump
// lists it as not read, by name, and has no such image; the parent link
// of a pre-dump chain and links named like no image are not listed.
func TestSymlinkImageNotRead(t *testing.T) {
	src := "../testdata/dumps/sleep-plain"
	dir := t.TempDir()
	testcorpus.CopyFiles(t, src, dir)
	os.Remove(filepath.Join(dir, "core-19635.img"))
	os.Remove(filepath.Join(dir, "pages-1.img"))
	abs, _ := filepath.Abs(filepath.Join(src, "core-19635.img"))
	for link, target := range map[string]string{"core-19635.img": abs, "pages-1.img": "/dev/zero", "parent": "..", "notes.txt": "/etc/passwd"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"core-19635.img: a symbolic link, not read", "pages-1.img: a symbolic link, not read"}
	if got := d.NotRead(); !slices.Equal(got, want) {
		t.Errorf("folder: NotRead() = %q, wanted %q", got, want)
	}
	if d.File("core-19635.img") != nil || d.FileFor("PAGES", 1) != nil || d.NotReadWhy("core-19635.img") != "a symbolic link" {
		t.Errorf("folder: a link is a file of the dump")
	}

	// An archive with the core a symbolic link and the pages a hard link.
	img, err := os.ReadFile(filepath.Join(src, "pstree.img"))
	if err != nil {
		t.Fatal(err)
	}
	for _, comp := range []string{"", "gz"} {
		var buf bytes.Buffer
		w, closer := compress(t, &buf, comp)
		tw := tar.NewWriter(w)
		for _, h := range []*tar.Header{
			{Name: "checkpoint/", Typeflag: tar.TypeDir, Mode: 0o700},
			{Name: "checkpoint/pstree.img", Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(img))},
			{Name: "checkpoint/core-19635.img", Typeflag: tar.TypeSymlink, Linkname: "/proc/kcore", Mode: 0o777},
			{Name: "checkpoint/pages-1.img", Typeflag: tar.TypeLink, Linkname: "checkpoint/pstree.img", Mode: 0o600},
			{Name: "checkpoint/parent", Typeflag: tar.TypeSymlink, Linkname: "..", Mode: 0o777},
			{Name: "config.dump", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow", Mode: 0o777},
		} {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Size > 0 {
				tw.Write(img)
			}
		}
		tw.Close()
		closer.Close()
		p := filepath.Join(t.TempDir(), "a.tar")
		os.WriteFile(p, buf.Bytes(), 0o600)
		d, err := dump.OpenAny(p, dump.ArchiveOptions{SpoolPages: true})
		if err != nil {
			t.Fatalf("%q: %v", comp, err)
		}
		want := []string{"core-19635.img: a symbolic link, not read", "pages-1.img: a hard link, not read"}
		if got := d.NotRead(); !slices.Equal(got, want) {
			t.Errorf("archive %q: NotRead() = %q, wanted %q", comp, got, want)
		}
		if d.File("core-19635.img") != nil || d.File("pages-1.img") != nil || d.File("pstree.img") == nil {
			t.Errorf("archive %q: files %v", comp, d.Files())
		}
		if _, err := d.Archive().ReadFile("config.dump"); err == nil || !strings.Contains(err.Error(), "a symbolic link, not read") {
			t.Errorf("archive %q: config.dump, a link, read: %v", comp, err)
		}
		d.Close()
	}
}
