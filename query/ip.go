package query

import (
	"encoding/binary"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/annot"
)

// fnIP is the ip function. Its binding is late: the words of a (criu).ipadd
// field are in the byte order of the host that dumped, which is the byte
// order of the dump's images, so each evaluation binds ip to its dump.
const fnIP = "ip"

// byteOrder returns the byte order of the dump's images: that of the first
// image whose header reads (inventory first), little-endian when none does.
func (d *Dump) byteOrder() binary.ByteOrder {
	o, _ := onceAs(d, "byte order", func() (binary.ByteOrder, error) {
		files := d.d.Files()
		if f := d.d.File("inventory.img"); f != nil {
			files = append([]*dump.File{f}, files...)
		}
		for _, f := range files {
			if f.Kind == nil {
				continue
			}
			r, err := f.Open()
			if err != nil {
				continue
			}
			rd, err := codec.NewReader(r, codec.ReadOptions{Name: f.Name})
			r.Close()
			if err == nil {
				return rd.Header().Order, nil
			}
		}
		return binary.LittleEndian, nil
	})
	return o
}

// ipBinding is ip(words) for a dump whose images are in byte order order.
func ipBinding(order binary.ByteOrder) cel.LateBoundFunction {
	return func(_ string, args ...ref.Val) ref.Val {
		if len(args) != 1 {
			return types.NewErr("ip: want one argument")
		}
		l, ok := args[0].(traits.Lister)
		if !ok {
			return types.MaybeNoSuchOverloadErr(args[0])
		}
		n, ok := l.Size().(types.Int)
		if !ok || n != 1 && n != 4 {
			return types.NewErr("ip: %v words: want 1 (IPv4) or 4 (IPv6)", l.Size())
		}
		words := make([]uint32, n)
		for i := range words {
			w, errVal := nonNegativeArg("ip", l.Get(types.Int(i)))
			if errVal != nil {
				return errVal
			}
			if w > 0xffffffff {
				return types.NewErr("ip: word %d is %d, more than 32 bits", i, w)
			}
			words[i] = uint32(w)
		}
		s, err := annot.FormatIP(words, order)
		if err != nil {
			return types.NewErr("ip: %v", err)
		}
		return types.String(s)
	}
}
