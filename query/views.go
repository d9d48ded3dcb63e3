package query

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
	"github.com/critq/critq/proto/views"
)

// This file builds the joined views. Each builder reads only the images the
// fields in needs call for, prefetching them in parallel, and fills only
// those fields.

// model returns the joined model of the dump (package model): the process
// tree, files, fd tables and the rules on them that every presentation
// shares.
func (d *Dump) model() *model.Model { return model.Of(d.d) }

// tree returns the process tree.
func (d *Dump) tree() (*model.Tree, error) { return d.model().Tree() }

// files returns files.img by id, with the byte order of the image (socket
// addresses are words in the dumping host's order).
func (d *Dump) files() (*model.Files, error) { return d.model().Files() }

// fdTables maps every task to its fds (ids-<pid>.img gives the files_id of
// fdinfo-<files_id>.img) and every file id to the tasks that hold it. It
// reads the images in parallel first.
func (d *Dump) fdTables(ctx context.Context) (*model.FdTables, error) {
	return onceAs(d, "fdtables", func() (*model.FdTables, error) {
		t, err := d.tree()
		if err != nil {
			return nil, err
		}
		var idFiles []*dump.File
		for _, p := range t.Tasks {
			idFiles = append(idFiles, d.d.FileFor("IDS", uint64(p.PID)))
		}
		if err := prefetch(ctx, nonNil(idFiles...), readMessages); err != nil {
			return nil, err
		}
		var fdFiles []*dump.File
		for _, f := range idFiles {
			ids, err := model.First[*images.TaskKobjIdsEntry](f)
			if err != nil {
				return nil, err
			}
			if ids != nil {
				fdFiles = append(fdFiles, d.d.FileFor("FDINFO", uint64(ids.GetFilesId())))
			}
		}
		if err := prefetch(ctx, nonNil(fdFiles...), readMessages); err != nil {
			return nil, err
		}
		return d.model().FdTables()
	})
}

// regPath returns the path of regular file id; a missing files.img is
// recorded by the model.
func (d *Dump) regPath(idx *model.Files, id uint64) (string, bool) {
	if !idx.Present && id <= 0xffffffff {
		d.model().File(uint32(id))
	}
	return idx.RegPath(id)
}

// goOn returns err unless it is a missing image, which the model has
// recorded: a view goes on with the fields it would fill null.
func goOn(err error) error {
	if model.IsMissing(err) {
		return nil
	}
	return err
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
	for _, p := range t.Tasks {
		pid := uint64(p.PID)
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
	var idx *model.Files
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
	md := d.model()
	out := make([]*views.Task, 0, len(t.Tasks))
	for _, p := range t.Tasks {
		pid := p.PID
		task := &views.Task{
			Pid: proto.Uint32(pid), Ppid: proto.Uint32(p.PPID), Pgid: proto.Uint32(p.PGID),
			Sid: proto.Uint32(p.SID), Threads: p.Threads, Depth: proto.Uint32(p.Depth),
		}
		for _, c := range p.Children {
			task.Children = append(task.Children, c.PID)
		}
		// A missing image leaves its fields null; the model records it.
		if wantCore {
			core, err := md.Core(p)
			if goOn(err) != nil {
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
			mm, err := md.MM(p)
			if goOn(err) != nil {
				return nil, err
			}
			task.Mm = mm
			if mm != nil && idx != nil {
				if p, ok := d.regPath(idx, uint64(mm.GetExeFileId())); ok {
					task.Exe = proto.String(p)
				}
			}
		}
		if wantIDs {
			ids, err := md.IDs(p)
			if goOn(err) != nil {
				return nil, err
			}
			task.Ids = ids
		}
		if wantFS {
			fs, err := md.FS(p)
			if goOn(err) != nil {
				return nil, err
			}
			if fs != nil {
				if p, ok := d.regPath(idx, uint64(fs.GetCwdId())); ok {
					task.Cwd = proto.String(p)
				}
				if p, ok := d.regPath(idx, uint64(fs.GetRootId())); ok {
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
	for _, p := range t.Tasks {
		for _, fe := range ft.ByPID[p.PID] {
			fd := &views.Fd{
				Pid: proto.Uint32(p.PID), Fd: fe.Fd, Type: fe.Type, Kind: proto.String(fe.GetType().String()),
				Id: fe.Id, FdFlags: fe.Flags,
			}
			if facts.idx != nil && n.has(typeFD, "file") {
				fd.File = facts.idx.ByID[fe.GetId()]
			}
			fd.Flags, fd.Path, fd.Deleted, fd.Socket = facts.of(d, fe.GetId())
			out = append(out, fd)
		}
	}
	return out, nil
}

// fileFacts are what the fd and file views add to a file id: open flags,
// path, whether it is deleted, its socket. Each is read only when the
// message type asks for it.
type fileFacts struct {
	idx   *model.Files
	del   map[uint32]images.RemapType
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
		if ff.del, err = d.model().Remaps(); err != nil {
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
func (ff *fileFacts) of(d *Dump, id uint32) (flags *uint32, path *string, deleted *bool, sock *views.Socket) {
	if ff.idx != nil {
		f := ff.idx.ByID[id]
		if !ff.idx.Present {
			d.model().File(id) // records that files.img is missing
		}
		if fl, ok := ff.idx.Flags(f); ok {
			flags = proto.Uint32(fl)
		}
		if p := ff.idx.Path(f); p != "" {
			path = proto.String(p)
		}
	}
	if ff.del != nil {
		t, ok := ff.del[id]
		deleted = proto.Bool(ok && model.IsDeleted(t))
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
		var ft *model.FdTables
		if n.has(typeFile, "pids") {
			if ft, err = d.fdTables(ctx); err != nil {
				return nil, err
			}
		}
		out := make([]*views.File, 0, len(idx.List))
		for _, f := range idx.List {
			v := &views.File{Id: f.Id, Type: f.Type, Kind: proto.String(f.GetType().String()), Entry: f}
			v.Flags, v.Path, v.Deleted, v.Socket = facts.of(d, f.GetId())
			if ft != nil {
				v.Pids = ft.Owners[f.GetId()]
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
		var ft *model.FdTables
		if n.has(typeSocket, "pids") {
			if ft, err = d.fdTables(ctx); err != nil {
				return nil, err
			}
		}
		var queued map[uint32]uint64
		if n.has(typeSocket, "queued") {
			queued = map[uint32]uint64{}
			if err := model.Each(d.d, "SK_QUEUES", func(q *images.SkPacketEntry) { queued[q.GetIdFor()] += uint64(q.GetLength()) }); err != nil {
				return nil, err
			}
		}
		wantStream := n.any(typeSocket, "inq_len", "outq_len")
		var out []*views.Socket
		for _, f := range idx.List {
			s := socketOf(f, idx.Order)
			if s == nil {
				continue
			}
			if n.has(typeSocket, "file") {
				s.File = f
			}
			if ft != nil {
				s.Pids = ft.Owners[f.GetId()]
			}
			if queued != nil {
				s.Queued = proto.Uint64(queued[f.GetId()])
			}
			if wantStream && f.GetIsk() != nil {
				k := d.d.File("tcp-stream-" + strconv.FormatUint(uint64(s.GetIno()), 16) + ".img")
				ts, err := model.First[*images.TcpStreamEntry](k)
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
			LocalAddr: proto.String(model.UnixName(sk.GetName())), PeerIno: sk.Peer, Backlog: sk.Backlog,
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

// mounts builds the mounts view from the model's mounts, by namespace id.
func (d *Dump) mounts(ctx context.Context) ([]*views.Mount, error) {
	return onceAs(d, "mounts", func() ([]*views.Mount, error) {
		nss, err := d.model().Mounts()
		if err != nil {
			return nil, err
		}
		var out []*views.Mount
		for _, ns := range nss {
			for i, e := range ns.Entries {
				// views.mount restates mnt_entry's numbers: one payload.
				b, err := proto.Marshal(e)
				m := &views.Mount{}
				if err == nil {
					err = (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, m)
				}
				if err != nil {
					return nil, fmt.Errorf("%s: entry %d: %w", ns.File, i, err)
				}
				m.NsId = proto.Uint32(ns.NS)
				m.Type = proto.String(model.MountType(e))
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
		if d.d.File("pstree.img") != nil {
			for _, p := range t.Tasks {
				f := d.d.FileFor("PAGEMAP", uint64(p.PID))
				if f == nil {
					if _, err := d.model().Pagemap(p); goOn(err) != nil {
						return nil, err
					}
				}
				fs = append(fs, f)
			}
		} else {
			// A pre-dump has no process tree: its tasks are the pids of
			// its pagemap images.
			fs = sortByID(d.d.Kind("PAGEMAP"))
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
