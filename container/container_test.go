package container

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testcorpus"
)

const testDump = "../testdata/dumps/sleep-plain"

// rootfsMember is a member of a test rootfs-diff.tar.
type rootfsMember struct {
	h    tar.Header
	data string
}

var testMTime = time.Date(2026, 11, 21, 9, 59, 30, 0, time.UTC)

// testRootfs are the members of the test rootfs-diff.tar, as a container
// that wrote a few files leaves them.
var testRootfs = []rootfsMember{
	{tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
	{tar.Header{Name: "etc/motd", Typeflag: tar.TypeReg, Mode: 0o644}, "hello from the container\n"},
	{tar.Header{Name: "./etc/issue", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 0, Gid: 4}, "counter 1.4\n\x00\xff binary tail"},
	{tar.Header{Name: "etc/motd.bak", Typeflag: tar.TypeLink, Linkname: "etc/motd"}, ""},
	{tar.Header{Name: "var/log/counter.log", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1000, Gid: 1000, Uname: "app", Gname: "app"}, strings.Repeat("tick 42\n", 200)},
	{tar.Header{Name: "usr/bin/cnt", Typeflag: tar.TypeSymlink, Linkname: "/usr/bin/counter", Mode: 0o777}, ""},
	{tar.Header{Name: "usr/bin/helper", Typeflag: tar.TypeReg, Mode: 0o4755}, "#!/bin/sh\necho helper\n"},
	{tar.Header{Name: "run/ctl.fifo", Typeflag: tar.TypeFifo, Mode: 0o600, Uid: 1000, Gid: 1000}, ""},
	{tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}, ""},
}

// buildRootfs writes a rootfs-diff.tar of members.
func buildRootfs(t testing.TB, members []rootfsMember) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range members {
		h := m.h
		h.Size = int64(len(m.data))
		h.ModTime = testMTime
		h.Format = tar.FormatGNU
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// engineRoot returns the root files of a checkpoint archive of engine
// (a folder of testdata), with a rootfs-diff.tar and deleted.files.
func engineRoot(t testing.TB, engine string) map[string][]byte {
	t.Helper()
	root := map[string][]byte{
		"rootfs-diff.tar": buildRootfs(t, testRootfs),
		"deleted.files":   []byte(`["/etc/old.conf","/var/cache/counter/stale"]`),
	}
	ents, err := os.ReadDir(filepath.Join("testdata", engine))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("testdata", engine, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		root[e.Name()] = b
	}
	return root
}

// writeArchive packs dump folder dir with the root files as an archive,
// compressed with comp ("", "gz" or "zst"), and returns its path.
func writeArchive(t testing.TB, dir string, root map[string][]byte, comp string) string {
	t.Helper()
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	name := "checkpoint.tar"
	switch comp {
	case "gz":
		w, name = gzip.NewWriter(&buf), name+".gz"
	case "zst":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w, name = zw, name+".zst"
	}
	var tw interface{ Write([]byte) (int, error) } = &buf
	if w != nil {
		tw = w
	}
	if err := dump.WriteArchive(tw, os.DirFS(dir), root, "MANIFEST.txt"); err != nil {
		t.Fatal(err)
	}
	if w != nil {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func ptime(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &t
}

// TestEngines checks the fields read from each engine's files against the
// fixtures they come from.
func TestEngines(t *testing.T) {
	for _, c := range []struct {
		engine string
		want   Checkpoint
	}{
		{"podman", Checkpoint{Engine: Podman, EngineVersion: "5.6.1", Name: "webcounter",
			ID:       "3f2a9c1e5b7d4a60b8e1c2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3",
			Image:    "quay.io/example/counter:1.4",
			ImageID:  "9e8d7c6b5a4f30211203f4e5d6c7b8a99e8d7c6b5a4f30211203f4e5d6c7b8a9",
			ImageRef: "quay.io/example/counter@sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
			Runtime:  "crun", Created: ptime("2026-11-20T09:15:42.123456789Z"), Checkpointed: ptime("2026-11-21T10:00:05.5+01:00"),
			IPs: []string{"10.89.3.4", "fd00:3::4", "10.88.0.17"}}},
		{"crio", Checkpoint{Engine: CRIO, Name: "counter",
			ID:      "7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d",
			Image:   "quay.io/example/counter:2.0",
			ImageID: "2222222222222222222222222222222222222222222222222222222222222222", ImageRef: "quay.io/example/counter@sha256:1111111111111111111111111111111111111111111111111111111111111111",
			Runtime: "runc", Created: ptime("2026-11-25T08:00:00.5Z"), Checkpointed: ptime("2026-11-25T08:30:00.25Z"),
			Pod: "counter-7d9f", PodID: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a", Namespace: "shop",
			PodUID: "0b6c1f3e-aa11-4b22-9c33-d44e55f66a77", IPs: []string{"10.244.1.23"}}},
		{"containerd", Checkpoint{Engine: Containerd, Name: "cache",
			ID:      "e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00",
			Image:   "docker.io/library/redis:7",
			ImageID: "sha256:3333333333333333333333333333333333333333333333333333333333333333",
			Runtime: "io.containerd.runc.v2", Created: ptime("2026-11-26T12:00:00Z"), Checkpointed: ptime("2026-11-26T12:05:00Z"),
			Pod: "cache-0", PodID: "9f9f9f9f", Namespace: "infra", PodUID: "c0c0c0c0-1111-2222-3333-444455556666"}},
	} {
		for _, comp := range []string{"", "gz", "zst"} {
			t.Run(c.engine+"/"+comp, func(t *testing.T) {
				root := engineRoot(t, c.engine)
				p := writeArchive(t, testDump, root, comp)
				got, err := Open(p, Options{Rootfs: true})
				if err != nil {
					t.Fatal(err)
				}
				w := c.want
				for _, f := range []struct {
					name      string
					got, want any
				}{
					{"engine", got.Engine, w.Engine}, {"engine version", got.EngineVersion, w.EngineVersion},
					{"name", got.Name, w.Name}, {"id", got.ID, w.ID}, {"image", got.Image, w.Image},
					{"image id", got.ImageID, w.ImageID}, {"image ref", got.ImageRef, w.ImageRef},
					{"runtime", got.Runtime, w.Runtime}, {"pod", got.Pod, w.Pod}, {"pod id", got.PodID, w.PodID},
					{"namespace", got.Namespace, w.Namespace}, {"pod uid", got.PodUID, w.PodUID},
					{"created", fmtTime(got.Created), fmtTime(w.Created)},
					{"checkpointed", fmtTime(got.Checkpointed), fmtTime(w.Checkpointed)},
					{"restored", got.Restored, (*time.Time)(nil)},
					{"ips", got.IPs, w.IPs},
					{"deleted", got.DeletedFiles, []string{"/etc/old.conf", "/var/cache/counter/stale"}},
					{"rootfs files", got.RootfsFiles, len(testRootfs)},
					{"rootfs size", got.Sizes.RootfsDiff, int64(len(root["rootfs-diff.tar"]))},
					{"processes", got.Processes, 1}, // MANIFEST.txt of sleep-plain: one task
					{"warnings", got.Warnings, []string(nil)},
				} {
					if !reflect.DeepEqual(f.got, f.want) {
						t.Errorf("%s: got %#v, wanted %#v", f.name, f.got, f.want)
					}
				}
				checkSpec(t, got, root["spec.dump"])
				checkSizes(t, got, p)
			})
		}
	}
}

// checkSpec compares the annotations and mounts with spec.dump decoded
// on its own.
func checkSpec(t *testing.T, c *Checkpoint, spec []byte) {
	t.Helper()
	var s struct {
		Annotations map[string]string
		Mounts      []map[string]any
	}
	if err := json.Unmarshal(spec, &s); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Annotations, s.Annotations) {
		t.Errorf("annotations %v, wanted %v", c.Annotations, s.Annotations)
	}
	if len(c.Mounts) != len(s.Mounts) {
		t.Fatalf("%d mounts, wanted %d", len(c.Mounts), len(s.Mounts))
	}
	for i, m := range s.Mounts {
		g := c.Mounts[i]
		if g.Destination != m["destination"] || g.Source != m["source"] || g.Type != m["type"] || len(g.Options) != len(m["options"].([]any)) {
			t.Errorf("mount %d: %+v, wanted %v", i, g, m)
		}
	}
}

// checkSizes compares the sizes with the archive's members as tar lists
// them.
func checkSizes(t *testing.T, c *Checkpoint, p string) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	var pages, total int64
	ents, err := os.ReadDir(testDump)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == "MANIFEST.txt" || strings.HasPrefix(e.Name(), ".") && false {
			continue
		}
		info, _ := e.Info()
		if e.Name() == "stats-dump" { // at the archive root, as Podman puts it
			continue
		}
		total += info.Size()
		if strings.HasPrefix(e.Name(), "pages-") {
			pages += info.Size()
		}
	}
	if c.Sizes.Total != st.Size() || c.Sizes.Checkpoint != total || c.Sizes.Pages != pages || pages == 0 {
		t.Errorf("sizes %+v, wanted total %d, checkpoint %d, pages %d", c.Sizes, st.Size(), total, pages)
	}
}

func TestNetworks(t *testing.T) {
	c, err := Open(writeArchive(t, testDump, engineRoot(t, "podman"), ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Network{
		{Name: "backend", Interfaces: []Interface{{Name: "eth1", MAC: "aa:bb:cc:00:11:33",
			Subnets: []Subnet{{IPNet: "10.89.3.4/24", Gateway: "10.89.3.1"}, {IPNet: "fd00:3::4/64"}}}}},
		{Name: "podman", Interfaces: []Interface{{Name: "eth0", MAC: "aa:bb:cc:00:11:22",
			Subnets: []Subnet{{IPNet: "10.88.0.17/16", Gateway: "10.88.0.1"}}}}},
	}
	if !reflect.DeepEqual(c.Networks, want) {
		t.Errorf("networks %+v, wanted %+v", c.Networks, want)
	}
	if c.RootfsFiles != -1 || c.Rootfs != nil {
		t.Errorf("rootfs listed without Options.Rootfs: %d", c.RootfsFiles)
	}
}

// TestRootfs lists every member with its metadata and prints one.
func TestRootfs(t *testing.T) {
	root := engineRoot(t, "podman")
	for _, comp := range []string{"", "gz", "zst"} {
		p := writeArchive(t, testDump, root, comp)
		ms, err := Rootfs(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != len(testRootfs) {
			t.Fatalf("%s: %d members, wanted %d", comp, len(ms), len(testRootfs))
		}
		for i, m := range ms {
			h := testRootfs[i].h
			size := int64(len(testRootfs[i].data))
			wantPath := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
			if m.Path != wantPath || tarTypes[h.Typeflag] != m.Type || m.Size != size || m.Mode != uint32(h.Mode) ||
				m.UID != h.Uid || m.GID != h.Gid || m.User != h.Uname || !m.MTime.Equal(testMTime) || m.Link != h.Linkname {
				t.Errorf("%s: member %d: %+v, wanted %+v (%d bytes)", comp, i, m, h, size)
			}
		}
		for _, i := range []int{1, 2, 4} {
			var b bytes.Buffer
			m, err := Cat(p, testRootfs[i].h.Name, &b)
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != testRootfs[i].data || m.Size != int64(len(testRootfs[i].data)) {
				t.Errorf("%s: cat %s: %q", comp, testRootfs[i].h.Name, b.String())
			}
		}
		for _, c := range []struct{ name, err string }{
			{"etc", "is a dir"}, {"usr/bin/cnt", "is a symlink"}, {"etc/nothere", ErrNoMember.Error()}, {"../etc/motd", "bad path"},
		} {
			if _, err := Cat(p, c.name, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: cat %s: %v, wanted %q", comp, c.name, err, c.err)
			}
		}
	}
	noRootfs := writeArchive(t, testDump, map[string][]byte{"config.dump": []byte(`{}`)}, "gz")
	if _, err := Rootfs(noRootfs); !errors.Is(err, ErrNoRootfs) {
		t.Errorf("archive without rootfs-diff.tar: %v", err)
	}
}

// TestRootfsTarOracle compares the text listing with GNU tar -tv on the
// same rootfs-diff.tar.
func TestRootfsTarOracle(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar")
	}
	b := buildRootfs(t, testRootfs)
	p := filepath.Join(t.TempDir(), "rootfs-diff.tar")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tar", "-tvf", p, "--numeric-owner")
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		t.Skip("tar -tv failed:", err)
	}
	ms, err := listRootfs(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(ms) {
		t.Fatalf("tar lists %d members, critq %d", len(lines), len(ms))
	}
	for i, l := range lines {
		m := ms[i]
		m.User, m.Group = "", "" // --numeric-owner
		// GNU tar pads the size column and keeps "./" and the trailing "/"
		// of the names as they are in the archive.
		tf := strings.Fields(l)
		gf := strings.Fields(m.line())
		tf[5] = strings.TrimSuffix(strings.TrimPrefix(tf[5], "./"), "/")
		if strings.Join(tf, " ") != strings.Join(gf, " ") {
			t.Errorf("member %d: tar %q, critq %q", i, l, m.line())
		}
	}
}

// TestRootfsEscapes refuses members that would escape the root.
func TestRootfsEscapes(t *testing.T) {
	for _, name := range []string{"../etc/passwd", "/etc/shadow", "a/../../b"} {
		bad := buildRootfs(t, []rootfsMember{{tar.Header{Name: "ok", Typeflag: tar.TypeReg, Mode: 0o644}, "x"},
			{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, "evil"}})
		p := writeArchive(t, testDump, map[string][]byte{"rootfs-diff.tar": bad, "config.dump": []byte(`{}`)}, "gz")
		if _, err := Rootfs(p); err == nil || !strings.Contains(err.Error(), "escapes") {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := Cat(p, "ok", &bytes.Buffer{}); err != nil {
			t.Errorf("%s: cat of a member before the bad one: %v", name, err)
		}
		if _, err := Open(p, Options{Rootfs: true}); err == nil || !strings.Contains(err.Error(), "escapes") {
			t.Errorf("%s: open: %v", name, err)
		}
	}
	link := buildRootfs(t, []rootfsMember{{tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "../../etc/shadow"}, ""}})
	p := writeArchive(t, testDump, map[string][]byte{"rootfs-diff.tar": link}, "")
	if _, err := Rootfs(p); err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Errorf("hardlink out of the root: %v", err)
	}
}

// TestScanMatchesOpen: the Checkpoint that Scan gathers while package
// dump opens an archive (one pass) is the one Open reads by itself, for
// every engine and compression, with a member at the root that neither
// keeps and the stats-dump at the root or in checkpoint/.
func TestScanMatchesOpen(t *testing.T) {
	for _, engine := range []string{"podman", "crio", "containerd"} {
		for _, comp := range []string{"", "gz", "zst"} {
			t.Run(engine+"/"+comp, func(t *testing.T) {
				root := engineRoot(t, engine)
				root["volumes/data/x"] = []byte("volume data")
				p := writeArchive(t, testDump, root, comp)
				want, err := Open(p, Options{Rootfs: true})
				if err != nil {
					t.Fatal(err)
				}
				want.read = 0
				visit, finish := Scan(p, Options{Rootfs: true})
				a, err := dump.OpenArchive(p, dump.ArchiveOptions{Visit: visit})
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				got, err := finish(a)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					g, _ := json.Marshal(got)
					w, _ := json.Marshal(want)
					t.Errorf("Scan:\n%s\nOpen:\n%s", g, w)
				}
				if want.Processes != 1 || want.RootfsFiles != len(testRootfs) || len(want.Members) != 1 || want.Members[0].Name != "volumes" {
					t.Errorf("Open: %d processes, %d rootfs files, members %+v", want.Processes, want.RootfsFiles, want.Members)
				}
			})
		}
	}
}

// TestScanErrors: an escaping name in rootfs-diff.tar is the error of
// dump.OpenArchive when Scan visits it, as it is Open's.
func TestScanErrors(t *testing.T) {
	root := engineRoot(t, "podman")
	root["rootfs-diff.tar"] = buildRootfs(t, []rootfsMember{{h: tar.Header{Name: "../etc/passwd", Typeflag: tar.TypeReg, Size: 1}, data: "x"}})
	for _, comp := range []string{"", "gz"} {
		p := writeArchive(t, testDump, root, comp)
		_, oerr := Open(p, Options{Rootfs: true})
		visit, _ := Scan(p, Options{Rootfs: true})
		_, serr := dump.OpenArchive(p, dump.ArchiveOptions{Visit: visit})
		if oerr == nil || serr == nil || oerr.Error() != serr.Error() {
			t.Errorf("%s: Open: %v; Scan: %v", comp, oerr, serr)
		}
	}
}

// TestSmallMembersOnly checks that reading a plain tar archive reads its
// small members and not its pages images.
func TestSmallMembersOnly(t *testing.T) {
	dir := testDump
	if root := testcorpus.Root(t); root != "" {
		dir = filepath.Join(root, "many-vmas")
	}
	p := writeArchive(t, dir, engineRoot(t, "crio"), "")
	c, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Sizes.Pages == 0 {
		t.Fatal("no pages")
	}
	// What may be read: the tar headers, the metadata files and pstree.img,
	// a few KiB; never the pages.
	if c.read >= c.Sizes.Total-c.Sizes.Pages {
		t.Errorf("read %d bytes of a %d-byte archive whose pages are %d bytes", c.read, c.Sizes.Total, c.Sizes.Pages)
	}
	t.Logf("read %d of %d bytes (pages %d)", c.read, c.Sizes.Total, c.Sizes.Pages)
}

// TestFolders reads an unpacked archive and a dump folder.
func TestFolders(t *testing.T) {
	d := t.TempDir()
	root := engineRoot(t, "crio")
	for n, b := range root {
		if err := os.WriteFile(filepath.Join(d, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(filepath.Join(d, "checkpoint"), os.DirFS(testDump)); err != nil {
		t.Fatal(err)
	}
	c, err := Open(d, Options{Rootfs: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != KindFolder || c.Engine != CRIO || c.Name != "counter" || c.RootfsFiles != len(testRootfs) || c.Processes != 1 || len(c.DeletedFiles) != 2 {
		t.Errorf("folder: %+v", c)
	}
	var b bytes.Buffer
	if _, err := Cat(d, "etc/motd", &b); err != nil || b.String() != testRootfs[1].data {
		t.Errorf("cat in a folder: %q %v", b.String(), err)
	}
	c, err = Open(testDump, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.IsContainer() || c.Processes != 1 || c.Sizes.Pages == 0 {
		t.Errorf("dump folder: %+v", c)
	}
	b.Reset()
	if err := c.Text(&b); err != nil || b.String() != NoContainer+"\n" {
		t.Errorf("dump folder text %q %v", b.String(), err)
	}
	b.Reset()
	if err := c.JSON(&b); err != nil || b.String() != "null\n" {
		t.Errorf("dump folder json %q %v", b.String(), err)
	}
	if _, err := Open(t.TempDir(), Options{}); !errors.Is(err, ErrNotCheckpoint) {
		t.Errorf("empty folder: %v", err)
	}
}
