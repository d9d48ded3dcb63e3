package dump_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/critq/critq/dump"
)

// testMember is a member of the archives of TestArchiveRewrite.
type testMember struct {
	h    tar.Header
	data []byte
}

// rewriteMembers are the members of a checkpoint archive with headers of
// several shapes: ustar, PAX records, a long name, a folder, a FIFO.
func rewriteMembers(t *testing.T) []testMember {
	t.Helper()
	mt := time.Date(2026, 11, 25, 8, 30, 0, 0, time.UTC)
	ms := []testMember{
		{tar.Header{Name: "config.dump", Mode: 0o600, ModTime: mt, Uname: "root"}, []byte(`{"id":"c0ffee"}`)},
		{tar.Header{Name: "rootfs-diff.tar", Mode: 0o600, ModTime: mt}, bytes.Repeat([]byte("r"), 1500)},
		{tar.Header{Name: strings.Repeat("long/", 30) + "name", Mode: 0o644, ModTime: mt}, []byte("far away")},
		{tar.Header{Name: "run.fifo", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: mt}, nil},
		{tar.Header{Name: "checkpoint/", Typeflag: tar.TypeDir, Mode: 0o700, ModTime: mt}, nil},
	}
	ents, err := os.ReadDir(archiveDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == "MANIFEST.txt" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(archiveDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h := tar.Header{Name: "checkpoint/" + e.Name(), Mode: 0o600, ModTime: mt, Uid: 1000, Gid: 1000}
		if e.Name() == "files.img" {
			h.PAXRecords = map[string]string{"comment": "a PAX record"}
		}
		ms = append(ms, testMember{h, b})
	}
	return ms
}

const archiveDir = "../testdata/dumps/sleep-plain"

// tarOf writes members with archive/tar, as Podman does, followed by a
// record's worth of zeros, with the data of the members in repl replaced.
func tarOf(t *testing.T, ms []testMember, repl map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range ms {
		h, data := m.h, m.data
		if r, ok := repl[strings.TrimSuffix(h.Name, "/")]; ok {
			data = r
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		h.Size = int64(len(data))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b.Write(make([]byte, 3*512))
	return b.Bytes()
}

// TestArchiveRewrite: the tar that Rewrite writes is, byte for byte, the
// tar archive/tar writes with the new data in place of the old (the
// oracle), for a plain, gzip and zstd archive; with nothing replaced it is
// the old tar itself. The headers of the rewritten members are patched (a
// lone ustar block) or encoded again (PAX records).
func TestArchiveRewrite(t *testing.T) {
	ms := rewriteMembers(t)
	old := tarOf(t, ms, nil)
	repl := map[string][]byte{
		"checkpoint/pstree.img": []byte("a new pstree image, longer than a block " + strings.Repeat("x", 600)),
		"checkpoint/files.img":  []byte("short"),
	}
	want := tarOf(t, ms, repl)
	for _, c := range []dump.Compression{dump.Plain, dump.Gzip, dump.Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			var z bytes.Buffer
			cw, err := dump.Compress(&z, c)
			if err != nil {
				t.Fatal(err)
			}
			cw.Write(old)
			if err := cw.Close(); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "a."+c.String())
			if err := os.WriteFile(p, z.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := dump.OpenArchive(p, dump.ArchiveOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if a.Compression() != c {
				t.Errorf("Compression() = %v", a.Compression())
			}
			if got := a.Members(); len(got) != len(ms) || got[2].Name != ms[2].h.Name || got[3].Typeflag != tar.TypeFifo {
				t.Errorf("Members() = %v", got)
			}
			var same bytes.Buffer
			if err := a.Rewrite(&same, nil); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(same.Bytes(), old) {
				t.Errorf("Rewrite with nothing replaced: %d bytes, not the %d of the tar", same.Len(), len(old))
			}
			var got bytes.Buffer
			if err := a.Rewrite(&got, repl); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("Rewrite: %d bytes, not archive/tar's %d", got.Len(), len(want))
				for i := range min(got.Len(), len(want)) {
					if got.Bytes()[i] != want[i] {
						t.Fatalf("first difference at offset %d", i)
					}
				}
			}
			if err := a.Rewrite(io.Discard, map[string][]byte{"checkpoint/nope.img": nil}); err == nil || !strings.Contains(err.Error(), "no member checkpoint/nope.img") {
				t.Errorf("Rewrite of a missing member: %v", err)
			}
			if err := a.Rewrite(io.Discard, map[string][]byte{"checkpoint": nil}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("Rewrite of a folder: %v", err)
			}
		})
	}
}

// TestArchiveRewriteGNUTar: an archive GNU tar made (GNU headers, a 10 KiB
// record) rewritten: GNU tar lists the same members in the same order with
// the same metadata, extracts every file unchanged but the rewritten one,
// and that one with its new bytes.
func TestArchiveRewriteGNUTar(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "checkpoint"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pstree.img", "core-19635.img", "pages-1.img", "inventory.img"} {
		b, _ := os.ReadFile(filepath.Join(archiveDir, name))
		os.WriteFile(filepath.Join(src, "checkpoint", name), b, 0o600)
	}
	os.WriteFile(filepath.Join(src, "config.dump"), []byte("{}"), 0o600)
	p := filepath.Join(dir, "a.tar.gz")
	run := func(args ...string) string {
		out, err := exec.Command("tar", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("tar %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("--format=gnu", "--mtime=2026-11-25 08:30:00", "-czf", p, "-C", src, "config.dump", "checkpoint")
	a, err := dump.OpenArchive(p, dump.ArchiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	newCore := []byte("rewritten core")
	out := filepath.Join(dir, "b.tar.gz")
	f, _ := os.Create(out)
	zw, _ := dump.Compress(f, dump.Gzip)
	if err := a.Rewrite(zw, map[string][]byte{a.MemberOf("core-19635.img"): newCore}); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	f.Close()
	before, after := run("--utc", "-tvzf", p), run("--utc", "-tvzf", out)
	want := strings.Replace(before, "root/root      2623 ", "root/root        14 ", 1)
	if want == before {
		t.Fatalf("no core of 2623 bytes in\n%s", before)
	}
	if after != want {
		t.Errorf("tar -tv of the new archive:\n%s\nwant\n%s", after, want)
	}
	// Raw bytes: all before the core's header and all after its data is
	// the old tar's, and its header block differs only in the size and
	// checksum fields.
	oldTar, newTar := gunzip(t, p), gunzip(t, out)
	ohs, ods, oend := span(t, oldTar, "checkpoint/core-19635.img")
	nhs, nds, nend := span(t, newTar, "checkpoint/core-19635.img")
	if ohs != nhs || !bytes.Equal(oldTar[:ohs], newTar[:nhs]) || !bytes.Equal(oldTar[oend:], newTar[nend:]) {
		t.Errorf("bytes outside the rewritten member differ")
	}
	oh, nh := oldTar[ohs:ods], newTar[nhs:nds]
	if len(oh) != 512 || len(nh) != 512 {
		t.Fatalf("header blocks of %d and %d bytes", len(oh), len(nh))
	}
	for i := range oh {
		if oh[i] != nh[i] && !(i >= 124 && i < 136 || i >= 148 && i < 156) {
			t.Errorf("header byte %d changed: %q -> %q", i, oh[i], nh[i])
		}
	}
	x := filepath.Join(dir, "x")
	os.Mkdir(x, 0o755)
	run("-xzf", out, "-C", x)
	for _, name := range []string{"config.dump", "checkpoint/pstree.img", "checkpoint/pages-1.img", "checkpoint/inventory.img", "checkpoint/core-19635.img"} {
		w, _ := os.ReadFile(filepath.Join(src, name))
		if name == "checkpoint/core-19635.img" {
			w = newCore
		}
		if g, err := os.ReadFile(filepath.Join(x, name)); err != nil || !bytes.Equal(g, w) {
			t.Errorf("%s extracted from the new archive: %d bytes (%v), want %d", name, len(g), err, len(w))
		}
	}
}

// gunzip returns the tar inside the gzip file p.
func gunzip(t *testing.T, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// span returns where the member name of tar b has its header blocks
// (from hs), its data (from ds) and where its padded data ends.
func span(t *testing.T, b []byte, name string) (hs, ds, end int) {
	t.Helper()
	br := bytes.NewReader(b)
	tr := tar.NewReader(br)
	prevEnd := 0
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no %s in the tar: %v", name, err)
		}
		pos := len(b) - br.Len()
		n, _ := io.Copy(io.Discard, tr)
		end := pos + int(n+511)/512*512
		if h.Name == name {
			return prevEnd, pos, end
		}
		prevEnd = end
	}
}
