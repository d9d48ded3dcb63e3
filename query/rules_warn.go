package query

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"syscall"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
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
//     nftables images mention the old address;
//   - an fd of fdinfo pointing at a file entry that was dropped;
//   - a pid changed in pstree.img while other images still carry it.
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

// final returns the messages of an image after the changes, nil for dropped
// entries.
func (w *warner) final(f *dump.File) []proto.Message {
	msgs, err := f.Messages()
	if err != nil {
		return nil
	}
	out := append([]proto.Message(nil), msgs...)
	for _, c := range w.r.Changes {
		if c.File == f.Name && c.Index < len(out) {
			out[c.Index] = c.New
		}
	}
	return out
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
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && n.Mode != nil && sys.Mode != n.GetMode() {
			w.warnf("%s has mode 0%o on this host, 0%o in the dump", where, sys.Mode, n.GetMode())
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
	var b [16]byte
	switch len(words) {
	case 1:
		order.PutUint32(b[:4], words[0])
		return netip.AddrFrom4([4]byte(b[:4]))
	case 4:
		for i, x := range words {
			order.PutUint32(b[4*i:], x)
		}
		return netip.AddrFrom16(b).Unmap()
	}
	return netip.Addr{}
}

func local(s *images.InetSkEntry, order codec.ByteOrder) endpoint {
	return endpoint{sockAddr(s.GetSrcAddr(), order), s.GetSrcPort()}
}

func remote(s *images.InetSkEntry, order codec.ByteOrder) endpoint {
	return endpoint{sockAddr(s.GetDstAddr(), order), s.GetDstPort()}
}

// sockets warns about socket addresses changed on one side only.
func (w *warner) sockets() {
	type moved struct {
		c        *EntryChange
		old, new endpoint
	}
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
			for i, m := range w.final(f) {
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
	// Firewall rules that mention an old address.
	for _, f := range w.d.Files() {
		if f.Kind == nil || !strings.Contains(f.Kind.Name, "TABLES") {
			continue
		}
		data := readRaw(f)
		seen := map[netip.Addr]bool{}
		for _, mv := range changed {
			if mv.old.addr == mv.new.addr || seen[mv.old.addr] {
				continue
			}
			seen[mv.old.addr] = true
			if bytes.Contains(data, []byte(mv.old.addr.String())) {
				w.warnf("%s still mentions %s (changed in %s entry %d)", f.Name, mv.old.addr, mv.c.File, mv.c.Index)
			}
		}
	}
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
		for _, m := range w.final(f) {
			if fe, ok := m.(*images.FileEntry); ok {
				delete(gone, fe.GetId())
			}
		}
	}
	for _, f := range w.d.Kind("FDINFO") {
		for i, m := range w.final(f) {
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

// pids warns about pids changed in pstree.img but not in the rest of the
// dump.
func (w *warner) pids() {
	for _, c := range w.r.Changes {
		o, ok := c.Old.(*images.PstreeEntry)
		if !ok {
			continue
		}
		n, _ := c.New.(*images.PstreeEntry)
		if n != nil && n.GetPid() == o.GetPid() {
			continue
		}
		pid := fmt.Sprint(o.GetPid())
		var named []string
		for _, f := range w.d.Files() {
			if f.ID == pid && f.Kind != nil && f.Kind.Name != "PAGES" {
				named = append(named, f.Name)
			}
		}
		for _, f := range w.d.Kind("PSTREE") {
			for i, m := range w.final(f) {
				p, ok := m.(*images.PstreeEntry)
				if !ok || i == c.Index && f.Name == c.File {
					continue
				}
				if p.GetPpid() == o.GetPid() || p.GetPgid() == o.GetPid() || p.GetSid() == o.GetPid() {
					named = append(named, fmt.Sprintf("%s entry %d", f.Name, i))
				}
			}
		}
		sort.Strings(named)
		if len(named) == 0 {
			continue
		}
		now := "dropped"
		if n != nil {
			now = fmt.Sprintf("now %d", n.GetPid())
		}
		w.warnf("%s: entry %d: pid %d is %s, but %s still name it", c.File, c.Index, o.GetPid(), now, strings.Join(named, ", "))
	}
}
