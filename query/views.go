package query

import (
	"context"
	"encoding/binary"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/proto/images"
	"github.com/critq/critq/proto/views"
)

// This file builds the joined views. Each builder reads only the images the
// fields in needs call for, prefetching them in parallel, and fills only
// those fields.

// messagesOf returns the entries of the first file of kind, or nil when
// the dump has none.
func messagesOf[T proto.Message](d *dump.Dump, kind string) ([]T, error) {
	fs := d.Kind(kind)
	if len(fs) == 0 {
		return nil, nil
	}
	msgs, err := fs[0].Messages()
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(msgs))
	for _, m := range msgs {
		if t, ok := m.(T); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// firstOf returns the first entry of f, or nil when f is nil or empty.
func firstOf[T proto.Message](f *dump.File) (T, error) {
	var zero T
	if f == nil {
		return zero, nil
	}
	m, err := f.First()
	if err != nil || m == nil {
		return zero, err
	}
	t, _ := m.(T)
	return t, nil
}

// pstree returns the entries of pstree.img and the depth of each task in
// the tree.
type treeInfo struct {
	tasks    []*images.PstreeEntry
	depth    map[uint32]uint32
	children map[uint32][]uint32
}

func (d *Dump) tree() (*treeInfo, error) {
	return onceAs(d, "pstree", func() (*treeInfo, error) {
		ps, err := messagesOf[*images.PstreeEntry](d.d, "PSTREE")
		if err != nil {
			return nil, err
		}
		t := &treeInfo{tasks: ps, depth: map[uint32]uint32{}, children: map[uint32][]uint32{}}
		known := map[uint32]bool{}
		for _, p := range ps {
			known[p.GetPid()] = true
		}
		for _, p := range ps {
			if known[p.GetPpid()] && p.GetPpid() != p.GetPid() {
				t.children[p.GetPpid()] = append(t.children[p.GetPpid()], p.GetPid())
			}
		}
		// pstree.img is in depth-first order, parents first; a parent met
		// later (or never) leaves the child at the depth of a root.
		for _, p := range ps {
			if dp, ok := t.depth[p.GetPpid()]; ok && known[p.GetPpid()] {
				t.depth[p.GetPid()] = dp + 1
			} else {
				t.depth[p.GetPid()] = 0
			}
		}
		return t, nil
	})
}

// fileIndex is files.img by id, with the byte order of the image (socket
// addresses are words in the dumping host's order).
type fileIndex struct {
	byID  map[uint32]*images.FileEntry
	list  []*images.FileEntry
	order binary.ByteOrder
}

func (d *Dump) files() (*fileIndex, error) {
	return onceAs(d, "files", func() (*fileIndex, error) {
		idx := &fileIndex{byID: map[uint32]*images.FileEntry{}, order: binary.LittleEndian}
		fs := d.d.Kind("FILES")
		if len(fs) == 0 {
			return idx, nil
		}
		img, err := fs[0].Image()
		if err != nil {
			return nil, err
		}
		idx.order = img.Header.Order
		idx.list, err = messagesOf[*images.FileEntry](d.d, "FILES")
		if err != nil {
			return nil, err
		}
		for _, f := range idx.list {
			idx.byID[f.GetId()] = f
		}
		return idx, nil
	})
}

// path returns the path of a file object: the name of a regular file (or of
// the file behind a FIFO), the name of a unix socket; "" for others.
func (idx *fileIndex) path(f *images.FileEntry) string {
	switch {
	case f == nil:
		return ""
	case f.GetReg() != nil:
		return f.GetReg().GetName()
	case f.GetFifo() != nil:
		if r := idx.byID[f.GetFifo().GetRegfId()]; r != nil && r.GetReg() != nil {
			return r.GetReg().GetName()
		}
	case f.GetUsk() != nil:
		return unixName(f.GetUsk().GetName())
	}
	return ""
}

// pathOf returns the path of regular file id, or "" and false.
func (idx *fileIndex) regPath(id uint64) (string, bool) {
	if id > 0xffffffff {
		return "", false
	}
	f := idx.byID[uint32(id)]
	if f == nil || f.GetReg() == nil {
		return "", false
	}
	return f.GetReg().GetName(), true
}

// unixName renders a unix socket name: a path, or "@name" for an abstract
// name (a leading NUL), as ss(8) does.
func unixName(b []byte) string {
	if len(b) > 0 && b[0] == 0 {
		return "@" + string(b[1:])
	}
	return string(b)
}

// fileFlags returns the open flags of a file object: the flags field of
// whichever per-type entry is set.
func fileFlags(f *images.FileEntry) (uint32, bool) {
	if f == nil {
		return 0, false
	}
	var flags uint32
	found := false
	f.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		ffd := fd.Message().Fields().ByName("flags")
		if ffd == nil || ffd.Kind() != protoreflect.Uint32Kind {
			return true
		}
		m := v.Message()
		if m.Has(ffd) {
			flags, found = uint32(m.Get(ffd).Uint()), true
		}
		return false
	})
	return flags, found
}

// deleted returns the ids of files that have a remap: unlinked files kept
// as ghost files or linked remaps.
func (d *Dump) deleted() (map[uint32]bool, error) {
	return onceAs(d, "remaps", func() (map[uint32]bool, error) {
		rs, err := messagesOf[*images.RemapFilePathEntry](d.d, "REMAP_FPATH")
		if err != nil {
			return nil, err
		}
		out := map[uint32]bool{}
		for _, r := range rs {
			if t := r.GetRemapType(); t == images.RemapType_LINKED || t == images.RemapType_GHOST {
				out[r.GetOrigId()] = true
			}
		}
		return out, nil
	})
}

// fdTables maps every task to its fds (ids-<pid>.img gives the files_id of
// fdinfo-<files_id>.img) and every file id to the tasks that hold it.
type fdTables struct {
	byPid  map[uint32][]*images.FdinfoEntry
	owners map[uint32][]uint32
}

func (d *Dump) fdTables(ctx context.Context) (*fdTables, error) {
	return onceAs(d, "fdtables", func() (*fdTables, error) {
		t, err := d.tree()
		if err != nil {
			return nil, err
		}
		var idFiles []*dump.File
		for _, p := range t.tasks {
			idFiles = append(idFiles, d.d.FileFor("IDS", uint64(p.GetPid())))
		}
		if err := prefetch(ctx, nonNil(idFiles...), readMessages); err != nil {
			return nil, err
		}
		filesID := make([]*dump.File, len(t.tasks))
		for i, f := range idFiles {
			ids, err := firstOf[*images.TaskKobjIdsEntry](f)
			if err != nil {
				return nil, err
			}
			if ids != nil {
				filesID[i] = d.d.FileFor("FDINFO", uint64(ids.GetFilesId()))
			}
		}
		if err := prefetch(ctx, nonNil(filesID...), readMessages); err != nil {
			return nil, err
		}
		ft := &fdTables{byPid: map[uint32][]*images.FdinfoEntry{}, owners: map[uint32][]uint32{}}
		for i, p := range t.tasks {
			if filesID[i] == nil {
				continue
			}
			msgs, err := filesID[i].Messages()
			if err != nil {
				return nil, err
			}
			seen := map[uint32]bool{}
			for _, m := range msgs {
				fe, ok := m.(*images.FdinfoEntry)
				if !ok {
					continue
				}
				ft.byPid[p.GetPid()] = append(ft.byPid[p.GetPid()], fe)
				if !seen[fe.GetId()] {
					seen[fe.GetId()] = true
					ft.owners[fe.GetId()] = append(ft.owners[fe.GetId()], p.GetPid())
				}
			}
		}
		return ft, nil
	})
}

// tasks builds the tasks view.
func (d *Dump) tasks(ctx context.Context, n *needs) ([]*views.Task, error) {
	return onceAs(d, "tasks|"+n.signature(typeTask, typeVMA, typeFD, typeSocket), func() ([]*views.Task, error) {
		return d.buildTasks(ctx, n)
	})
}

func (d *Dump) buildTasks(ctx context.Context, n *needs) ([]*views.Task, error) {
	t, err := d.tree()
	if err != nil {
		return nil, err
	}
	wantCore := n.any(typeTask, "comm", "state", "exit_code", "creds", "rlimits", "core")
	wantMM := n.any(typeTask, "mm", "exe")
	wantIDs := n.has(typeTask, "ids")
	wantFS := n.any(typeTask, "cwd", "root")
	wantFiles := n.any(typeTask, "exe", "cwd", "root")
	var files []*dump.File
	for _, p := range t.tasks {
		pid := uint64(p.GetPid())
		if wantCore {
			files = append(files, d.d.FileFor("CORE", pid))
		}
		if wantMM {
			files = append(files, d.d.FileFor("MM", pid))
		}
		if wantIDs {
			files = append(files, d.d.FileFor("IDS", pid))
		}
		if wantFS {
			files = append(files, d.d.FileFor("FS", pid))
		}
	}
	if err := prefetch(ctx, nonNil(files...), readMessages); err != nil {
		return nil, err
	}
	var idx *fileIndex
	if wantFiles {
		if idx, err = d.files(); err != nil {
			return nil, err
		}
	}
	var vmas map[uint32][]*views.Vma
	if n.has(typeTask, "vmas") {
		all, err := d.vmas(ctx, n)
		if err != nil {
			return nil, err
		}
		vmas = map[uint32][]*views.Vma{}
		for _, v := range all {
			vmas[v.GetPid()] = append(vmas[v.GetPid()], v)
		}
	}
	var fds map[uint32][]*views.Fd
	if n.has(typeTask, "fds") {
		all, err := d.fds(ctx, n)
		if err != nil {
			return nil, err
		}
		fds = map[uint32][]*views.Fd{}
		for _, f := range all {
			fds[f.GetPid()] = append(fds[f.GetPid()], f)
		}
	}
	out := make([]*views.Task, 0, len(t.tasks))
	for _, p := range t.tasks {
		pid := p.GetPid()
		task := &views.Task{
			Pid: proto.Uint32(pid), Ppid: proto.Uint32(p.GetPpid()), Pgid: proto.Uint32(p.GetPgid()),
			Sid: proto.Uint32(p.GetSid()), Threads: p.GetThreads(),
			Children: t.children[pid], Depth: proto.Uint32(t.depth[pid]),
		}
		if wantCore {
			core, err := firstOf[*images.CoreEntry](d.d.FileFor("CORE", uint64(pid)))
			if err != nil {
				return nil, err
			}
			if core != nil {
				task.Core = core
				if tc := core.GetTc(); tc != nil {
					task.Comm = tc.Comm
					task.State = tc.TaskState
					task.ExitCode = tc.ExitCode
					task.Rlimits = tc.GetRlimits().GetRlimits()
				}
				task.Creds = core.GetThreadCore().GetCreds()
			}
		}
		if wantMM {
			mm, err := firstOf[*images.MmEntry](d.d.FileFor("MM", uint64(pid)))
			if err != nil {
				return nil, err
			}
			task.Mm = mm
			if mm != nil && idx != nil {
				if p, ok := idx.regPath(uint64(mm.GetExeFileId())); ok {
					task.Exe = proto.String(p)
				}
			}
		}
		if wantIDs {
			if task.Ids, err = firstOf[*images.TaskKobjIdsEntry](d.d.FileFor("IDS", uint64(pid))); err != nil {
				return nil, err
			}
		}
		if wantFS {
			fs, err := firstOf[*images.FsEntry](d.d.FileFor("FS", uint64(pid)))
			if err != nil {
				return nil, err
			}
			if fs != nil {
				if p, ok := idx.regPath(uint64(fs.GetCwdId())); ok {
					task.Cwd = proto.String(p)
				}
				if p, ok := idx.regPath(uint64(fs.GetRootId())); ok {
					task.Root = proto.String(p)
				}
			}
		}
		task.Vmas = vmas[pid]
		task.Fds = fds[pid]
		out = append(out, task)
	}
	return out, d.taskMemory(ctx, n, out)
}

// fds builds the fds view.
func (d *Dump) fds(ctx context.Context, n *needs) ([]*views.Fd, error) {
	return onceAs(d, "fds|"+n.signature(typeFD, typeSocket), func() ([]*views.Fd, error) {
		return d.buildFDs(ctx, n)
	})
}

func (d *Dump) buildFDs(ctx context.Context, n *needs) ([]*views.Fd, error) {
	t, err := d.tree()
	if err != nil {
		return nil, err
	}
	ft, err := d.fdTables(ctx)
	if err != nil {
		return nil, err
	}
	facts, err := d.fileFacts(ctx, n, typeFD)
	if err != nil {
		return nil, err
	}
	var out []*views.Fd
	for _, p := range t.tasks {
		for _, fe := range ft.byPid[p.GetPid()] {
			fd := &views.Fd{
				Pid: p.Pid, Fd: fe.Fd, Type: fe.Type, Kind: proto.String(fe.GetType().String()),
				Id: fe.Id, FdFlags: fe.Flags,
			}
			if facts.idx != nil && n.has(typeFD, "file") {
				fd.File = facts.idx.byID[fe.GetId()]
			}
			fd.Flags, fd.Path, fd.Deleted, fd.Socket = facts.of(fe.GetId())
			out = append(out, fd)
		}
	}
	return out, nil
}

// fileFacts are what the fd and file views add to a file id: open flags,
// path, whether it is deleted, its socket. Each is read only when the
// message type asks for it.
type fileFacts struct {
	idx   *fileIndex
	del   map[uint32]bool
	socks map[uint32]*views.Socket
}

func (d *Dump) fileFacts(ctx context.Context, n *needs, msg string) (*fileFacts, error) {
	ff := &fileFacts{}
	var err error
	if n.any(msg, "flags", "path", "file", "entry") {
		if ff.idx, err = d.files(); err != nil {
			return nil, err
		}
	}
	if n.has(msg, "deleted") {
		if ff.del, err = d.deleted(); err != nil {
			return nil, err
		}
	}
	if n.has(msg, "socket") {
		all, err := d.sockets(ctx, n)
		if err != nil {
			return nil, err
		}
		ff.socks = map[uint32]*views.Socket{}
		for _, s := range all {
			ff.socks[s.GetId()] = s
		}
	}
	return ff, nil
}

// of returns the facts of file id; nil pointers for what is unknown.
func (ff *fileFacts) of(id uint32) (flags *uint32, path *string, deleted *bool, sock *views.Socket) {
	if ff.idx != nil {
		f := ff.idx.byID[id]
		if fl, ok := fileFlags(f); ok {
			flags = proto.Uint32(fl)
		}
		if p := ff.idx.path(f); p != "" {
			path = proto.String(p)
		}
	}
	if ff.del != nil {
		deleted = proto.Bool(ff.del[id])
	}
	return flags, path, deleted, ff.socks[id]
}

// filesView builds the files view.
func (d *Dump) filesView(ctx context.Context, n *needs) ([]*views.File, error) {
	return onceAs(d, "filesview|"+n.signature(typeFile, typeSocket), func() ([]*views.File, error) {
		facts, err := d.fileFacts(ctx, n, typeFile)
		if err != nil {
			return nil, err
		}
		idx, err := d.files()
		if err != nil {
			return nil, err
		}
		var ft *fdTables
		if n.has(typeFile, "pids") {
			if ft, err = d.fdTables(ctx); err != nil {
				return nil, err
			}
		}
		out := make([]*views.File, 0, len(idx.list))
		for _, f := range idx.list {
			v := &views.File{Id: f.Id, Type: f.Type, Kind: proto.String(f.GetType().String()), Entry: f}
			v.Flags, v.Path, v.Deleted, v.Socket = facts.of(f.GetId())
			if ft != nil {
				v.Pids = ft.owners[f.GetId()]
			}
			out = append(out, v)
		}
		return out, nil
	})
}

// Address families and the kinds CRIU stores sockets as.
const (
	afUnix    = 1
	afNetlink = 16
	afPacket  = 17
)

// sockets builds the sockets view.
func (d *Dump) sockets(ctx context.Context, n *needs) ([]*views.Socket, error) {
	return onceAs(d, "sockets|"+n.signature(typeSocket), func() ([]*views.Socket, error) {
		idx, err := d.files()
		if err != nil {
			return nil, err
		}
		var ft *fdTables
		if n.has(typeSocket, "pids") {
			if ft, err = d.fdTables(ctx); err != nil {
				return nil, err
			}
		}
		var queued map[uint32]uint64
		if n.has(typeSocket, "queued") {
			qs, err := messagesOf[*images.SkPacketEntry](d.d, "SK_QUEUES")
			if err != nil {
				return nil, err
			}
			queued = map[uint32]uint64{}
			for _, q := range qs {
				queued[q.GetIdFor()] += uint64(q.GetLength())
			}
		}
		wantStream := n.any(typeSocket, "inq_len", "outq_len")
		var out []*views.Socket
		for _, f := range idx.list {
			s := socketOf(f, idx.order)
			if s == nil {
				continue
			}
			if n.has(typeSocket, "file") {
				s.File = f
			}
			if ft != nil {
				s.Pids = ft.owners[f.GetId()]
			}
			if queued != nil {
				s.Queued = proto.Uint64(queued[f.GetId()])
			}
			if wantStream && f.GetIsk() != nil {
				k := d.d.File("tcp-stream-" + strconv.FormatUint(uint64(s.GetIno()), 16) + ".img")
				ts, err := firstOf[*images.TcpStreamEntry](k)
				if err != nil {
					return nil, err
				}
				if ts != nil {
					s.InqLen = proto.Uint64(uint64(ts.GetInqLen()))
					s.OutqLen = proto.Uint64(uint64(ts.GetOutqLen()))
				}
			}
			out = append(out, s)
		}
		return out, nil
	})
}

// socketOf returns the socket view of a file object, or nil when it is no
// socket.
func socketOf(f *images.FileEntry, order binary.ByteOrder) *views.Socket {
	switch {
	case f.GetIsk() != nil:
		sk := f.GetIsk()
		return &views.Socket{
			Id: f.Id, Ino: sk.Ino, Family: sk.Family, Type: sk.Type, Proto: sk.Proto, State: sk.State,
			LocalAddr: proto.String(ipText(sk.GetSrcAddr(), order)), LocalPort: sk.SrcPort,
			PeerAddr: proto.String(ipText(sk.GetDstAddr(), order)), PeerPort: sk.DstPort,
			Backlog: sk.Backlog,
		}
	case f.GetUsk() != nil:
		sk := f.GetUsk()
		return &views.Socket{
			Id: f.Id, Ino: sk.Ino, Family: proto.Uint32(afUnix), Type: sk.Type, State: sk.State,
			LocalAddr: proto.String(unixName(sk.GetName())), PeerIno: sk.Peer, Backlog: sk.Backlog,
		}
	case f.GetNlsk() != nil:
		sk := f.GetNlsk()
		return &views.Socket{
			Id: f.Id, Ino: sk.Ino, Family: proto.Uint32(afNetlink), Proto: sk.Protocol, State: sk.State,
			LocalPort: sk.Portid, PeerPort: sk.DstPortid,
		}
	case f.GetPsk() != nil:
		sk := f.GetPsk()
		return &views.Socket{Id: f.Id, Family: proto.Uint32(afPacket), Type: sk.Type, Proto: sk.Protocol}
	}
	return nil
}

// ipText renders the words of an ipadd field: each word holds four address
// bytes in network order, read as a u32 in the dumping host's byte order.
// One word is IPv4, four are IPv6; other lengths give "".
func ipText(words []uint32, order binary.ByteOrder) string {
	s, _ := annot.FormatIP(words, order)
	return s
}

// mounts builds the mounts view: every mountpoints-<ns>.img by namespace id.
func (d *Dump) mounts(ctx context.Context) ([]*views.Mount, error) {
	return onceAs(d, "mounts", func() ([]*views.Mount, error) {
		fs := sortByID(d.d.Kind("MNTS"))
		if err := prefetch(ctx, fs, readImage); err != nil {
			return nil, err
		}
		var out []*views.Mount
		for _, f := range fs {
			img, err := f.Image()
			if err != nil {
				return nil, err
			}
			ns, _ := strconv.ParseUint(f.ID, 10, 32)
			for _, e := range img.Entries {
				// views.mount restates mnt_entry's numbers: the payload is one.
				m := &views.Mount{}
				if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(e.Payload, m); err != nil {
					return nil, &codec.Error{File: f.Name, Kind: img.Header.Kind.Name, Entry: e.Index, Offset: e.Offset, Err: err}
				}
				m.NsId = proto.Uint32(uint32(ns))
				typ := images.Fstype(m.GetFstype()).String()
				if m.GetFsname() != "" && m.GetFstype() == uint32(images.Fstype_AUTO) {
					typ = m.GetFsname()
				}
				m.Type = proto.String(typ)
				out = append(out, m)
			}
		}
		return out, nil
	})
}

// Pagemap flags (criu/include/pagemap.h).
const (
	peParent  = 1 << 0
	pePresent = 1 << 2
)

// pagemaps builds the pagemaps view: the task pagemaps in pstree order,
// then the shared memory pagemaps by id.
func (d *Dump) pagemaps(ctx context.Context) ([]*views.Pagemap, error) {
	return onceAs(d, "pagemaps", func() ([]*views.Pagemap, error) {
		t, err := d.tree()
		if err != nil {
			return nil, err
		}
		var fs []*dump.File
		for _, p := range t.tasks {
			fs = append(fs, d.d.FileFor("PAGEMAP", uint64(p.GetPid())))
		}
		fs = nonNil(fs...)
		shmem := sortByID(d.d.Kind("SHMEM_PAGEMAP"))
		if err := prefetch(ctx, append(append([]*dump.File(nil), fs...), shmem...), readMessages); err != nil {
			return nil, err
		}
		var out []*views.Pagemap
		for _, f := range append(fs, shmem...) {
			msgs, err := f.Messages()
			if err != nil {
				return nil, err
			}
			id, _ := strconv.ParseUint(f.ID, 10, 64)
			var pagesID *uint32
			var off uint64
			for _, m := range msgs {
				switch e := m.(type) {
				case *images.PagemapHead:
					pagesID = e.PagesId
				case *images.PagemapEntry:
					pm := normalisePagemap(e)
					pm.PagesId = pagesID
					if f.Kind.Name == "SHMEM_PAGEMAP" {
						pm.Shmid = proto.Uint64(id)
					} else {
						pm.Pid = proto.Uint32(uint32(id))
					}
					if pm.GetFlags()&pePresent != 0 {
						pm.Offset = proto.Uint64(off)
						off += pm.GetNrPages()
					}
					out = append(out, pm)
				}
			}
		}
		return out, nil
	})
}

// normalisePagemap applies CRIU's rules for old entries (format.md 5.2):
// in_parent sets PE_PARENT, absent flags mean PE_PRESENT, absent nr_pages
// is compat_nr_pages.
func normalisePagemap(e *images.PagemapEntry) *views.Pagemap {
	pm := &views.Pagemap{Vaddr: e.Vaddr, InParent: e.InParent}
	flags := e.GetFlags()
	switch {
	case e.GetInParent():
		flags |= peParent
	case e.Flags == nil:
		flags = pePresent
	}
	pm.Flags = proto.Uint32(flags)
	if e.NrPages != nil {
		pm.NrPages = e.NrPages
	} else {
		pm.NrPages = proto.Uint64(uint64(e.GetCompatNrPages()))
	}
	return pm
}
