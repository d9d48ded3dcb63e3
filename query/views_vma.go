package query

import (
	"context"
	"errors"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/views"
)

// The vmas view is the one that grows large (a task may have 100,000
// VMAs), so it is built from the wire: the mm payload is scanned for its
// vma_entry submessages and only the fields the query reads are decoded,
// into slabs (one allocation per field, not per VMA).

// Field numbers of mm_entry and vma_entry (critq/images/mm.proto, vma.proto).
const (
	mmVMAs     = 14
	vmaStart   = 1
	vmaEnd     = 2
	vmaPgoff   = 3
	vmaShmid   = 4
	vmaProt    = 5
	vmaFlags   = 6
	vmaStatus  = 7
	vmaFd      = 8
	vmaMadv    = 9
	vmaFdflags = 10
)

// vma_entry status bits that say the VMA maps a file.
const vmaFileMapping = 1<<6 | 1<<7 // VMA_FILE_PRIVATE | VMA_FILE_SHARED

// vmaFieldNums maps the vma view's fields that restate vma_entry to their
// numbers.
var vmaFieldNums = map[string]protowire.Number{
	"start": vmaStart, "end": vmaEnd, "pgoff": vmaPgoff, "shmid": vmaShmid, "prot": vmaProt,
	"flags": vmaFlags, "status": vmaStatus, "fd": vmaFd, "madv": vmaMadv, "fdflags": vmaFdflags,
}

// vmaMask returns the set of vma_entry fields to decode, as bits by field
// number.
func vmaMask(n *needs) uint32 {
	fs := n.fields[typeVMA]
	if fs == nil {
		return 0
	}
	if fs.all {
		return 1<<(vmaFdflags+1) - 2
	}
	var m uint32
	for name := range fs.names {
		if num, ok := vmaFieldNums[name]; ok {
			m |= 1 << num
		}
	}
	if fs.names["size"] {
		m |= 1<<vmaStart | 1<<vmaEnd
	}
	if fs.names["path"] {
		m |= 1<<vmaStatus | 1<<vmaShmid
	}
	return m
}

// vmas builds the vmas view.
func (d *Dump) vmas(ctx context.Context, n *needs) ([]*views.Vma, error) {
	return onceAs(d, "vmas|"+n.signature(typeVMA), func() ([]*views.Vma, error) {
		return d.buildVMAs(ctx, n)
	})
}

func (d *Dump) buildVMAs(ctx context.Context, n *needs) ([]*views.Vma, error) {
	t, err := d.tree()
	if err != nil {
		return nil, err
	}
	mms := make([]*dump.File, len(t.Tasks))
	for i, p := range t.Tasks {
		mms[i] = d.d.FileFor("MM", uint64(p.PID))
	}
	if err := prefetch(ctx, nonNil(mms...), readImage); err != nil {
		return nil, err
	}
	var idx *model.Files
	if n.has(typeVMA, "path") {
		if idx, err = d.files(); err != nil {
			return nil, err
		}
	}
	mask := vmaMask(n)
	var out []*views.Vma
	for i, p := range t.Tasks {
		if mms[i] == nil {
			// Zombies and dead tasks have no mm; a live task's missing
			// mm is recorded by the model.
			if _, err := d.model().MM(p); goOn(err) != nil {
				return nil, err
			}
			continue
		}
		img, err := mms[i].Image()
		if err != nil {
			return nil, err
		}
		if len(img.Entries) == 0 {
			continue
		}
		e := img.Entries[0]
		subs, err := vmaPayloads(e.Payload)
		if err != nil {
			return nil, &codec.Error{File: mms[i].Name, Kind: img.Header.Kind.Name, Entry: 0, Offset: e.Offset, Err: err}
		}
		vs, err := decodeVMAs(subs, mask)
		if err != nil {
			return nil, &codec.Error{File: mms[i].Name, Kind: img.Header.Kind.Name, Entry: 0, Offset: e.Offset, Err: err}
		}
		pid := proto.Uint32(p.PID)
		var sizes []uint64
		if n.has(typeVMA, "size") {
			sizes = make([]uint64, len(vs))
		}
		paths := map[uint64]*string{}
		out = slices.Grow(out, len(vs))
		for j := range vs {
			v := &vs[j]
			v.Pid = pid
			if sizes != nil {
				sizes[j] = v.GetEnd() - v.GetStart()
				v.Size = &sizes[j]
			}
			if idx != nil && v.GetStatus()&vmaFileMapping != 0 {
				s, ok := paths[v.GetShmid()]
				if !ok {
					if p, found := d.regPath(idx, v.GetShmid()); found {
						s = &p
					}
					paths[v.GetShmid()] = s
				}
				v.Path = s
			}
			out = append(out, v)
		}
	}
	return out, nil
}

var errVMAWire = errors.New("mm_entry: malformed vma_entry")

// vmaPayloads returns the serialized vma_entry messages of an mm_entry.
// The result is sized first: a scan of the tags is cheap, growing a slice
// of 100,000 entries by doubling is not.
func vmaPayloads(b []byte) ([][]byte, error) {
	n := 0
	if err := scanVMAs(b, func([]byte) { n++ }); err != nil {
		return nil, err
	}
	out := make([][]byte, 0, n)
	err := scanVMAs(b, func(v []byte) { out = append(out, v) })
	return out, err
}

// scanVMAs calls fn with each serialized vma_entry of an mm_entry.
func scanVMAs(b []byte, fn func([]byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num == mmVMAs && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			fn(v)
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

// decodeVMAs decodes the fields in mask of each vma_entry. Each field has
// one slab of values for all VMAs.
func decodeVMAs(subs [][]byte, mask uint32) ([]views.Vma, error) {
	vs := make([]views.Vma, len(subs))
	var u64 [vmaFdflags + 1][]uint64
	var u32 [vmaFdflags + 1][]uint32
	var fds []int64
	for _, num := range []int{vmaStart, vmaEnd, vmaPgoff, vmaShmid, vmaMadv} {
		if mask&(1<<num) != 0 {
			u64[num] = make([]uint64, len(subs))
		}
	}
	for _, num := range []int{vmaProt, vmaFlags, vmaStatus, vmaFdflags} {
		if mask&(1<<num) != 0 {
			u32[num] = make([]uint32, len(subs))
		}
	}
	if mask&(1<<vmaFd) != 0 {
		fds = make([]int64, len(subs))
	}
	for i, b := range subs {
		v := &vs[i]
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				return nil, errVMAWire
			}
			b = b[n:]
			if typ != protowire.VarintType || num > vmaFdflags || mask&(1<<num) == 0 {
				n = protowire.ConsumeFieldValue(num, typ, b)
				if n < 0 {
					return nil, errVMAWire
				}
				b = b[n:]
				continue
			}
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, errVMAWire
			}
			b = b[n:]
			switch num {
			case vmaStart, vmaEnd, vmaPgoff, vmaShmid, vmaMadv:
				u64[num][i] = x
				*vmaU64(v, num) = &u64[num][i]
			case vmaProt, vmaFlags, vmaStatus, vmaFdflags:
				u32[num][i] = uint32(x)
				*vmaU32(v, num) = &u32[num][i]
			case vmaFd:
				fds[i] = protowire.DecodeZigZag(x)
				v.Fd = &fds[i]
			}
		}
	}
	return vs, nil
}

// vmaU64 returns the uint64 field number num of v.
func vmaU64(v *views.Vma, num protowire.Number) **uint64 {
	switch num {
	case vmaStart:
		return &v.Start
	case vmaEnd:
		return &v.End
	case vmaPgoff:
		return &v.Pgoff
	case vmaShmid:
		return &v.Shmid
	}
	return &v.Madv
}

// vmaU32 returns the uint32 field number num of v.
func vmaU32(v *views.Vma, num protowire.Number) **uint32 {
	switch num {
	case vmaProt:
		return &v.Prot
	case vmaFlags:
		return &v.Flags
	case vmaStatus:
		return &v.Status
	}
	return &v.Fdflags
}
