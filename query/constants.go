package query

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/proto/images"
)

// Constant is a named value that critq's CEL dialect declares.
type Constant struct {
	Name  string
	Value ref.Val // types.Uint, or types.Int for enum values
	Group string  // what the value is for, e.g. "vma_entry.prot"
}

// Constants returns the named constants of the dialect, grouped by the
// field they belong to:
//
//   - the bits of crit's flag tables (flagnames): PROT_READ, MAP_PRIVATE,
//     VMA_AREA_HEAP, O_RDWR, F_SEAL_WRITE, PE_PRESENT, ..., the VMA status
//     bits crit does not name (VMA_AREA_GUARD, VMA_PREMMAPED, ...), and a
//     few values a query needs that crit never prints (O_RDONLY, O_ACCMODE,
//     MAP_LOCKED, MAP_NORESERVE, MAP_HUGETLB, ...);
//   - socket families, types, TCP states and IP protocols with their C
//     names: AF_INET, SOCK_STREAM, TCP_LISTEN, IPPROTO_TCP, ... (crit's
//     short names, such as PACKET, would clash: AF_PACKET is 17 and
//     SOCK_PACKET 10);
//   - compel's task states TASK_ALIVE 1, TASK_DEAD 2, TASK_STOPPED 3 and
//     TASK_ZOMBIE 6 (crit 4.2 prints 3 as Zombie and 6 as Stopped). CRIU
//     writes a zombie's state as TASK_DEAD (criu/seize.c turns TASK_ZOMBIE
//     into TASK_DEAD), so a query for zombies tests TASK_DEAD;
//   - the file types of the fd_types enum: REG, PIPE, FIFO, INETSK, ...
//
// Flag bits and states are uints, like the fields that hold them; file types
// are ints, like the enum fields.
func Constants() []Constant {
	var out []Constant
	add := func(group string, flags []flagnames.Flag, prefix string) {
		for _, f := range flags {
			out = append(out, Constant{Name: prefix + f.Name, Value: types.Uint(f.Value), Group: group})
		}
	}
	add("vma_entry.prot", flagnames.Table("mmap.prot"), "")
	add("vma_entry.flags", flagnames.Table("mmap.flags"), "")
	add("vma_entry.flags", extraMapFlags(), "")
	add("vma_entry.status", flagnames.Table("mmap.status"), "")
	add("vma_entry.status", flagnames.ExtraVMAStatus, "")
	add("reg_file_entry.flags", flagnames.Table("rfile.flags"), "")
	add("reg_file_entry.flags", extraOpenFlags(), "")
	add("memfd_inode_entry.seals", flagnames.Table("seals.flags"), "")
	add("pagemap_entry.flags", flagnames.Table("pmap.flags"), "")
	add("inet_sk_entry.family", flagnames.Dict("sk", "family"), "AF_")
	add("inet_sk_entry.type", flagnames.Dict("sk", "type"), "SOCK_")
	add("inet_sk_entry.state", flagnames.Dict("sk", "state"), "TCP_")
	add("inet_sk_entry.state", []flagnames.Flag{{Name: "CLOSING", Value: 11}}, "TCP_")
	add("inet_sk_entry.proto", flagnames.Dict("sk", "proto"), "IPPROTO_")
	add("inet_sk_entry.proto", extraProtocols(), "IPPROTO_")
	add("task_core_entry.task_state", flagnames.TaskStates, "TASK_")
	fdTypes := images.FdTypes(0).Descriptor().Values()
	for i := range fdTypes.Len() {
		v := fdTypes.Get(i)
		out = append(out, Constant{Name: string(v.Name()), Value: types.Int(v.Number()), Group: enumGroup(v)})
	}
	return out
}

func enumGroup(v protoreflect.EnumValueDescriptor) string {
	return string(v.Parent().Name())
}

// extraMapFlags are mmap flags CRIU records in vma_entry.flags that crit's
// table lacks (Linux uapi values, x86 and generic).
func extraMapFlags() []flagnames.Flag {
	return []flagnames.Flag{
		{Name: "MAP_ANONYMOUS", Value: 0x20}, {Name: "MAP_FIXED", Value: 0x10}, {Name: "MAP_LOCKED", Value: 0x2000},
		{Name: "MAP_NORESERVE", Value: 0x4000}, {Name: "MAP_HUGETLB", Value: 0x40000},
	}
}

// extraOpenFlags are open(2) flags crit's table lacks (asm-generic values).
func extraOpenFlags() []flagnames.Flag {
	return []flagnames.Flag{
		{Name: "O_RDONLY", Value: 0}, {Name: "O_ACCMODE", Value: 0o3}, {Name: "O_SYNC", Value: 0o4010000},
		{Name: "O_PATH", Value: 0o10000000}, {Name: "O_TMPFILE", Value: 0o20200000},
	}
}

// extraProtocols are IP protocols crit's table lacks.
func extraProtocols() []flagnames.Flag {
	return []flagnames.Flag{
		{Name: "ICMP", Value: 1}, {Name: "ICMPV6", Value: 58}, {Name: "SCTP", Value: 132}, {Name: "RAW", Value: 255},
	}
}

// constantOptions declares every constant of Constants.
func constantOptions() []cel.EnvOption {
	cs := Constants()
	opts := make([]cel.EnvOption, 0, len(cs))
	for _, c := range cs {
		t := cel.UintType
		if c.Value.Type() == types.IntType {
			t = cel.IntType
		}
		opts = append(opts, cel.Constant(c.Name, t, c.Value))
	}
	return opts
}
