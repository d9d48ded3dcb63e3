package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"cel.dev/cel-go/common/types"

	"github.com/critq/critq/container"
)

// rootfs returns the value of the rootfs variable: for a dump read from a
// checkpoint archive the members of its rootfs-diff.tar as maps {path,
// type, size, mode, uid, gid, user, group, mtime, link} (an empty list when
// the archive has none), and null for a dump folder.
func (d *Dump) rootfs() (any, error) {
	return d.once("rootfs", func() (any, error) {
		a := d.d.Archive()
		if a == nil {
			return types.NullValue, nil
		}
		ms, err := container.Rootfs(a.Path())
		if errors.Is(err, container.ErrNoRootfs) {
			return []any{}, nil
		}
		if err != nil {
			return nil, err
		}
		out := make([]any, len(ms))
		for i, m := range ms {
			out[i] = map[string]any{"path": m.Path, "type": m.Type, "size": m.Size, "mode": int64(m.Mode),
				"uid": int64(m.UID), "gid": int64(m.GID), "user": m.User, "group": m.Group, "mtime": m.MTime, "link": m.Link}
		}
		return out, nil
	})
}

// deletedFiles returns the value of the deleted_files variable: the paths
// of a checkpoint archive's deleted.files (an empty list without one), and
// null for a dump folder.
func (d *Dump) deletedFiles() (any, error) {
	return d.once("deleted_files", func() (any, error) {
		a := d.d.Archive()
		if a == nil {
			return types.NullValue, nil
		}
		b, err := a.ReadFile("deleted.files")
		if errors.Is(err, fs.ErrNotExist) {
			return []string{}, nil
		}
		if err != nil {
			return nil, err
		}
		var paths []string
		if err := json.Unmarshal(b, &paths); err != nil {
			return nil, fmt.Errorf("%s: deleted.files: %w", d.Name(), err)
		}
		if paths == nil {
			paths = []string{}
		}
		return paths, nil
	})
}
