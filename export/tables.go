package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"

	"github.com/critq/critq/container"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/internal/fileout"
	"github.com/critq/critq/mem"
	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
	"github.com/critq/critq/proto/views"
	"github.com/critq/critq/query"
)

// table is the rows of one view, ready to write.
type table struct {
	rows int
	// write writes the rows to a temporary file that Commit puts at dst.
	write func(dst, format string) (*fileout.File, error)
}

func newTable[T any](rows []T) *table {
	return &table{rows: len(rows), write: func(dst, format string) (*fileout.File, error) {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		f, err := fileout.Create(dst, 0o644)
		if err != nil {
			return nil, err
		}
		if format == "ndjson" {
			err = writeNDJSON(f, rows)
		} else {
			err = writeParquet(f, rows)
		}
		if err != nil {
			f.Abort()
			return nil, err
		}
		return f, nil
	}}
}

func writeParquet[T any](w io.Writer, rows []T) error {
	pw := parquet.NewGenericWriter[T](w,
		parquet.KeyValueMetadata("critq.schema_version", strconv.Itoa(SchemaVersion)),
		parquet.Compression(&parquet.Zstd),
		parquet.CreatedBy("critq", "", ""),
	)
	if _, err := pw.Write(rows); err != nil {
		return err
	}
	return pw.Close()
}

func writeNDJSON[T any](w io.Writer, rows []T) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range rows {
		if err := enc.Encode(&rows[i]); err != nil {
			return err
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// opt returns a pointer to the field's value when it is set.
func optString(set bool, v string) *string {
	if !set {
		return nil
	}
	return &v
}

func optU32(set bool, v uint32) *uint32 {
	if !set {
		return nil
	}
	return &v
}

func optU64(set bool, v uint64) *uint64 {
	if !set {
		return nil
	}
	return &v
}

// enumName is a value's name in a crit dict table with prefix, or its
// number when the table has no name for it.
func enumName(table, field, prefix string, v uint32) string {
	if n, ok := flagnames.Name(flagnames.Dict(table, field), uint64(v)); ok {
		return prefix + n
	}
	return strconv.FormatUint(uint64(v), 10)
}

func hexAddr(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

// buildTables reads the views of d that opts asks for, and says which
// images they needed and did not have (query.Dump.Warnings).
func buildTables(ctx context.Context, d *dump.Dump, meta Dump, opts Options) (map[string]*table, []string, error) {
	qd := query.NewDump(d)
	out, err := readTables(ctx, qd, d, meta, opts)
	if err != nil {
		return nil, nil, err
	}
	return out, qd.Warnings(), nil
}

func readTables(ctx context.Context, qd *query.Dump, d *dump.Dump, meta Dump, opts Options) (map[string]*table, error) {
	want := map[string]bool{}
	for _, v := range opts.Views {
		want[v] = true
	}
	out := map[string]*table{}
	var pms []*views.Pagemap
	if want["pagemaps"] || want["vmas"] || want["pagehashes"] {
		var err error
		if pms, err = query.ViewList[*views.Pagemap](ctx, qd, "pagemaps"); err != nil {
			return nil, err
		}
	}
	if want["tasks"] || want["threads"] {
		ts, err := query.ViewList[*views.Task](ctx, qd, "tasks")
		if err != nil {
			return nil, err
		}
		if want["tasks"] {
			mem, err := taskMemory(ctx, qd)
			if err != nil {
				return nil, err
			}
			out["tasks"] = newTable(taskRows(meta, ts, mem))
		}
		if want["threads"] {
			rows, err := threadRows(d, meta, ts)
			if err != nil {
				return nil, err
			}
			out["threads"] = newTable(rows)
		}
	}
	if want["vmas"] {
		vs, err := query.ViewList[*views.Vma](ctx, qd, "vmas")
		if err != nil {
			return nil, err
		}
		out["vmas"] = newTable(vmaRows(meta, vs, pms))
	}
	if want["fds"] {
		fs, err := query.ViewList[*views.Fd](ctx, qd, "fds")
		if err != nil {
			return nil, err
		}
		rows := make([]FdRow, 0, len(fs))
		for _, f := range fs {
			r := FdRow{Dump: meta, PID: f.GetPid(), Fd: f.GetFd(), Kind: f.GetKind(), FileID: f.GetId(),
				FdFlags: f.GetFdFlags(), Flags: optU32(f.Flags != nil, f.GetFlags()),
				Path: optString(f.Path != nil, f.GetPath()), Deleted: f.GetDeleted()}
			if s := f.GetSocket(); s != nil {
				r.SocketIno = ptr(s.GetIno())
			}
			rows = append(rows, r)
		}
		out["fds"] = newTable(rows)
	}
	if want["files"] {
		fs, err := query.ViewList[*views.File](ctx, qd, "files")
		if err != nil {
			return nil, err
		}
		rows := make([]FileRow, 0, len(fs))
		for _, f := range fs {
			r := FileRow{Dump: meta, FileID: f.GetId(), Kind: f.GetKind(), Flags: optU32(f.Flags != nil, f.GetFlags()),
				Path: optString(f.Path != nil, f.GetPath()), Deleted: f.GetDeleted(), PIDs: nonNil(f.GetPids())}
			if reg := f.GetEntry().GetReg(); reg != nil {
				r.Size = optU64(reg.Size != nil, reg.GetSize())
				r.Pos = ptr(reg.GetPos())
				r.Mode = optU32(reg.Mode != nil, reg.GetMode())
			}
			rows = append(rows, r)
		}
		out["files"] = newTable(rows)
	}
	if want["sockets"] {
		ss, err := query.ViewList[*views.Socket](ctx, qd, "sockets")
		if err != nil {
			return nil, err
		}
		rows := make([]SocketRow, 0, len(ss))
		for _, s := range ss {
			rows = append(rows, SocketRow{Dump: meta, FileID: s.GetId(), Ino: s.GetIno(),
				Family: enumName("sk", "family", "AF_", s.GetFamily()), Type: enumName("sk", "type", "SOCK_", s.GetType()),
				Proto: s.GetProto(), State: enumName("sk", "state", "TCP_", s.GetState()),
				LocalAddr: optString(s.LocalAddr != nil, s.GetLocalAddr()), LocalPort: optU32(s.LocalPort != nil, s.GetLocalPort()),
				PeerAddr: optString(s.PeerAddr != nil, s.GetPeerAddr()), PeerPort: optU32(s.PeerPort != nil, s.GetPeerPort()),
				PeerIno: optU32(s.PeerIno != nil, s.GetPeerIno()), PIDs: nonNil(s.GetPids()),
				InqLen: optU64(s.InqLen != nil, s.GetInqLen()), OutqLen: optU64(s.OutqLen != nil, s.GetOutqLen()),
				Queued: optU64(s.Queued != nil, s.GetQueued()), Backlog: optU32(s.Backlog != nil, s.GetBacklog())})
		}
		out["sockets"] = newTable(rows)
	}
	if want["mounts"] {
		ms, err := query.ViewList[*views.Mount](ctx, qd, "mounts")
		if err != nil {
			return nil, err
		}
		rows := make([]MountRow, 0, len(ms))
		for _, m := range ms {
			rows = append(rows, MountRow{Dump: meta, NsID: m.GetNsId(), MntID: m.GetMntId(), ParentMntID: m.GetParentMntId(),
				Type: m.GetType(), Mountpoint: m.GetMountpoint(), Root: m.GetRoot(),
				Source: optString(m.Source != nil, m.GetSource()), Options: optString(m.Options != nil, m.GetOptions()),
				RootDev: annot.FormatDev(uint64(m.GetRootDev()), false),
				Flags:   m.GetFlags(), SharedID: m.GetSharedId(), MasterID: m.GetMasterId(), ExtMount: m.GetExtMount(),
				Deleted: m.GetDeleted()})
		}
		out["mounts"] = newTable(rows)
	}
	if want["pagemaps"] {
		rows := make([]PagemapRow, 0, len(pms))
		for _, p := range pms {
			r := PagemapRow{Dump: meta, PagesID: p.GetPagesId(), Vaddr: p.GetVaddr(), VaddrHex: hexAddr(p.GetVaddr()),
				NrPages: p.GetNrPages(), Flags: p.GetFlags(), InParent: p.GetInParent(),
				Offset: optU64(p.Offset != nil, p.GetOffset())}
			if p.Pid != nil {
				r.PID = ptr(p.GetPid())
			}
			if p.Shmid != nil {
				r.Shmid = ptr(p.GetShmid())
			}
			rows = append(rows, r)
		}
		out["pagemaps"] = newTable(rows)
	}
	if want["images"] {
		rows, err := imageRows(d, meta)
		if err != nil {
			return nil, err
		}
		out["images"] = newTable(rows)
	}
	if want["pagehashes"] {
		rows, err := pageHashRows(ctx, d, meta, pms)
		if err != nil {
			return nil, err
		}
		out["pagehashes"] = newTable(rows)
	}
	return out, nil
}

// nonNil keeps an empty list an empty list (not a null) in the output.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// memoryQuery reads what the tasks view fills only when a query names it:
// each task's command line, and why it could not be read.
var memoryQuery = sync.OnceValues(func() (*query.Query, error) {
	return query.Compile(`tasks.map(t, [t.cmdline, has(t.mem_error) ? [t.mem_error] : []])`)
})

// taskMemory returns, per task in tree order, its command line and the
// error of reading it ("" when read).
func taskMemory(ctx context.Context, qd *query.Dump) ([][][]string, error) {
	q, err := memoryQuery()
	if err != nil {
		return nil, err
	}
	v, err := q.Eval(ctx, qd)
	if err != nil {
		return nil, err
	}
	native, err := v.ConvertToNative(reflect.TypeOf([][][]string{}))
	if err != nil {
		return nil, err
	}
	return native.([][][]string), nil
}

// taskRows makes the rows of the tasks view; mem is taskMemory's answer.
func taskRows(meta Dump, ts []*views.Task, mem [][][]string) []TaskRow {
	rows := make([]TaskRow, 0, len(ts))
	for i, t := range ts {
		r := TaskRow{Dump: meta, PID: t.GetPid(), PPID: t.GetPpid(), PGID: t.GetPgid(), SID: t.GetSid(), Depth: t.GetDepth(),
			Comm: optString(t.Comm != nil, t.GetComm()), ExitCode: optU32(t.ExitCode != nil, t.GetExitCode()),
			Exe: optString(t.Exe != nil, t.GetExe()), Cwd: optString(t.Cwd != nil, t.GetCwd()),
			Root: optString(t.Root != nil, t.GetRoot()), Threads: nonNil(t.GetThreads()), Children: nonNil(t.GetChildren()),
			Cmdline: []string{}}
		if i < len(mem) {
			r.Cmdline = nonNil(mem[i][0])
			if len(mem[i][1]) > 0 {
				r.MemError = &mem[i][1][0]
			}
		}
		if t.State != nil {
			r.State = ptr(enumName("gen", "task_state", "", t.GetState()))
		}
		if c := t.GetCreds(); c != nil {
			r.UID, r.GID, r.EUID, r.EGID = ptr(c.GetUid()), ptr(c.GetGid()), ptr(c.GetEuid()), ptr(c.GetEgid())
		}
		rows = append(rows, r)
	}
	return rows
}

func threadRows(d *dump.Dump, meta Dump, ts []*views.Task) ([]ThreadRow, error) {
	var rows []ThreadRow
	for _, t := range ts {
		for _, tid := range t.GetThreads() {
			r := ThreadRow{Dump: meta, PID: t.GetPid(), TID: tid}
			c, err := model.First[*images.CoreEntry](d.FileFor("CORE", uint64(tid)))
			if err != nil {
				return nil, err
			}
			if c == nil {
				rows = append(rows, r)
				continue
			}
			th := c.GetThreadCore()
			switch {
			case th.GetComm() != "":
				r.Comm = ptr(th.GetComm())
			case tid == t.GetPid() && c.GetTc() != nil:
				r.Comm = ptr(c.GetTc().GetComm())
			}
			if th != nil {
				r.SchedPolicy = optU32(th.SchedPolicy != nil, th.GetSchedPolicy())
				r.SchedPrio = optU32(th.SchedPrio != nil, th.GetSchedPrio())
				if th.SchedNice != nil {
					r.SchedNice = ptr(th.GetSchedNice())
				}
				r.BlockedSigset = optU64(th.BlkSigset != nil, th.GetBlkSigset())
				r.PendingSignals = uint32(len(th.GetSignalsP().GetSignals()))
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// pageRun is one run of pages of a pagemap, for counting per VMA.
type pageRun struct {
	start, end uint64 // bytes
	parent     bool
}

func vmaRows(meta Dump, vs []*views.Vma, pms []*views.Pagemap) []VMARow {
	const pageSize = 4096
	runs := map[uint32][]pageRun{}
	for _, p := range pms {
		if p.Pid == nil {
			continue
		}
		runs[p.GetPid()] = append(runs[p.GetPid()], pageRun{p.GetVaddr(), p.GetVaddr() + p.GetNrPages()*pageSize, p.GetInParent()})
	}
	for _, rs := range runs {
		sort.Slice(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
	}
	statusNames := flagnames.Table("mmap.status")
	rows := make([]VMARow, 0, len(vs))
	for _, v := range vs {
		r := VMARow{Dump: meta, PID: v.GetPid(), Start: v.GetStart(), End: v.GetEnd(), StartHex: hexAddr(v.GetStart()),
			EndHex: hexAddr(v.GetEnd()), Size: v.GetSize(), Pgoff: v.GetPgoff(), Prot: v.GetProt(),
			Perms: flagnames.Perms(v.GetProt(), v.GetFlags()), Flags: v.GetFlags(), Status: v.GetStatus(),
			StatusNames: flagNames(statusNames, uint64(v.GetStatus())), Shmid: v.GetShmid(),
			Path: optString(v.Path != nil, v.GetPath())}
		rs := runs[v.GetPid()]
		i := sort.Search(len(rs), func(i int) bool { return rs[i].end > v.GetStart() })
		for ; i < len(rs) && rs[i].start < v.GetEnd(); i++ {
			lo, hi := max(rs[i].start, v.GetStart()), min(rs[i].end, v.GetEnd())
			if hi <= lo {
				continue
			}
			if rs[i].parent {
				r.PagesInParent += (hi - lo) / pageSize
			} else {
				r.PagesDumped += (hi - lo) / pageSize
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// flagNames lists the names of the bits of v in table t.
func flagNames(t []flagnames.Flag, v uint64) []string {
	out := []string{}
	if v == 0 {
		return out
	}
	for _, s := range strings.Split(flagnames.Format(t, v), " | ") {
		if s != "" && s != "0" {
			out = append(out, s)
		}
	}
	return out
}

func imageRows(d *dump.Dump, meta Dump) ([]ImageRow, error) {
	var rows []ImageRow
	for _, f := range d.Files() {
		r := ImageRow{Dump: meta, Name: f.Name, Size: f.Size}
		if f.Kind != nil {
			r.Kind = ptr(f.Kind.Name)
			if f.Kind.Decodable() {
				img, err := f.Image()
				if err != nil {
					return nil, err
				}
				r.Entries = ptr(int64(len(img.Entries)))
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func pageHashRows(ctx context.Context, d *dump.Dump, meta Dump, pms []*views.Pagemap) ([]PageHashRow, error) {
	m := mem.Open(d)
	defer m.Close()
	var rows []PageHashRow
	const pageSize = 4096
	for _, p := range pms {
		if p.Pid == nil || p.GetInParent() || p.Offset == nil {
			continue
		}
		for i := range p.GetNrPages() {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			addr := p.GetVaddr() + i*pageSize
			b, err := m.Read(p.GetPid(), addr, pageSize)
			if err != nil {
				return nil, err
			}
			sum := sha256.Sum256(b)
			rows = append(rows, PageHashRow{Dump: meta, PID: p.GetPid(), Vaddr: addr, VaddrHex: hexAddr(addr),
				SHA256: hex.EncodeToString(sum[:])})
		}
	}
	return rows, nil
}

// dumpMeta fills the columns that say where rows come from: the
// container fields as package container reads them (the same names
// critq inspect shows), and the node from the UTS namespace image.
func dumpMeta(d *dump.Dump, path string) (Dump, *container.Checkpoint, error) {
	meta := Dump{DumpPath: path}
	var cp *container.Checkpoint
	if a := d.Archive(); a != nil {
		var err error
		if cp, err = container.FromArchive(a, path); err != nil {
			return meta, nil, err
		}
		meta.Container, meta.ContainerID = nonEmpty(cp.Name), nonEmpty(cp.ID)
		meta.Pod, meta.Namespace = nonEmpty(cp.Pod), nonEmpty(cp.Namespace)
	}
	for _, f := range d.Kind("UTSNS") {
		if u, err := model.First[*images.UtsnsEntry](f); err == nil && u != nil {
			meta.Node = nonEmpty(u.GetNodename())
			break
		}
	}
	return meta, cp, nil
}

// containerDumpID is the container's id (12 characters) and its checkpoint
// time, for a checkpoint that records both; "" otherwise.
func containerDumpID(cp *container.Checkpoint) string {
	if cp == nil || cp.ID == "" || cp.Checkpointed == nil {
		return ""
	}
	id := cp.ID
	if len(id) > 12 {
		id = id[:12]
	}
	return id + "-" + cp.Checkpointed.UTC().Format("20060102T150405Z")
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
