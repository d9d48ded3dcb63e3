package images

import (
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	_ "google.golang.org/protobuf/types/descriptorpb" // field options are descriptorpb.FieldOptions
)

// Options are the (criu) field options of CRIU's opts.proto: how crit
// presents a field in its pretty JSON and how it parses it back.
type Options struct {
	Hex   bool   // print as "0x%x"; inherited by nested messages
	IPAdd bool   // repeated uint32 words of an IPv4 or IPv6 address
	Flags string // name of a flag table ("mmap.prot", "rfile.flags", ...)
	Dev   bool   // a device number printed as "major:minor" (kernel encoding)
	ODev  bool   // with Dev: glibc's user-space dev_t encoding
	Dict  string // name of a value table ("sk", "gen")
	Conv  string // a conversion of bytes ("unix_name")
}

// IsZero reports whether no option is set.
func (o Options) IsZero() bool { return o == Options{} }

// criuOptionField is the extension number of (criu) on FieldOptions.
const criuOptionField = 1018

var optionCache sync.Map // protoreflect.FieldDescriptor -> Options

// FieldOptions returns the (criu) options of a field of the schema. It reads
// them from the field's descriptor whether or not some other package
// registered the extension, and caches the result.
func FieldOptions(fd protoreflect.FieldDescriptor) Options {
	if v, ok := optionCache.Load(fd); ok {
		return v.(Options)
	}
	var o Options
	if opts := fd.Options(); opts != nil {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(opts)
		if err == nil {
			o = parseFieldOptions(b)
		}
	}
	optionCache.Store(fd, o)
	return o
}

// parseFieldOptions finds field 1018 in serialized FieldOptions and decodes
// the CRIU_Opts message it holds. Malformed bytes yield what was read so far.
func parseFieldOptions(b []byte) Options {
	var o Options
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return o
		}
		b = b[n:]
		if num == criuOptionField && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return o
			}
			parseCRIUOpts(v, &o)
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return o
		}
		b = b[n:]
	}
	return o
}

func parseCRIUOpts(b []byte, o *Options) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return
			}
			b = b[n:]
			switch num {
			case 1:
				o.Hex = v != 0
			case 2:
				o.IPAdd = v != 0
			case 4:
				o.Dev = v != 0
			case 5:
				o.ODev = v != 0
			}
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return
			}
			b = b[n:]
			switch num {
			case 3:
				o.Flags = string(v)
			case 6:
				o.Dict = string(v)
			case 7:
				o.Conv = string(v)
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return
			}
			b = b[n:]
		}
	}
}
