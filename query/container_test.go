package query

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/dump"
)

// writeArchive packs dump folder dir as a gzip-compressed container
// checkpoint archive with the given root files, and returns its path.
func writeArchive(t testing.TB, dir string, root map[string][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := dump.WriteArchive(zw, os.DirFS(dir), root, "MANIFEST.txt"); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "checkpoint.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	testConfig = `{"id": "c0ffee", "name": "web", "rootfsImageName": "docker.io/library/nginx:latest",
		"createdTime": "2026-11-26T18:39:20Z", "big": 18446744073709551615, "ratio": 0.5, "neg": -3,
		"labels": {"app": "web"}, "ports": [80, 443], "none": null}`
	testSpec = `{"ociVersion": "1.2.0", "process": {"args": ["nginx", "-g", "daemon off;"], "user": {"uid": 0}}}`
)

func TestContainer(t *testing.T) {
	dir := "../testdata/dumps/sleep-plain"
	withSpec := writeArchive(t, dir, map[string][]byte{"config.dump": []byte(testConfig), "spec.dump": []byte(testSpec)})
	noSpec := writeArchive(t, dir, map[string][]byte{"config.dump": []byte(testConfig)})
	badJSON := writeArchive(t, dir, map[string][]byte{"config.dump": []byte(`{"id": `)})
	for _, c := range []struct {
		dump, src, want string
	}{
		{dir, `container == null`, `true`},
		{dir, `type(container)`, `"null_type"`},
		{withSpec, `container.config.id`, `"c0ffee"`},
		{withSpec, `container.config.rootfsImageName`, `"docker.io/library/nginx:latest"`},
		{withSpec, `[container.config.big, container.config.ratio, container.config.neg, container.config.ports[1]]`, `[18446744073709551615,0.5,-3,443]`},
		{withSpec, `[type(container.config.big), type(container.config.ports[0]), type(container.config.ratio)]`, `["uint","int","double"]`},
		{withSpec, `container.config.labels.app == "web" && container.config.none == null`, `true`},
		{withSpec, `container.spec.process.args`, `["nginx","-g","daemon off;"]`},
		{withSpec, `container.spec.process.user.uid == 0`, `true`},
		{withSpec, `"config" in container && container.spec.ociVersion.startsWith("1.")`, `true`},
		{withSpec, `tasks.map(t, t.comm)`, `["sleep"]`},
		{noSpec, `[container.config.name, container.spec]`, `["web",null]`},
	} {
		t.Run(filepath.Base(c.dump)+"/"+c.src, func(t *testing.T) {
			d := mustOpen(t, c.dump)
			defer d.Images().Close()
			v := mustEval(t, mustCompile(t, c.src), d)
			var b bytes.Buffer
			if err := (Output{Format: FormatJSON}).Write(&b, "", v); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(b.String()); got != c.want {
				t.Errorf("%s got %s, wanted %s", c.src, got, c.want)
			}
		})
	}
	d := mustOpen(t, badJSON)
	defer d.Images().Close()
	_, err := mustCompile(t, `container.config`).Eval(context.Background(), d)
	var de *DumpError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "config.dump: unexpected EOF") {
		t.Errorf("bad config.dump: %v, wanted a DumpError naming config.dump", err)
	}
	// Queries that do not name container read neither file.
	d = mustOpen(t, withSpec)
	defer d.Images().Close()
	mustEval(t, mustCompile(t, `tasks.size()`), d)
	if _, ok := d.cache["container"]; ok {
		t.Error("tasks.size() decoded the container's files")
	}
}

// FuzzContainerJSON decodes any bytes as a container file: a value or an
// error, never a panic, and only whole documents.
func FuzzContainerJSON(f *testing.F) {
	f.Add([]byte(testConfig))
	f.Add([]byte(testSpec))
	f.Add([]byte(`[1, 2.5e3, -0, 1e400] `))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeJSON(b)
		if err == nil && v == nil && strings.TrimSpace(string(b)) != "null" {
			t.Errorf("decodeJSON(%q) = nil", b)
		}
	})
}
