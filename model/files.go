package model

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/proto/images"
)

// Files is files.img: every file object of the dump by id.
type Files struct {
	List  []*images.FileEntry
	ByID  map[uint32]*images.FileEntry
	Order codec.ByteOrder // byte order of the image: socket addresses are words in it
	// Present is false when the dump has no files.img; then every lookup
	// of an id ([Model.File]) is a *MissingError.
	Present bool
}

// Files returns files.img by id. A dump without files.img has an empty
// index (Present false).
func (m *Model) Files() (*Files, error) {
	return m.files.get(func() (*Files, error) {
		idx := &Files{ByID: map[uint32]*images.FileEntry{}, Order: binary.LittleEndian}
		fs := m.d.Kind("FILES")
		if len(fs) == 0 {
			return idx, nil
		}
		img, err := fs[0].Image()
		if err != nil {
			return nil, err
		}
		idx.Order, idx.Present = img.Header.Order, true
		if idx.List, err = Messages[*images.FileEntry](fs[0]); err != nil {
			return nil, err
		}
		for _, f := range idx.List {
			idx.ByID[f.GetId()] = f
		}
		return idx, nil
	})
}

// File returns the file object id of files.img: nil when files.img has no
// such id, and a *MissingError when the dump has no files.img.
func (m *Model) File(id uint32) (*images.FileEntry, error) {
	idx, err := m.Files()
	if err != nil {
		return nil, err
	}
	if !idx.Present {
		return nil, m.missingErr("files.img", fmt.Sprintf("file %d and every file an fd names", id))
	}
	return idx.ByID[id], nil
}

// The rules every presentation follows for a file object.
//
// Path: the name of a regular file; of a FIFO, the name of the regular
// file its regf_id names (CRIU keeps a FIFO's path there); of a unix
// socket, its name by [UnixName]; "" for others.
//
// Open flags: the flags field of whichever per-type sub-message is set;
// a FIFO's are those of its regular file, as for the path (fifo_entry has
// no flags). A file with no flags field reports ok false.
//
// Deleted: a file whose remap (remap-fpath.img) is LINKED or GHOST: it was
// unlinked when dumped, and CRIU kept it linked elsewhere or as a ghost
// file. A PROCFS remap names a /proc file of a dead task; the file is not
// deleted.

// Path returns the path of file object f by the rule above.
func (idx *Files) Path(f *images.FileEntry) string {
	switch {
	case f == nil:
		return ""
	case f.GetReg() != nil:
		return f.GetReg().GetName()
	case f.GetFifo() != nil:
		if r := idx.ByID[f.GetFifo().GetRegfId()]; r != nil && r.GetReg() != nil {
			return r.GetReg().GetName()
		}
	case f.GetUsk() != nil:
		return UnixName(f.GetUsk().GetName())
	}
	return ""
}

// RegPath returns the path of regular file id, or "" and false.
func (idx *Files) RegPath(id uint64) (string, bool) {
	if id > 0xffffffff {
		return "", false
	}
	f := idx.ByID[uint32(id)]
	if f == nil || f.GetReg() == nil {
		return "", false
	}
	return f.GetReg().GetName(), true
}

// Flags returns the open flags of file object f by the rule above.
func (idx *Files) Flags(f *images.FileEntry) (uint32, bool) {
	if ff := f.GetFifo(); ff != nil {
		f = idx.ByID[ff.GetRegfId()]
	}
	if f == nil {
		return 0, false
	}
	var flags uint32
	found := false
	f.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsList() || fd.IsMap() {
			return true
		}
		ffd := fd.Message().Fields().ByName("flags")
		if ffd == nil || ffd.Kind() != protoreflect.Uint32Kind {
			return true
		}
		if sub := v.Message(); sub.Has(ffd) {
			flags, found = uint32(sub.Get(ffd).Uint()), true
		}
		return false
	})
	return flags, found
}

// UnixName renders the name of a unix socket as ss(8) does: a path, or
// "@name" for an abstract name (a leading NUL). The kernel counts the
// trailing NUL of a path bound with it in the address length, and CRIU
// keeps it; it is no part of the name and is dropped. An unnamed socket
// is "".
func UnixName(b []byte) string {
	if len(b) > 0 && b[0] == 0 {
		return "@" + string(b[1:])
	}
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return string(b)
}

// Remaps returns the remap type of every file that has one
// (remap-fpath.img), by the file's id.
func (m *Model) Remaps() (map[uint32]images.RemapType, error) {
	return m.remaps.get(func() (map[uint32]images.RemapType, error) {
		out := map[uint32]images.RemapType{}
		err := Each(m.d, "REMAP_FPATH", func(r *images.RemapFilePathEntry) { out[r.GetOrigId()] = r.GetRemapType() })
		return out, err
	})
}

// Deleted reports whether file id was deleted by the rule above.
func (m *Model) Deleted(id uint32) (bool, error) {
	rs, err := m.Remaps()
	if err != nil {
		return false, err
	}
	t, ok := rs[id]
	return ok && IsDeleted(t), nil
}

// IsDeleted reports whether a file with a remap of type t is deleted: t
// is LINKED or GHOST.
func IsDeleted(t images.RemapType) bool {
	return t == images.RemapType_LINKED || t == images.RemapType_GHOST
}

// FdTables is the fd table of every task and the owners of every file.
type FdTables struct {
	ByPID map[uint32][]*images.FdinfoEntry // in fdinfo-N.img order
	// Owners lists, by file id, the pids of the tasks that hold the file
	// open, in pstree order, each once.
	Owners map[uint32][]uint32

	missing []error // the images the tables went without
}

// Fds returns the fd table of task: the entries of fdinfo-N.img, N the
// files_id of ids-PID.img. A zombie has none; a live task whose ids or
// fdinfo image is missing is a *MissingError.
func (m *Model) Fds(t *Task) ([]*images.FdinfoEntry, error) {
	ids, err := m.IDs(t)
	if err != nil || ids == nil {
		return nil, err
	}
	f := m.d.FileFor("FDINFO", uint64(ids.GetFilesId()))
	if f == nil {
		return nil, m.missingErr(fileName("FDINFO", uint64(ids.GetFilesId())), fmt.Sprintf("the fds of pid %d", t.PID))
	}
	return Messages[*images.FdinfoEntry](f)
}

// FdTables returns the fd tables of every task. A task whose fd table is
// missing has none: the model records the missing image (see Missing),
// and the tables are built from the rest.
func (m *Model) FdTables() (*FdTables, error) {
	built := false
	ft, err := m.fds.get(func() (*FdTables, error) {
		built = true
		tree, err := m.Tree()
		if err != nil {
			return nil, err
		}
		ft := &FdTables{ByPID: map[uint32][]*images.FdinfoEntry{}, Owners: map[uint32][]uint32{}}
		for _, t := range tree.Tasks {
			fds, err := m.Fds(t)
			if err != nil && !IsMissing(err) {
				return nil, err
			}
			if err == nil && fds == nil {
				// No fds, as a zombie has, or no core to say it is one.
				_, err = m.Core(t)
			}
			if IsMissing(err) {
				ft.missing = append(ft.missing, err)
			}
			seen := map[uint32]bool{}
			for _, fe := range fds {
				ft.ByPID[t.PID] = append(ft.ByPID[t.PID], fe)
				if !seen[fe.GetId()] {
					seen[fe.GetId()] = true
					ft.Owners[fe.GetId()] = append(ft.Owners[fe.GetId()], t.PID)
				}
			}
		}
		return ft, nil
	})
	if !built && ft != nil {
		m.again(ft.missing...)
	}
	return ft, err
}
