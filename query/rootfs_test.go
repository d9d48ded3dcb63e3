package query

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestRootfsVars(t *testing.T) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	mtime := time.Date(2026, 11, 25, 8, 29, 0, 0, time.UTC)
	for _, h := range []tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/motd", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6, Uid: 1000, Gid: 100, Uname: "app"},
		{Name: "etc/motd.link", Typeflag: tar.TypeSymlink, Linkname: "motd", Mode: 0o777},
	} {
		h.ModTime = mtime
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("hello\n"))
		}
	}
	tw.Close()
	dir := "../testdata/dumps/sleep-plain"
	withRootfs := writeArchive(t, dir, map[string][]byte{"rootfs-diff.tar": b.Bytes(), "deleted.files": []byte(`["/etc/old","/tmp/x"]`)})
	bare := writeArchive(t, dir, map[string][]byte{"config.dump": []byte(`{}`)})
	for _, c := range []struct {
		dump, src, want string
	}{
		{dir, `[rootfs, deleted_files]`, `[null,null]`},
		{bare, `[rootfs, deleted_files]`, `[[],[]]`},
		{withRootfs, `deleted_files`, `["/etc/old","/tmp/x"]`},
		{withRootfs, `rootfs.map(m, m.path)`, `["etc","etc/motd","etc/motd.link"]`},
		{withRootfs, `rootfs.map(m, m.type)`, `["dir","file","symlink"]`},
		{withRootfs, `rootfs.filter(m, m.type == "file").map(m, [m.size, m.mode, m.uid, m.gid, m.user])`, `[[6,420,1000,100,"app"]]`},
		{withRootfs, `rootfs.exists(m, m.link == "motd" && m.path == "etc/motd.link")`, `true`},
		{withRootfs, `rootfs.all(m, m.mtime == timestamp("2026-11-25T08:29:00Z"))`, `true`},
		{withRootfs, `"/etc/old" in deleted_files && tasks.size() == 1`, `true`},
	} {
		t.Run(c.src, func(t *testing.T) {
			d := mustOpen(t, c.dump)
			defer d.Images().Close()
			v := mustEval(t, mustCompile(t, c.src), d)
			var out bytes.Buffer
			if err := (Output{Format: FormatJSON}).Write(&out, "", v); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(out.String()); got != c.want {
				t.Errorf("%s got %s, wanted %s", c.src, got, c.want)
			}
		})
	}
	var bad bytes.Buffer
	tw = tar.NewWriter(&bad)
	tw.WriteHeader(&tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.Close()
	d := mustOpen(t, writeArchive(t, dir, map[string][]byte{"rootfs-diff.tar": bad.Bytes()}))
	defer d.Images().Close()
	if _, err := mustCompile(t, `rootfs.size()`).Eval(t.Context(), d); err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Errorf("rootfs-diff.tar with ../escape: %v", err)
	}
}
