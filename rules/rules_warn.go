package rules

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/proto/images"
)

// maxRawScan bounds the bytes of a raw image (iptables, nftables) read to
// look for an address.
const maxRawScan = 16 << 20

// Warnings returns what the changes leave inconsistent in a way critq can
// see, one sentence each:
//
//   - a regular file renamed to a path that exists on this host with another
//     size or mode than the dump records;
//   - a socket whose local or remote address or port changed while another
//     socket of the dump still names the old one (its peer, or the
//     connections accepted on a listener), or while the dump's iptables or
//     nftables images mention the old address (as a whole token) or match
//     the old port (--dport N, dport { N, M }, ranges);
//   - an fd of fdinfo pointing at a file entry that was dropped;
//   - a pid changed or dropped in one entry while other entries or files
//     (core-PID.img) still carry it.
func (r *RuleResult) Warnings(d *dump.Dump) []string {
	w := &warner{d: d, r: r}
	w.files()
	w.sockets()
	w.droppedFiles()
	w.pids()
	return w.out
}

type warner struct {
	d   *dump.Dump
	r   *RuleResult
	out []string
}

func (w *warner) warnf(format string, args ...any) {
	w.out = append(w.out, fmt.Sprintf(format, args...))
}

// files warns about renamed regular files.
func (w *warner) files() {
	for _, c := range w.r.Changes {
		if c.Drop {
			continue
		}
		o, n := regFile(c.Old), regFile(c.New)
		if o == nil || n == nil || o.GetName() == n.GetName() {
			continue
		}
		st, err := os.Stat(n.GetName())
		if err != nil {
			continue
		}
		where := fmt.Sprintf("%s: entry %d: %s", c.File, c.Index, n.GetName())
		if n.Size != nil && st.Mode().IsRegular() && uint64(st.Size()) != n.GetSize() {
			w.warnf("%s is %d bytes on this host, %d in the dump", where, st.Size(), n.GetSize())
		}
		if mode, ok := hostMode(st); ok && n.Mode != nil && mode != n.GetMode() {
			w.warnf("%s has mode 0%o on this host, 0%o in the dump", where, mode, n.GetMode())
		}
	}
}

func regFile(m proto.Message) *images.RegFileEntry {
	switch x := m.(type) {
	case *images.FileEntry:
		return x.GetReg()
	case *images.RegFileEntry:
		return x
	}
	return nil
}

func inetSocket(m proto.Message) *images.InetSkEntry {
	switch x := m.(type) {
	case *images.FileEntry:
		return x.GetIsk()
	case *images.InetSkEntry:
		return x
	}
	return nil
}

// endpoint is an address and port of a socket.
type endpoint struct {
	addr netip.Addr
	port uint32
}

func (e endpoint) String() string { return netip.AddrPortFrom(e.addr, uint16(e.port)).String() }

func sockAddr(words []uint32, order codec.ByteOrder) netip.Addr {
	a, _ := annot.IPAddr(words, order)
	return a.Unmap()
}

func local(s *images.InetSkEntry, order codec.ByteOrder) endpoint {
	return endpoint{sockAddr(s.GetSrcAddr(), order), s.GetSrcPort()}
}

func remote(s *images.InetSkEntry, order codec.ByteOrder) endpoint {
	return endpoint{sockAddr(s.GetDstAddr(), order), s.GetDstPort()}
}

// moved is an endpoint of a socket that a change moved.
type moved struct {
	c        *EntryChange
	old, new endpoint
}

// sockets warns about socket addresses changed on one side only.
func (w *warner) sockets() {
	var changed []moved
	for _, c := range w.r.Changes {
		o := inetSocket(c.Old)
		if o == nil {
			continue
		}
		if c.Drop {
			continue
		}
		n := inetSocket(c.New)
		if n == nil {
			continue
		}
		for _, pair := range [][2]endpoint{{local(o, c.Order), local(n, c.Order)}, {remote(o, c.Order), remote(n, c.Order)}} {
			if pair[0] != pair[1] && pair[0].addr.IsValid() && !pair[0].addr.IsUnspecified() {
				changed = append(changed, moved{c, pair[0], pair[1]})
			}
		}
	}
	if len(changed) == 0 {
		return
	}
	// Other sockets that still name an old endpoint.
	for _, k := range []string{"FILES", "INETSK"} {
		for _, f := range w.d.Kind(k) {
			order := byteOrder(f)
			for i, m := range finalMessages(w.r, f) {
				s := inetSocket(m)
				if s == nil {
					continue
				}
				for _, mv := range changed {
					if mv.c.File == f.Name && mv.c.Index == i {
						continue
					}
					l, r := local(s, order), remote(s, order)
					if r == mv.old || (l == mv.old && s.GetState() != 10) {
						w.warnf("%s: entry %d: socket %d changed %s to %s, but %s entry %d (socket %d, %s -> %s) still names %s",
							mv.c.File, mv.c.Index, inetSocket(mv.c.New).GetIno(), mv.old, mv.new, f.Name, i, s.GetIno(), l, r, mv.old)
					}
				}
			}
		}
	}
	w.firewall(changed)
}

// firewall warns about iptables and nftables rules that still mention an
// endpoint's old address or port.
func (w *warner) firewall(changed []moved) {
	for _, f := range w.d.Files() {
		if f.Kind == nil || !strings.Contains(f.Kind.Name, "TABLES") {
			continue
		}
		data := readRaw(f)
		seen := map[string]bool{}
		for _, mv := range changed {
			if a := mv.old.addr; a != mv.new.addr && !seen[a.String()] && mentionsAddr(data, a) {
				seen[a.String()] = true
				w.warnf("%s still mentions %s (changed in %s entry %d)", f.Name, a, mv.c.File, mv.c.Index)
			}
			port := "port " + strconv.FormatUint(uint64(mv.old.port), 10)
			if p := mv.old.port; p != 0 && p != mv.new.port && !seen[port] && mentionsPort(data, p) {
				seen[port] = true
				w.warnf("%s still matches %s (changed in %s entry %d)", f.Name, port, mv.c.File, mv.c.Index)
			}
		}
	}
}

// mentionsAddr reports whether text holds address a as a whole token: not
// 10.0.0.1 in 10.0.0.10 or 110.0.0.1 ("10.0.0.1/24" and "10.0.0.1:80" are
// mentions).
func mentionsAddr(text []byte, a netip.Addr) bool {
	s := []byte(a.String())
	for i := 0; ; {
		j := bytes.Index(text[i:], s)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(s)
		before := start == 0 || !addrByte(text[start-1])
		after := end == len(text) || !addrByte(text[end]) || text[end] == ':' && a.Is4()
		if before && after {
			return true
		}
		i = start + 1
	}
}

func addrByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || c == '.' || c == ':'
}

// mentionsPort reports whether a port match of iptables-save (--dport N,
// --sport N, --dports N,M, ranges N:M) or of nftables (dport N, sport
// { N, M }, ranges N-M) covers port p.
func mentionsPort(text []byte, p uint32) bool {
	fields := strings.Fields(string(text))
	for i, f := range fields {
		switch strings.TrimLeft(f, "-") {
		case "dport", "sport", "dports", "sports", "destination-port", "source-port", "destination-ports", "source-ports":
		default:
			continue
		}
		// The value: one word, or an nftables set { ... }.
		var vals []string
		for j := i + 1; j < len(fields) && j < i+1+maxPortSet; j++ {
			vals = append(vals, fields[j])
			if !strings.HasPrefix(fields[i+1], "{") || strings.HasSuffix(fields[j], "}") {
				break
			}
		}
		for _, v := range strings.FieldsFunc(strings.Join(vals, " "), func(r rune) bool { return r == ',' || r == ' ' || r == '{' || r == '}' }) {
			if portIn(v, p) {
				return true
			}
		}
	}
	return false
}

// maxPortSet bounds the words of an nftables set read for ports.
const maxPortSet = 1024

// portIn reports whether p is the port v names: N, N:M or N-M.
func portIn(v string, p uint32) bool {
	lo, hi, ok := strings.Cut(v, ":")
	if !ok {
		lo, hi, ok = strings.Cut(v, "-")
	}
	if !ok {
		hi = lo
	}
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	return err1 == nil && err2 == nil && a <= uint64(p) && uint64(p) <= b
}

func byteOrder(f *dump.File) codec.ByteOrder {
	if img, err := f.Image(); err == nil && img.Header.Order != nil {
		return img.Header.Order
	}
	return binary.LittleEndian
}

func readRaw(f *dump.File) []byte {
	r, err := f.Open()
	if err != nil {
		return nil
	}
	defer r.Close()
	b, _ := io.ReadAll(io.LimitReader(r, maxRawScan))
	return b
}

// droppedFiles warns about fds that point at dropped file entries.
func (w *warner) droppedFiles() {
	gone := map[uint32]string{}
	for _, c := range w.r.Changes {
		if fe, ok := c.Old.(*images.FileEntry); ok && c.Drop {
			gone[fe.GetId()] = fmt.Sprintf("%s entry %d", c.File, c.Index)
		}
	}
	if len(gone) == 0 {
		return
	}
	// An id may be held by more than one entry; it is gone when none is left.
	for _, f := range w.d.Kind("FILES") {
		for _, m := range finalMessages(w.r, f) {
			if fe, ok := m.(*images.FileEntry); ok {
				delete(gone, fe.GetId())
			}
		}
	}
	for _, f := range w.d.Kind("FDINFO") {
		for i, m := range finalMessages(w.r, f) {
			fd, ok := m.(*images.FdinfoEntry)
			if !ok {
				continue
			}
			if what, ok := gone[fd.GetId()]; ok {
				w.warnf("%s: entry %d: fd %d points at file %d, dropped (%s)", f.Name, i, fd.GetFd(), fd.GetId(), what)
			}
		}
	}
}

// pids warns about pids that a change replaced in one entry while other
// entries or files still name them: the images of the task (core-PID.img),
// the pids of pstree.img (pid, ppid, pgid, sid, threads, those of the changed
// entry included), the owners of files (fown.pid), file locks and every
// other pid field.
func (w *warner) pids() {
	type gone struct {
		c    *EntryChange
		path string
		now  string
	}
	var olds []uint64
	byPid := map[uint64]gone{}
	for _, c := range w.r.Changes {
		newPids := map[string]uint64{}
		if !c.Drop {
			pidFields(c.New.ProtoReflect(), "", func(path string, v uint64) { newPids[path] = v })
		}
		pidFields(c.Old.ProtoReflect(), "", func(path string, v uint64) {
			n, ok := newPids[path]
			if v == 0 || ok && n == v {
				return
			}
			if _, dup := byPid[v]; dup {
				return
			}
			now := "dropped"
			if ok {
				now = fmt.Sprintf("now %d", n)
			} else if !c.Drop {
				now = "unset"
			}
			olds = append(olds, v)
			byPid[v] = gone{c, path, now}
		})
	}
	if len(olds) == 0 {
		return
	}
	named := map[uint64][]string{}
	for _, f := range w.d.Files() {
		if f.Kind == nil || f.Kind.Raw || f.Kind.Entry == nil {
			continue
		}
		if pid, err := strconv.ParseUint(f.ID, 10, 32); err == nil && f.Kind.Name != "PAGES" {
			if _, ok := byPid[pid]; ok {
				named[pid] = append(named[pid], f.Name)
			}
		}
		for i, m := range finalMessages(w.r, f) {
			if m == nil {
				continue
			}
			pidFields(m.ProtoReflect(), "", func(path string, v uint64) {
				if _, ok := byPid[v]; ok {
					named[v] = append(named[v], fmt.Sprintf("%s entry %d (%s)", f.Name, i, path))
				}
			})
		}
	}
	for _, pid := range olds {
		g := byPid[pid]
		if len(named[pid]) == 0 {
			continue
		}
		list := named[pid]
		slices.Sort(list) // fields come in protoreflect's order, which varies
		list = slices.Compact(list)
		w.warnf("%s: entry %d: %s %d is %s, but %s still name it", g.c.File, g.c.Index, g.path, pid, g.now, strings.Join(list, ", "))
	}
}

// isPidField reports whether a field of that name holds pids.
func isPidField(name protoreflect.Name) bool {
	switch name {
	case "pid", "ppid", "pgid", "sid", "threads", "tid", "real_pid", "pid_real":
		return true
	}
	return false
}

// pidFields calls fn for every integer held by a pid field of m (see
// isPidField), with its path ("fown.pid", "threads[1]").
func pidFields(m protoreflect.Message, prefix string, fn func(path string, v uint64)) {
	// Fields in declaration order: protoreflect's Range has no fixed order, and
	// the first path found for a pid is the one a warning names.
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		path := prefix + string(fd.Name())
		switch {
		case fd.IsMap():
		case fd.Message() != nil && fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				pidFields(v.List().Get(i).Message(), fmt.Sprintf("%s[%d].", path, i), fn)
			}
		case fd.Message() != nil:
			pidFields(v.Message(), path+".", fn)
		case !isPidField(fd.Name()) || !intKind(fd.Kind()):
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				fn(fmt.Sprintf("%s[%d]", path, i), pidValue(v.List().Get(i)))
			}
		default:
			fn(path, pidValue(v))
		}
	}
}

func intKind(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Uint32Kind, protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Uint64Kind:
		return true
	}
	return false
}

func pidValue(v protoreflect.Value) uint64 {
	switch x := v.Interface().(type) {
	case int32:
		return uint64(x)
	case int64:
		return uint64(x)
	case uint32:
		return uint64(x)
	case uint64:
		return x
	}
	return 0
}
