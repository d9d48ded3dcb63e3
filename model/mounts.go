package model

import (
	"sort"
	"strconv"

	"github.com/critq/critq/proto/images"
)

// MountNS is one mountpoints-<ns>.img: the mounts of mount namespace NS.
type MountNS struct {
	NS      uint32 // the namespace id, from the file name
	File    string // the image's name, for errors
	Entries []*images.MntEntry
}

// Mounts returns every mountpoints-<ns>.img of the dump, by namespace id.
// A dump without mount images has none; a damaged image is an error
// naming the file, entry and offset.
func (m *Model) Mounts() ([]MountNS, error) {
	return m.mounts.get(func() ([]MountNS, error) {
		var out []MountNS
		for _, f := range m.d.Kind("MNTS") {
			es, err := Messages[*images.MntEntry](f)
			if err != nil {
				return nil, err
			}
			ns, _ := strconv.ParseUint(f.ID, 10, 32)
			out = append(out, MountNS{NS: uint32(ns), File: f.Name, Entries: es})
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].NS < out[j].NS })
		return out, nil
	})
}

// MountType is the filesystem type name of a mount, the one rule every
// presentation follows: the name the kernel gave (fsname) when CRIU
// recorded the type as AUTO, else the name of the Fstype enum ("PROC",
// "TMPFS").
func MountType(e *images.MntEntry) string {
	if e.GetFstype() == uint32(images.Fstype_AUTO) && e.GetFsname() != "" {
		return e.GetFsname()
	}
	return images.Fstype(e.GetFstype()).String()
}
