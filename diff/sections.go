package diff

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/proto/views"
)

// Volatile lists, per section, the fields of the view messages that Dumps
// does not compare, with the reason. Paths are dotted field names; "*"
// matches any one field.
var Volatile = map[string][]struct{ Path, Why string }{
	"processes": {
		{"pid", "the key"},
		{"vmas", "the vmas section"},
		{"fds", "the fds section"},
		{"mm.vmas", "the vmas section"},
		{"mm.exe_file_id", "file id: dump numbering (exe is compared)"},
		{"ids.vm_id", "kernel-object id: dump numbering"},
		{"ids.files_id", "kernel-object id: dump numbering"},
		{"ids.fs_id", "kernel-object id: dump numbering"},
		{"ids.sighand_id", "kernel-object id: dump numbering"},
		{"core.ids", "kernel-object ids: dump numbering"},
		{"core.tc.comm", "restated as comm"},
		{"core.tc.task_state", "restated as state"},
		{"core.tc.exit_code", "restated as exit_code"},
		{"core.tc.rlimits", "restated as rlimits"},
		{"core.thread_core", "the main thread's state: the threads section (its creds are restated as creds)"},
		{"core.thread_info", "the main thread's registers: the threads section"},
		{"core.ti_*", "the main thread's registers: the threads section"},
	},
	"threads": {
		{"pid", "the key"},
		{"tid", "the key"},
		{"state", "the task's: the processes section"},
		{"core.tc", "the task's: the processes section"},
		{"core.ids", "kernel-object ids: dump numbering"},
		{"core.thread_core.comm", "restated as comm"},
		{"core.thread_core.blk_sigset", "restated as sigmask"},
		{"core.thread_core.sched_policy", "restated as sched_policy"},
		{"core.thread_core.sched_prio", "restated as sched_prio"},
		{"core.thread_core.sched_nice", "restated as sched_nice"},
		{"core.thread_core.creds", "of the main thread: the processes section's creds; of the others compared as creds"},
		{"core.thread_info", "registers, FPU state, TLS: compared with --registers"},
		{"core.ti_*", "registers: compared with --registers"},
		{"core.thread_core.futex_rla", "robust futex list head: registers-like, compared with --registers"},
		{"core.thread_core.rseq_entry", "rseq area state: changes on every reschedule, compared with --registers"},
	},
	"vmas": {
		{"pid", "the key"},
		{"start", "the key"},
		{"shmid", "of a file mapping: the file id, dump numbering (path is compared)"},
	},
	"fds": {
		{"pid", "the key"},
		{"fd", "the key"},
		{"id", "file id: dump numbering"},
		{"file", "the files section"},
		{"socket", "the sockets section (its inode is compared, as socket.ino)"},
	},
	"files": {
		{"entry.*.id", "file ids: dump numbering"},
		{"id", "file id: dump numbering"},
		{"pids", "the owners: the fds section"},
		{"socket", "the sockets section"},
		{"entry.id", "file id: dump numbering"},
		{"entry.type", "restated as type"},
		{"entry.*.name", "restated as path"},
		{"entry.*.regf_id", "file id: dump numbering"},
		{"entry.*.remap_id", "file id: dump numbering"},
	},
	"sockets": {
		{"id", "file id: dump numbering"},
		{"pids", "the owners: the fds section"},
		{"file.id", "file id: dump numbering"},
		{"file.type", "restated as family and type"},
		{"file.*.id", "file id: dump numbering"},
		{"file.*.ino", "restated as ino"},
		{"file.*.state", "restated as state"},
		{"file.*.family", "restated as family"},
		{"file.*.type", "restated as type"},
		{"file.*.proto", "restated as proto"},
		{"file.*.src_addr", "restated as local_addr"},
		{"file.*.dst_addr", "restated as peer_addr"},
		{"file.*.src_port", "restated as local_port"},
		{"file.*.dst_port", "restated as peer_port"},
		{"file.*.backlog", "restated as backlog"},
		{"file.*.peer", "restated as peer_ino"},
		{"file.*.name", "restated as local_addr"},
	},
	"mounts": {},
	"other": {
		{"inventory, stats, timens, irmap-cache images", "dump run id, dump statistics and the clocks at dump time"},
	},
}

// skipOf returns the skipFunc of a section's Volatile list, with the
// registers of the processes section compared under --registers.
func skipOf(section string, registers bool) skipFunc {
	var pats []string
	for _, v := range Volatile[section] {
		if registers && strings.Contains(v.Why, "--registers") {
			continue
		}
		pats = append(pats, v.Path)
	}
	return skipPaths(pats...)
}

// elem is one element of a section: a view message and its match keys.
type elem struct {
	pid    uint32   // 0 for the elements of the whole dump
	owners []uint32 // pids holding a dump-wide element, for --pid
	keys   [2]mkey  // one match key per pass; the zero mkey matches nothing
	key    string   // the key shown; "" for hexKey(ord)
	ord    uint64   // sort position within the pid
	msg    proto.Message
}

// mkey is a match key: a string, or a number within a pid.
type mkey struct {
	pid uint32
	n   uint64
	s   string
	ok  bool
}

// skey is the match key s; none for "".
func skey(s string) mkey { return mkey{s: s, ok: s != ""} }

// cmpKey orders match keys: by pid, number, then string.
func cmpKey(x, y mkey) int {
	if c := cmp.Compare(x.pid, y.pid); c != 0 {
		return c
	}
	if c := cmp.Compare(x.n, y.n); c != 0 {
		return c
	}
	return strings.Compare(x.s, y.s)
}

// sortByKey sorts the indexes idx of es by their pass p keys, stably; in
// place and at the cost of one scan when they are in order already.
func sortByKey(idx []int, es []elem, p int) {
	by := func(i, j int) int { return cmpKey(es[i].keys[p], es[j].keys[p]) }
	if !slices.IsSortedFunc(idx, by) {
		slices.SortStableFunc(idx, by)
	}
}

// nkey is the match key n of pid.
func nkey(pid uint32, n uint64) mkey { return mkey{pid: pid, n: n, ok: true} }

// shown returns the key shown for e.
func (e *elem) shown() string {
	if e.key == "" {
		return hexKey(e.ord)
	}
	return e.key
}

// compareSet matches the elements of a and b (pass by pass: keys[0], then
// keys[1] for those left, ...) and records the added, the removed and the
// changed fields of the matched pairs; desc says what an added or removed
// element is. extra adds changes of a matched pair that the field walk does
// not see.
func (c *collector) compareSet(section string, a, b []elem, desc func(proto.Message) string, skip skipFunc, extra func(x, y *elem) []fieldChange) {
	filter := func(es []elem) []elem {
		if c.opts.PID == 0 && len(c.lone) == 0 {
			return es
		}
		var out []elem
		for _, e := range es {
			if e.pid != 0 && c.lone[e.pid] && section != "processes" {
				continue
			}
			if c.opts.PID == 0 || e.pid == c.opts.PID || (e.pid == 0 && slices.Contains(e.owners, c.opts.PID)) {
				out = append(out, e)
			}
		}
		return out
	}
	a, b = filter(a), filter(b)
	matchedA := make([]int, len(a)) // index+1 of the b element
	matchedB := make([]bool, len(b))
	// Pass by pass, the unmatched elements with a key, in key order (they
	// usually are already), are merged: equal keys pair in element order.
	var ia, ib []int
	for p := range len(elem{}.keys) {
		ia, ib = ia[:0], ib[:0]
		for i := range a {
			if matchedA[i] == 0 && a[i].keys[p].ok {
				ia = append(ia, i)
			}
		}
		for j := range b {
			if !matchedB[j] && b[j].keys[p].ok {
				ib = append(ib, j)
			}
		}
		if len(ia) == 0 || len(ib) == 0 {
			continue
		}
		sortByKey(ia, a, p)
		sortByKey(ib, b, p)
		for x, y := 0, 0; x < len(ia) && y < len(ib); {
			switch c := cmpKey(a[ia[x]].keys[p], b[ib[y]].keys[p]); {
			case c < 0:
				x++
			case c > 0:
				y++
			default:
				matchedA[ia[x]] = ib[y] + 1
				matchedB[ib[y]] = true
				x++
				y++
			}
		}
	}
	for i := range a {
		x := &a[i]
		if matchedA[i] == 0 {
			c.add(section, x.pid, x.shown(), x.ord, "", Removed, desc(x.msg), "")
			continue
		}
		y := &b[matchedA[i]-1]
		var fcs []fieldChange
		if !proto.Equal(x.msg, y.msg) {
			fcs = compareMessages(nil, "", x.msg.ProtoReflect(), y.msg.ProtoReflect(), skip)
		}
		if extra != nil {
			fcs = append(fcs, extra(x, y)...)
		}
		for _, f := range fcs {
			c.add(section, y.pid, y.shown(), y.ord, f.path, Changed, f.old, f.new)
		}
		if len(fcs) == 0 && c.opts.Unchanged {
			c.add(section, y.pid, y.shown(), y.ord, "", Unchanged, "", "")
		}
	}
	for j := range b {
		if !matchedB[j] {
			y := &b[j]
			c.add(section, y.pid, y.shown(), y.ord, "", Added, "", desc(y.msg))
		}
	}
}

// threads compares every thread of the tasks both dumps hold, by tid: a
// thread started or ended, its signal mask, pending signals, scheduling,
// seccomp, sigaltstack and, with Options.Registers, its registers.
func (c *collector) threads(va, vb *views.DumpViews) {
	mk := func(ts []*views.Thread) []elem {
		out := make([]elem, 0, len(ts))
		for _, t := range ts {
			k := strconv.FormatUint(uint64(t.GetTid()), 10)
			out = append(out, elem{pid: t.GetPid(), keys: [2]mkey{nkey(t.GetPid(), uint64(t.GetTid()))}, key: k, ord: uint64(t.GetTid()), msg: t})
		}
		return out
	}
	desc := func(m proto.Message) string {
		t := m.(*views.Thread)
		return fmt.Sprintf("tid %d %s sigmask 0x%x", t.GetTid(), t.GetComm(), t.GetSigmask())
	}
	c.compareSet("threads", mk(va.GetThreads()), mk(vb.GetThreads()), desc, skipOf("threads", c.opts.Registers), func(x, y *elem) []fieldChange {
		tx, ty := x.msg.(*views.Thread), y.msg.(*views.Thread)
		if tx.GetTid() == tx.GetPid() {
			return nil
		}
		cx, cy := tx.GetCore().GetThreadCore().GetCreds(), ty.GetCore().GetThreadCore().GetCreds()
		if proto.Equal(cx, cy) {
			return nil
		}
		if cx == nil || cy == nil {
			return []fieldChange{{path: "creds", old: renderOpt(cx), new: renderOpt(cy)}}
		}
		return compareMessages(nil, "creds.", cx.ProtoReflect(), cy.ProtoReflect(), nil)
	})
}

// renderOpt renders m as renderMessage does, "" for nil.
func renderOpt[M proto.Message](m M) string {
	if !m.ProtoReflect().IsValid() {
		return ""
	}
	return renderMessage(m.ProtoReflect())
}

func (c *collector) processes(va, vb *views.DumpViews) {
	mk := func(ts []*views.Task) []elem {
		out := make([]elem, 0, len(ts))
		for _, t := range ts {
			k := strconv.FormatUint(uint64(t.GetPid()), 10)
			out = append(out, elem{pid: t.GetPid(), keys: [2]mkey{nkey(t.GetPid(), 0)}, key: k, ord: 0, msg: t})
		}
		return out
	}
	desc := func(m proto.Message) string {
		t := m.(*views.Task)
		return fmt.Sprintf("%s (ppid %d)", t.GetComm(), t.GetPpid())
	}
	c.compareSet("processes", mk(va.GetTasks()), mk(vb.GetTasks()), desc, skipOf("processes", c.opts.Registers), nil)
}

// prot renders a VMA's protection as /proc/PID/maps does: "rw-".
func prot(p uint32) string {
	b := []byte("---")
	for i, r := range "rwx" {
		if p&(1<<i) != 0 {
			b[i] = byte(r)
		}
	}
	return string(b)
}

func vmaDesc(m proto.Message) string {
	v := m.(*views.Vma)
	s := fmt.Sprintf("%x-%x %s", v.GetStart(), v.GetEnd(), prot(v.GetProt()))
	if v.GetPath() != "" {
		s += " " + v.GetPath()
	}
	return s
}

func (c *collector) vmas(va, vb *views.DumpViews) {
	mk := func(vs []*views.Vma) []elem {
		out := make([]elem, 0, len(vs))
		for _, v := range vs {
			out = append(out, elem{pid: v.GetPid(), keys: [2]mkey{nkey(v.GetPid(), v.GetStart())}, ord: v.GetStart(), msg: v})
		}
		return out
	}
	base := skipOf("vmas", false)
	fileMapping := func(v *views.Vma) bool {
		return v.GetStatus()&(flagnames.VMAFilePrivate|flagnames.VMAFileShared) != 0
	}
	// shmid is compared unless both sides map a file (then it is a file id).
	c.compareSet("vmas", mk(va.GetVmas()), mk(vb.GetVmas()), vmaDesc, base, func(x, y *elem) []fieldChange {
		vx, vy := x.msg.(*views.Vma), y.msg.(*views.Vma)
		if fileMapping(vx) && fileMapping(vy) || vx.GetShmid() == vy.GetShmid() {
			return nil
		}
		return []fieldChange{{path: "shmid", old: strconv.FormatUint(vx.GetShmid(), 10), new: strconv.FormatUint(vy.GetShmid(), 10)}}
	})
}

func fdTarget(m proto.Message) string {
	f := m.(*views.Fd)
	switch {
	case f.GetSocket() != nil:
		return fmt.Sprintf("%s socket:[%d]", f.GetKind(), f.GetSocket().GetIno())
	case f.GetPath() != "":
		return f.GetKind() + " " + f.GetPath()
	}
	return f.GetKind()
}

func (c *collector) fds(va, vb *views.DumpViews) {
	mk := func(fs []*views.Fd) []elem {
		out := make([]elem, 0, len(fs))
		for _, f := range fs {
			k := strconv.FormatUint(uint64(f.GetFd()), 10)
			out = append(out, elem{pid: f.GetPid(), keys: [2]mkey{nkey(f.GetPid(), uint64(f.GetFd()))}, key: k, ord: uint64(f.GetFd()), msg: f})
		}
		return out
	}
	c.compareSet("fds", mk(va.GetFds()), mk(vb.GetFds()), fdTarget, skipOf("fds", false), func(x, y *elem) []fieldChange {
		sx, sy := x.msg.(*views.Fd).GetSocket(), y.msg.(*views.Fd).GetSocket()
		if sx.GetIno() == sy.GetIno() {
			return nil
		}
		r := func(s *views.Socket) string {
			if s == nil {
				return ""
			}
			return strconv.FormatUint(uint64(s.GetIno()), 10)
		}
		return []fieldChange{{path: "socket.ino", old: r(sx), new: r(sy)}}
	})
}

func isSocketKind(kind string) bool { return strings.HasSuffix(kind, "SK") }

func (c *collector) files(va, vb *views.DumpViews) {
	mk := func(fs []*views.File) []elem {
		out := make([]elem, 0, len(fs))
		seen := map[string]int{}
		for _, f := range fs {
			if isSocketKind(f.GetKind()) || f.GetSocket() != nil {
				continue
			}
			k := f.GetKind()
			switch {
			case f.GetPath() != "":
				k += " " + f.GetPath()
			case f.GetEntry().GetPipe() != nil:
				k += fmt.Sprintf(" pipe:[%d]", f.GetEntry().GetPipe().GetPipeId())
			}
			seen[k]++
			if n := seen[k]; n > 1 {
				k += "#" + strconv.Itoa(n)
			}
			out = append(out, elem{owners: f.GetPids(), keys: [2]mkey{skey(k)}, key: k, msg: f})
		}
		return out
	}
	c.compareSet("files", mk(va.GetFiles()), mk(vb.GetFiles()), func(m proto.Message) string {
		f := m.(*views.File)
		return strings.TrimSpace(f.GetKind() + " " + f.GetPath())
	}, skipOf("files", false), nil)
}

func sockDesc(m proto.Message) string {
	s := m.(*views.Socket)
	fam := flagnames.Dict("sk", "family")
	typ := flagnames.Dict("sk", "type")
	st := flagnames.Dict("sk", "state")
	name := func(t []flagnames.Flag, v uint32) string {
		if n, ok := flagnames.Name(t, uint64(v)); ok {
			return n
		}
		return strconv.FormatUint(uint64(v), 10)
	}
	d := fmt.Sprintf("ino %d %s/%s %s", s.GetIno(), name(fam, s.GetFamily()), name(typ, s.GetType()), name(st, s.GetState()))
	if s.GetLocalAddr() != "" || s.GetLocalPort() != 0 {
		d += fmt.Sprintf(" %s:%d", s.GetLocalAddr(), s.GetLocalPort())
	}
	if s.GetPeerAddr() != "" || s.GetPeerPort() != 0 {
		d += fmt.Sprintf(" -> %s:%d", s.GetPeerAddr(), s.GetPeerPort())
	}
	return d
}

func (c *collector) sockets(va, vb *views.DumpViews) {
	mk := func(ss []*views.Socket) []elem {
		out := make([]elem, 0, len(ss))
		for _, s := range ss {
			k := "ino " + strconv.FormatUint(uint64(s.GetIno()), 10)
			tuple := ""
			if s.GetPeerPort() != 0 && s.GetType() == 1 { // SOCK_STREAM with a peer
				tuple = fmt.Sprintf("%d %s:%d %s:%d", s.GetFamily(), s.GetLocalAddr(), s.GetLocalPort(), s.GetPeerAddr(), s.GetPeerPort())
			}
			out = append(out, elem{owners: s.GetPids(), keys: [2]mkey{nkey(0, uint64(s.GetIno())), skey(tuple)}, key: k, ord: uint64(s.GetIno()), msg: s})
		}
		return out
	}
	c.compareSet("sockets", mk(va.GetSockets()), mk(vb.GetSockets()), sockDesc, skipOf("sockets", false), nil)
}

func (c *collector) mounts(va, vb *views.DumpViews) {
	mk := func(ms []*views.Mount) []elem {
		out := make([]elem, 0, len(ms))
		for _, m := range ms {
			k := fmt.Sprintf("%d %s", m.GetMntId(), m.GetMountpoint())
			out = append(out, elem{keys: [2]mkey{nkey(m.GetNsId(), uint64(m.GetMntId())), {pid: m.GetNsId(), s: m.GetMountpoint(), ok: true}},
				key: k, ord: uint64(m.GetMntId()), msg: m})
		}
		return out
	}
	desc := func(x proto.Message) string {
		m := x.(*views.Mount)
		return m.GetType() + " " + m.GetSource() + " on " + m.GetMountpoint()
	}
	if c.opts.PID != 0 {
		return // mounts belong to namespaces, not tasks
	}
	c.compareSet("mounts", mk(va.GetMounts()), mk(vb.GetMounts()), desc, skipOf("mounts", false), nil)
}
