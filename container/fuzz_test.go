package container

import (
	"bytes"
	"io/fs"
	"testing"
)

// FuzzRootfs lists any bytes as a rootfs-diff.tar: members with valid
// relative names, or an error, never a panic.
func FuzzRootfs(f *testing.F) {
	f.Add(buildRootfs(f, testRootfs))
	f.Add(buildRootfs(f, []rootfsMember{{h: testRootfs[1].h, data: "x"}})[:700])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := listRootfs(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.Path != "." && !fs.ValidPath(m.Path) {
				t.Errorf("member %q listed", m.Path)
			}
		}
	})
}

// FuzzFill reads any bytes as each metadata file: a checkpoint or an
// error naming the file, never a panic.
func FuzzFill(f *testing.F) {
	for _, e := range []string{"podman", "crio", "containerd"} {
		for n, b := range engineRoot(f, e) {
			if n != "rootfs-diff.tar" {
				f.Add(n, b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, name string, b []byte) {
		c := &Checkpoint{Path: "fuzz"}
		if err := c.fill(map[string][]byte{name: b}); err == nil && !metaFiles[name] && c.Engine != "" {
			t.Errorf("engine %q from an unknown file %q", c.Engine, name)
		}
	})
}
