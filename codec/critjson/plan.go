package critjson

import (
	"sort"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/proto/images"
)

// A msgPlan is what the encoder and the parser need to know about one
// message type, computed once from its descriptor: the fields in
// field-number order with their JSON keys, wire types and crit's options.
type msgPlan struct {
	desc   protoreflect.MessageDescriptor
	fields []*fieldPlan // in field-number order
	byNum  []*fieldPlan // indexed by number when the numbers are small
	byName map[string]*fieldPlan
}

// field returns the field with number num, or nil.
func (p *msgPlan) field(num protowire.Number) *fieldPlan {
	if p.byNum != nil {
		if int(num) < len(p.byNum) && num >= 0 {
			return p.byNum[num]
		}
		return nil
	}
	i := sort.Search(len(p.fields), func(i int) bool { return p.fields[i].num >= num })
	if i < len(p.fields) && p.fields[i].num == num {
		return p.fields[i]
	}
	return nil
}

type fieldPlan struct {
	num  protowire.Number
	name string
	key  []byte // `"name": `
	kind protoreflect.Kind
	wire protowire.Type
	list bool
	msg  *msgPlan // message fields

	enumNames  map[int32]string
	enumValues map[string]int32

	// crit's options (proto/images.Options), resolved to tables.
	annot.Field
	unixName bool
}

// planSet builds the plans of every message type of the CRIU schema once.
// The result is never modified afterwards.
var planSet = sync.OnceValue(func() map[protoreflect.FullName]*msgPlan {
	b := planBuilder{plans: map[protoreflect.FullName]*msgPlan{}}
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if md := mt.Descriptor(); strings.HasPrefix(string(md.FullName()), "critq.images.") {
			b.plan(md)
		}
		return true
	})
	return b.plans
})

// planFor returns the plan of md: the cached one for the CRIU schema, or a
// new one for other message types.
func planFor(md protoreflect.MessageDescriptor) *msgPlan {
	if p, ok := planSet()[md.FullName()]; ok && p.desc == md {
		return p
	}
	b := planBuilder{plans: map[protoreflect.FullName]*msgPlan{}}
	return b.plan(md)
}

type planBuilder struct {
	plans map[protoreflect.FullName]*msgPlan
}

func (b *planBuilder) plan(md protoreflect.MessageDescriptor) *msgPlan {
	if p, ok := b.plans[md.FullName()]; ok {
		return p
	}
	p := &msgPlan{desc: md, byName: map[string]*fieldPlan{}}
	b.plans[md.FullName()] = p // before the fields: types may nest themselves
	fds := md.Fields()
	maxNum := protowire.Number(0)
	for i := 0; i < fds.Len(); i++ {
		f := b.field(fds.Get(i))
		p.fields = append(p.fields, f)
		p.byName[f.name] = f
		maxNum = max(maxNum, f.num)
	}
	sort.Slice(p.fields, func(i, j int) bool { return p.fields[i].num < p.fields[j].num })
	if maxNum <= 512 {
		p.byNum = make([]*fieldPlan, maxNum+1)
		for _, f := range p.fields {
			p.byNum[f.num] = f
		}
	}
	return p
}

var wireTypes = map[protoreflect.Kind]protowire.Type{
	protoreflect.BoolKind: protowire.VarintType, protoreflect.EnumKind: protowire.VarintType,
	protoreflect.Int32Kind: protowire.VarintType, protoreflect.Sint32Kind: protowire.VarintType,
	protoreflect.Uint32Kind: protowire.VarintType, protoreflect.Int64Kind: protowire.VarintType,
	protoreflect.Sint64Kind: protowire.VarintType, protoreflect.Uint64Kind: protowire.VarintType,
	protoreflect.Fixed32Kind: protowire.Fixed32Type, protoreflect.Sfixed32Kind: protowire.Fixed32Type,
	protoreflect.FloatKind: protowire.Fixed32Type, protoreflect.Fixed64Kind: protowire.Fixed64Type,
	protoreflect.Sfixed64Kind: protowire.Fixed64Type, protoreflect.DoubleKind: protowire.Fixed64Type,
	protoreflect.StringKind: protowire.BytesType, protoreflect.BytesKind: protowire.BytesType,
	protoreflect.MessageKind: protowire.BytesType, protoreflect.GroupKind: protowire.StartGroupType,
}

func (b *planBuilder) field(fd protoreflect.FieldDescriptor) *fieldPlan {
	name := string(fd.Name())
	f := &fieldPlan{
		num:  fd.Number(),
		name: name,
		key:  []byte(`"` + name + `": `),
		kind: fd.Kind(),
		wire: wireTypes[fd.Kind()],
		list: fd.Cardinality() == protoreflect.Repeated,
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		f.msg = b.plan(fd.Message())
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		f.enumNames = make(map[int32]string, vals.Len())
		f.enumValues = make(map[string]int32, vals.Len())
		for i := 0; i < vals.Len(); i++ {
			v := vals.Get(i)
			if _, dup := f.enumNames[int32(v.Number())]; !dup {
				f.enumNames[int32(v.Number())] = string(v.Name())
			}
			f.enumValues[string(v.Name())] = int32(v.Number())
		}
	}
	o := images.FieldOptions(fd)
	f.Field = annot.FieldOf(fd)
	f.unixName = o.Conv == "unix_name"
	return f
}
