package query

import (
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/proto/views"
)

const overlappingOverload = "critq_overlapping"

// The fields of a vma that overlapping reads.
var (
	vmaStartField = (&views.Vma{}).ProtoReflect().Descriptor().Fields().ByName("start")
	vmaEndField   = (&views.Vma{}).ProtoReflect().Descriptor().Fields().ByName("end")
)

// overlapping is overlapping(list(vma), start, end) (lib.go): the VMAs of
// the list with v.end > start && v.start < end. It reads the messages
// behind the list where it can (a view, a repeated field of a view), and
// converts only the VMAs it returns.
func overlapping(args ...ref.Val) ref.Val {
	if len(args) != 3 {
		return types.NewErr("overlapping: want a list of VMAs, a start and an end")
	}
	l, ok := args[0].(traits.Lister)
	start, ok1 := args[1].(types.Uint)
	end, ok2 := args[2].(types.Uint)
	if !ok || !ok1 || !ok2 {
		return types.MaybeNoSuchOverloadErr(args[0])
	}
	n, _ := l.Size().(types.Int)
	var at func(i int) protoreflect.Message
	switch x := l.(type) {
	case *msgList[*views.Vma]:
		at = x.at
	default:
		if pl, ok := l.Value().(protoreflect.List); ok && pl.Len() == int(n) {
			at = func(i int) protoreflect.Message { return pl.Get(i).Message() }
		} else {
			at = func(i int) protoreflect.Message {
				if m, ok := l.Get(types.Int(i)).Value().(proto.Message); ok {
					return m.ProtoReflect()
				}
				return nil
			}
		}
	}
	var out []ref.Val
	for i := 0; i < int(n); i++ {
		m := at(i)
		if m == nil || m.Descriptor().FullName() != typeVMA {
			return types.NewErr("overlapping: element %d is no vma", i)
		}
		if m.Get(vmaEndField).Uint() > uint64(start) && m.Get(vmaStartField).Uint() < uint64(end) {
			out = append(out, l.Get(types.Int(i)))
		}
	}
	return types.NewRefValList(types.DefaultTypeAdapter, out)
}

// overlappingCost charges one per 16 VMAs read and one per VMA returned.
func overlappingCost(args []ref.Val, result ref.Val) *uint64 {
	var c uint64 = 1
	if len(args) > 0 {
		if s, ok := args[0].(traits.Sizer); ok {
			if n, ok := s.Size().(types.Int); ok && n > 0 {
				c += uint64(n) / 16
			}
		}
	}
	if s, ok := result.(traits.Sizer); ok {
		if n, ok := s.Size().(types.Int); ok && n > 0 {
			c += uint64(n)
		}
	}
	return &c
}
