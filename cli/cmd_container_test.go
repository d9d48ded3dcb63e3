package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/critq/critq/dump"
)

// testRootfsFiles are the regular files of the test rootfs-diff.tar.
var testRootfsFiles = map[string]string{
	"etc/motd":            "hello from the container\n",
	"var/log/counter.log": strings.Repeat("tick\n", 300),
	"bin/blob":            "\x00\x01\x02\xff\xfe binary\n",
}

// containerArchive writes a gzip checkpoint archive of sleep-plain laid
// out as engine (a fixture folder of ../container/testdata) writes it, with
// a rootfs-diff.tar of extra members after testRootfsFiles, and returns its
// path.
func containerArchive(t *testing.T, engine string, extra ...tar.Header) string {
	t.Helper()
	return containerArchiveOf(t, engine, "../testdata/dumps/sleep-plain", extra...)
}

// containerArchiveOf is containerArchive of the images of dump folder dir.
func containerArchiveOf(t *testing.T, engine, dir string, extra ...tar.Header) string {
	t.Helper()
	var rootfs bytes.Buffer
	tw := tar.NewWriter(&rootfs)
	mtime := time.Date(2026, 11, 25, 8, 29, 0, 0, time.UTC)
	for _, dir := range []string{"bin/", "etc/", "var/", "var/log/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"bin/blob", "etc/motd", "var/log/counter.log"} {
		data := testRootfsFiles[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	for _, h := range extra {
		h.ModTime = mtime
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	root := map[string][]byte{"rootfs-diff.tar": rootfs.Bytes(), "deleted.files": []byte(`["/etc/old.conf","/tmp/x"]`)}
	fixtures := filepath.Join("../container/testdata", engine)
	ents, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(fixtures, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		root[e.Name()] = b
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := dump.WriteArchive(zw, os.DirFS(dir), root, "MANIFEST.txt"); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "checkpoint-"+engine+".tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInspectContainer(t *testing.T) {
	a := containerArchive(t, "crio")
	out, errb, code := runCLI(t, nil, "inspect", a)
	if code != exitOK {
		t.Fatalf("inspect: %d %s", code, errb)
	}
	_, section, ok := strings.Cut(out, "\nContainer\n")
	if !ok {
		t.Fatalf("no container section:\n%s", out)
	}
	// the values of ../container/testdata/crio
	for _, want := range []string{"├── engine: CRI-O\n", "├── name: counter\n", "├── pod: counter-7d9f\n", "├── namespace: shop\n",
		"├── pod uid: 0b6c1f3e-aa11-4b22-9c33-d44e55f66a77\n", "├── runtime: runc\n", "├── checkpointed: 2026-11-25T08:30:00.25Z\n",
		"├── ip: 10.244.1.23\n", "/var/run/secrets/kubernetes.io/serviceaccount type bind from /var/lib/kubelet/pods/",
		"├── Rootfs changes: 7\n", "-rw-r--r-- 0/0 25 2026-11-25 08:29 etc/motd\n", "└── Deleted files: 2\n", "    ├── /etc/old.conf\n"} {
		if !strings.Contains(section, want) {
			t.Errorf("container section lacks %q:\n%s", want, section)
		}
	}

	out, errb, code = runCLI(t, nil, "inspect", "--format", "json", a)
	if code != exitOK {
		t.Fatalf("inspect json: %d %s", code, errb)
	}
	var v struct {
		Dump      string
		Processes []any
		Container map[string]any
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	c := v.Container
	sizes, _ := c["sizes"].(map[string]any)
	if v.Dump != a || len(v.Processes) != 1 || c["engine"] != "CRI-O" || c["container_name"] != "counter" || c["namespace"] != "shop" ||
		c["rootfs_files"] != 7.0 || len(c["rootfs"].([]any)) != 7 || len(c["deleted_files"].([]any)) != 2 || sizes["memory_pages"] != 118784.0 {
		t.Errorf("inspect json: %+v", v)
	}

	const d = "../testdata/dumps/sleep-plain"
	out, _, code = runCLI(t, nil, "inspect", d)
	if code != exitOK || !strings.HasSuffix(out, "\nno container: a plain dump folder\n") {
		t.Errorf("dump folder: %d\n%s", code, out)
	}
	out, _, code = runCLI(t, nil, "inspect", "--format", "json", d)
	var f map[string]any
	if err := json.Unmarshal([]byte(out), &f); code != exitOK || err != nil || f["container"] != nil || len(f) < 3 {
		t.Errorf("dump folder json: %d %v %v", code, err, f)
	}
	if _, ok := f["container"]; !ok {
		t.Error("dump folder json: no container member")
	}
}

func TestRootfsCommand(t *testing.T) {
	a := containerArchive(t, "podman", tar.Header{Name: "etc/motd.link", Typeflag: tar.TypeSymlink, Linkname: "motd", Mode: 0o777})
	out, errb, code := runCLI(t, nil, "rootfs", a)
	if code != exitOK {
		t.Fatalf("%d %s", code, errb)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 8 || !strings.HasSuffix(lines[7], " etc/motd.link -> motd") || !strings.HasPrefix(lines[7], "lrwxrwxrwx ") {
		t.Errorf("rootfs list:\n%s", out)
	}
	for name, data := range testRootfsFiles {
		out, errb, code := runCLI(t, nil, "rootfs", a, name)
		if code != exitOK || out != data {
			t.Errorf("rootfs %s: %d %q %s", name, code, out, errb)
		}
	}
	out, _, _ = runCLI(t, nil, "rootfs", "--format", "json", a)
	var ms []map[string]any
	if err := json.Unmarshal([]byte(out), &ms); err != nil || len(ms) != 8 || ms[5]["path"] != "etc/motd" || ms[5]["size"] != 25.0 {
		t.Errorf("rootfs json: %v %v", err, ms)
	}
	bad := containerArchive(t, "podman", tar.Header{Name: "../../etc/cron.d/x", Typeflag: tar.TypeReg})
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"rootfs", a, "etc/nothere"}, exitUsage, "no such file in rootfs-diff.tar"},
		{[]string{"rootfs", a, "etc"}, exitUsage, "etc is a dir: not a regular file"},
		{[]string{"rootfs", a, "etc/motd.link"}, exitUsage, "is a symlink"},
		{[]string{"rootfs", bad}, exitBadImage, `member "../../etc/cron.d/x" escapes the archive`},
		{[]string{"rootfs", "../testdata/dumps/sleep-plain"}, exitBadImage, "no rootfs-diff.tar"},
		{[]string{"rootfs"}, exitUsage, "usage"},
	} {
		_, errb, code := runCLI(t, nil, c.args...)
		if code != c.code || !strings.Contains(errb, c.stderr) {
			t.Errorf("%v: %d %q, wanted %d %q", c.args, code, errb, c.code, c.stderr)
		}
	}
}

func TestListCommand(t *testing.T) {
	dir := t.TempDir()
	for _, e := range []string{"podman", "crio", "containerd"} {
		a := containerArchive(t, e)
		sub := filepath.Join(dir, e)
		os.Mkdir(sub, 0o700)
		if err := os.Rename(a, filepath.Join(sub, filepath.Base(a))); err != nil {
			t.Fatal(err)
		}
	}
	out, errb, code := runCLI(t, nil, "list", "--format", "json", dir)
	if code != exitOK {
		t.Fatalf("%d %s", code, errb)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 3 {
		t.Fatalf("%v %s", err, out)
	}
	// the fixtures' checkpoint times: podman 2026-11-21, crio 2026-11-25, containerd 2026-11-26
	for i, want := range []struct{ engine, container, pod, ns string }{
		{"Podman", "webcounter", "", ""}, {"CRI-O", "counter", "counter-7d9f", "shop"}, {"containerd", "cache", "cache-0", "infra"},
	} {
		r := rows[i]
		if r["engine"] != want.engine || r["container"] != want.container || r["processes"] != 1.0 || r["memory_size"] != 118784.0 ||
			(want.pod != "" && (r["pod"] != want.pod || r["namespace"] != want.ns)) {
			t.Errorf("row %d: %v", i, r)
		}
	}
	out, _, _ = runCLI(t, nil, "list", "--format", "ndjson", dir)
	if n := strings.Count(out, "\n"); n != 3 || !strings.HasPrefix(out, `{"path":`) {
		t.Errorf("ndjson:\n%s", out)
	}
	out, _, _ = runCLI(t, nil, "list", dir)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "CHECKPOINTED") || !strings.HasPrefix(lines[1], "2026-11-21T09:00:05Z  Podman") {
		t.Errorf("table:\n%s", out)
	}
	_, errb, code = runCLI(t, nil, "list", filepath.Join(dir, "nothere"))
	if code != exitBadImage || !strings.Contains(errb, "no such file") {
		t.Errorf("missing folder: %d %s", code, errb)
	}
	_, _, code = runCLI(t, nil, "list", "--format", "yaml", dir)
	if code != exitUsage {
		t.Errorf("bad format: %d", code)
	}
}
