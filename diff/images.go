package diff

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/proto/views"
	"github.com/critq/critq/query"
)

// coveredKinds are the image kinds whose contents other sections compare
// (through the views and the page indexes), or that hold only what changes
// with every dump: the dump's run id and statistics (INVENTORY, STATS), the
// clocks at dump time (TIMENS), a cache of path lookups (IRMAP_CACHE).
var coveredKinds = map[string]bool{
	"CORE": true, "MM": true, "PSTREE": true, "FDINFO": true, "FILES": true, "FS": true, "IDS": true,
	"PAGEMAP": true, "SHMEM_PAGEMAP": true, "PAGES": true, "MNTS": true,
	"INVENTORY": true, "STATS": true, "TIMENS": true, "IRMAP_CACHE": true,
}

// imageFiles returns the files of d that are images of a known kind, by name.
func imageFiles(d *dump.Dump) map[string]*dump.File {
	out := map[string]*dump.File{}
	for _, f := range d.Files() {
		if f.Kind != nil {
			out[f.Name] = f
		}
	}
	return out
}

// images records the images that exist in one dump only.
func (c *collector) images(a, b *query.Dump) {
	if c.opts.PID != 0 {
		return
	}
	fa, fb := imageFiles(a.Images()), imageFiles(b.Images())
	for name, f := range fa {
		if fb[name] == nil {
			c.add("images", 0, name, 0, "", Removed, f.Kind.Name, "")
		}
	}
	for name, f := range fb {
		if fa[name] == nil {
			c.add("images", 0, name, 0, "", Added, "", f.Kind.Name)
		}
	}
}

// other compares, entry by entry, the images of the kinds no other section
// covers (timers, file locks, namespaces, signal queues, pipe and FIFO data,
// socket queues, TCP stream queues, ghost files, ...), matched by file name.
// Their section is the kind's name in lower case. The bytes that follow an
// entry (the data of a pipe, a queued packet, a TCP queue, a ghost file) are
// compared as the path "data" (TCP streams: "data.in" and "data.out", the
// receive and send queues): size and SHA-256, with Options.Bytes the first
// differing bytes. Entries are matched by their index in the image,
// except pipe and FIFO data (by pipe id) and socket packets (by the socket's
// inode, va and vb's sockets view, and the packet's place in its queue).
func (c *collector) other(a, b *query.Dump, va, vb *views.DumpViews) error {
	if c.opts.PID != 0 {
		return nil
	}
	fa, fb := imageFiles(a.Images()), imageFiles(b.Images())
	names := make([]string, 0, len(fa))
	for name, f := range fa {
		if fb[name] != nil && !coveredKinds[f.Kind.Name] && f.Kind.Decodable() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	inosA, inosB := inoByID(va), inoByID(vb)
	for _, name := range names {
		kind := fa[name].Kind.Name
		ea, err := entryElems(a.Name(), fa[name], kind, inosA)
		if err != nil {
			return err
		}
		eb, err := entryElems(b.Name(), fb[name], kind, inosB)
		if err != nil {
			return err
		}
		var skip skipFunc
		if kind == "SK_QUEUES" {
			skip = skipPaths("id_for") // a file id: dump numbering; the key has the inode
		}
		c.compareSet(strings.ToLower(kind), ea, eb, func(m proto.Message) string {
			e := m.(*entryMsg)
			d := renderMessage(e.Message.ProtoReflect())
			if e.extra != nil {
				d += fmt.Sprintf(" + %d bytes of data", len(e.extra))
			}
			return d
		}, skip, func(x, y *elem) []fieldChange {
			ex, ey := x.msg.(*entryMsg), y.msg.(*entryMsg)
			if kind == "TCP_STREAM" {
				if ix, ox, ok := tcpQueues(ex); ok {
					if iy, oy, ok := tcpQueues(ey); ok {
						return append(c.compareData("data.in", ix, iy), c.compareData("data.out", ox, oy)...)
					}
				}
			}
			return c.compareData("data", ex.extra, ey.extra)
		})
	}
	return nil
}

// entryMsg is an entry of an image and the bytes that follow it.
type entryMsg struct {
	proto.Message
	extra []byte
}

// entryElems returns the entries of image f (of dump name) as elements,
// keyed as other says.
func entryElems(name string, f *dump.File, kind string, inos map[uint32]uint32) ([]elem, error) {
	msgs, err := f.Messages()
	if err != nil {
		return nil, &query.DumpError{Dump: name, Err: err}
	}
	img, err := f.Image()
	if err != nil {
		return nil, &query.DumpError{Dump: name, Err: err}
	}
	out := make([]elem, len(msgs))
	nth := map[uint32]int{}
	for i, m := range msgs {
		k := f.Name + "[" + strconv.Itoa(i) + "]"
		switch kind {
		case "PIPES_DATA", "FIFO_DATA":
			if id, ok := uintField(m, "pipe_id"); ok {
				k = fmt.Sprintf("%s pipe %d", f.Name, id)
			}
		case "SK_QUEUES":
			if id, ok := uintField(m, "id_for"); ok {
				ino, known := inos[uint32(id)]
				if !known {
					break
				}
				k = fmt.Sprintf("%s ino %d [%d]", f.Name, ino, nth[ino])
				nth[ino]++
			}
		}
		out[i] = elem{keys: [2]mkey{skey(k)}, key: k, ord: uint64(i), msg: &entryMsg{Message: m, extra: img.Entries[i].Extra}}
	}
	return out, nil
}

// uintField returns the unsigned integer field name of m.
func uintField(m proto.Message, name protoreflect.Name) (uint64, bool) {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(name)
	if fd == nil || !r.Has(fd) {
		return 0, false
	}
	switch fd.Kind() {
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		return r.Get(fd).Uint(), true
	}
	return 0, false
}

// inoByID maps the file ids of the sockets of v to their inodes.
func inoByID(v *views.DumpViews) map[uint32]uint32 {
	out := make(map[uint32]uint32, len(v.GetSockets()))
	for _, s := range v.GetSockets() {
		out[s.GetId()] = s.GetIno()
	}
	return out
}

// tcpQueues splits the data of a tcp_stream_entry into the receive queue
// (inq_len bytes) and the send queue (outq_len bytes), which CRIU writes in
// that order; ok is false when the lengths do not add up to the data.
func tcpQueues(e *entryMsg) (in, out []byte, ok bool) {
	il, ok1 := uintField(e.Message, "inq_len")
	ol, ok2 := uintField(e.Message, "outq_len")
	if !ok1 || !ok2 || il+ol != uint64(len(e.extra)) {
		return nil, nil, false
	}
	return e.extra[:il], e.extra[il:], true
}

// compareData compares the bytes that follow two matched entries (or a
// part of them, path): nothing when the same, else one change of path with
// the size and SHA-256 of each ("12 bytes sha256:1a2b3c4d5e6f7081"), and
// with Options.Bytes one of path+".bytes" with the first differing bytes
// of each.
func (c *collector) compareData(path string, x, y []byte) []fieldChange {
	if bytes.Equal(x, y) {
		return nil
	}
	sum := func(b []byte) string {
		if b == nil {
			return ""
		}
		h := sha256.Sum256(b)
		return fmt.Sprintf("%d bytes sha256:%x", len(b), h[:8])
	}
	out := []fieldChange{{path: path, old: sum(x), new: sum(y)}}
	if c.opts.Bytes {
		d := 0
		for d < len(x) && d < len(y) && x[d] == y[d] {
			d++
		}
		cut := func(b []byte) string {
			if d >= len(b) {
				return fmt.Sprintf("0x%x: (end)", d)
			}
			return fmt.Sprintf("0x%x: %s", d, hex.EncodeToString(b[d:min(d+excerpt, len(b))]))
		}
		out = append(out, fieldChange{path: path + ".bytes", old: cut(x), new: cut(y)})
	}
	return out
}
