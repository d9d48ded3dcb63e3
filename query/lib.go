package query

import (
	"errors"
	"path"
	"strconv"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/internal/annot"
)

// funcLib is critq.lib: the functions and constants critq adds to CEL.
//
// # Hex
//
// hex renders an integer in hexadecimal as crit does for fields with the
// (criu).hex option: lower case, no padding, a minus sign before a negative
// int.
//
//	hex(<int>) -> <string>
//	hex(<uint>) -> <string>
//
// Examples:
//
//	hex(4096u) // "0x1000"
//	hex(0)     // "0x0"
//	hex(-255)  // "-0xff"
//
// # Flags
//
// flags names the set bits of a value by one of crit's flag tables
// ("mmap.prot", "mmap.flags", "mmap.status", "rfile.flags",
// "seals.flags", "pmap.flags"), as crit's pretty output does: names in table
// order joined by " | ", bits the table lacks as one trailing hex number,
// "" for 0. An unknown table or a negative value is an error.
//
//	flags(<int|uint>, <string>) -> <string>
//
// Examples:
//
//	flags(5u, "mmap.prot")        // "PROT_READ | PROT_EXEC"
//	flags(0x10004, "pmap.flags")  // "PE_PRESENT | 0x10000"
//
// # Dict
//
// dict names a value by one of crit's value tables, "table.field":
// "sk.family", "sk.type", "sk.state", "sk.proto" and "gen.task_state" (with
// compel's task state names, not crit 4.2's swapped ones). A value the table
// lacks is rendered in decimal.
//
//	dict(<int|uint>, <string>) -> <string>
//
// Examples:
//
//	dict(10u, "sk.state")      // "LISTEN"
//	dict(6u, "gen.task_state") // "ZOMBIE"
//
// # IP
//
// ip renders an address held as 32-bit words in the way CRIU stores
// inet_sk_entry.src_addr: the network-order bytes of the address in words
// of the dumping host's byte order, which is the byte order of the dump's
// images (the examples are of a little-endian dump). One word is an IPv4
// address, four an IPv6 address; other lengths are errors. The binding is
// late: each evaluation binds ip to the order of its dump (ip.go).
//
//	ip(<list<uint>>) -> <string>
//
// Examples:
//
//	ip([16777343u])            // "127.0.0.1"
//	ip([0u, 0u, 0u, 16777216u]) // "::1"
//
// # Major and minor
//
// major and minor split a device number as the kernel encodes it inside
// CRIU images ((criu).dev fields): major = dev >> 20, minor = dev & 0xfffff.
//
//	major(<int|uint>) -> <int|uint>
//	minor(<int|uint>) -> <int|uint>
//
// Examples:
//
//	major(8388609u) // 8u
//	minor(8388609u) // 1u
//
// # Human
//
// human renders a byte count with binary units the way ls -h rounds (up,
// so that a size is never understated): bytes below 1024, then one decimal
// below 10 of a unit and none above.
//
//	human(<int|uint>) -> <string>
//
// Examples:
//
//	human(512)     // "512 B"
//	human(4096)    // "4.0 KiB"
//	human(4097)    // "4.1 KiB"
//	human(1 << 30) // "1.0 GiB"
//	human(123456)  // "121 KiB"
//
// # Glob
//
// glob reports whether a slash-separated path matches a shell pattern:
// '*' matches any run of characters but '/', '?' one character but '/',
// '[...]' a class (as in Go's path.Match), '\' quotes the next character,
// and a whole segment "**" matches any number of segments, none included.
// A malformed pattern is an error.
//
//	glob(<string>, <string>) -> <bool>
//	<string>.glob(<string>) -> <bool>
//
// Examples:
//
//	glob("/usr/lib/libc.so.6", "/usr/lib/*.so*") // true
//	"/usr/lib/x86_64/libc.so.6".glob("/usr/**/libc.*") // true
//	glob("/usr/lib/x86_64/libc.so.6", "/usr/*.so*") // false
//
// Regular expressions are CEL's own: path.matches("^/tmp/").
//
// # Basename and dirname
//
// basename and dirname split a slash-separated path as the shell commands
// do.
//
//	basename(<string>) -> <string>
//	dirname(<string>) -> <string>
//
// Examples:
//
//	basename("/usr/lib/libc.so.6") // "libc.so.6"
//	dirname("/usr/lib/libc.so.6")  // "/usr/lib"
//	dirname("libc.so.6")           // "."
//
// # Overlapping
//
// overlapping returns the VMAs of a list that overlap the address range
// [start, end) (v.end > start && v.start < end), in the list's order: the
// VMAs a pagemap run covers. It compares in Go, in time linear in the list,
// where the same filter in CEL costs a few evaluation steps per VMA, and
// it is charged a cost of one per 16 VMAs read and one per VMA returned.
//
//	overlapping(list(vma), <uint>, <uint>) -> list(vma)
//
// Examples:
//
//	pagemaps.map(p, overlapping(vmas.filter(v, v.pid == p.pid), p.vaddr, p.vaddr + p.nr_pages * 4096u).size())
//	tasks.map(t, overlapping(t.vmas, 0x400000u, 0x401000u))
//
// # Sum
//
// The total of a list of numbers, of the element type; 0 for an empty list.
//
//	sum(list(int)) -> int, list(int).sum() -> int (also uint and double)
//	vmas.map(v, v.size).sum()       // bytes mapped by every task
type funcLib struct{}

// LibraryName implements cel.SingletonLibrary.
func (funcLib) LibraryName() string { return "critq.lib" }

// CompileOptions implements cel.Library.
func (funcLib) CompileOptions() []cel.EnvOption {
	str, integer, unsigned := cel.StringType, cel.IntType, cel.UintType
	opts := []cel.EnvOption{
		cel.Function("hex",
			cel.Overload("critq_hex_int", []*cel.Type{integer}, str,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return types.String(Hex(int64(v.(types.Int)))) })),
			cel.Overload("critq_hex_uint", []*cel.Type{unsigned}, str,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return types.String(HexUint(uint64(v.(types.Uint)))) }))),
		cel.Function("flags", flagTableOverloads("flags", flagTableByName)...),
		cel.Function("dict", flagTableOverloads("dict", dictTableByName)...),
		cel.Function("ip",
			cel.Overload("critq_ip_list", []*cel.Type{cel.ListType(cel.DynType)}, str,
				cel.LateFunctionBinding())),
		cel.Function("major", devNumberOverloads("major", annot.DevMajor)...),
		cel.Function("minor", devNumberOverloads("minor", annot.DevMinor)...),
		cel.Function("human",
			cel.Overload("critq_human_int", []*cel.Type{integer}, str,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					n := v.(types.Int)
					if n < 0 {
						return types.String("-" + annot.Size(uint64(-n)))
					}
					return types.String(annot.Size(uint64(n)))
				})),
			cel.Overload("critq_human_uint", []*cel.Type{unsigned}, str,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return types.String(annot.Size(uint64(v.(types.Uint)))) }))),
		cel.Function("glob",
			cel.Overload("critq_glob", []*cel.Type{str, str}, cel.BoolType, cel.BinaryBinding(globCELBinding)),
			cel.MemberOverload("critq_string_glob", []*cel.Type{str, str}, cel.BoolType, cel.BinaryBinding(globCELBinding))),
		cel.Function("basename",
			cel.Overload("critq_basename", []*cel.Type{str}, str,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return types.String(path.Base(string(v.(types.String)))) }))),
		cel.Function("sum", sumOverloads()...),
		cel.Function("dirname",
			cel.Overload("critq_dirname", []*cel.Type{str}, str,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return types.String(path.Dir(string(v.(types.String)))) }))),
		cel.Function("overlapping",
			cel.Overload(overlappingOverload, []*cel.Type{cel.ListType(cel.ObjectType(typeVMA)), unsigned, unsigned},
				cel.ListType(cel.ObjectType(typeVMA)), cel.FunctionBinding(overlapping))),
	}
	return append(opts, constantOptions()...)
}

// ProgramOptions implements cel.Library.
func (funcLib) ProgramOptions() []cel.ProgramOption {
	return []cel.ProgramOption{cel.CostTrackerOptions(cost.OverloadTracker(overlappingOverload, overlappingCost))}
}

// sumOverloads declares sum(list) and list.sum() for lists of int, uint and
// double: the total, of the element type; 0 for an empty list. An overflow
// is an error value.
func sumOverloads() []cel.FunctionOpt {
	var opts []cel.FunctionOpt
	for _, t := range []struct {
		name string
		typ  *cel.Type
	}{{"int", cel.IntType}, {"uint", cel.UintType}, {"double", cel.DoubleType}} {
		opts = append(opts,
			cel.Overload("critq_sum_"+t.name, []*cel.Type{cel.ListType(t.typ)}, t.typ, cel.UnaryBinding(sumList(t.typ))),
			cel.MemberOverload("critq_list_sum_"+t.name, []*cel.Type{cel.ListType(t.typ)}, t.typ, cel.UnaryBinding(sumList(t.typ))))
	}
	return opts
}

func sumList(t *cel.Type) func(ref.Val) ref.Val {
	var zero ref.Val
	switch t {
	case cel.IntType:
		zero = types.Int(0)
	case cel.UintType:
		zero = types.Uint(0)
	default:
		zero = types.Double(0)
	}
	return func(v ref.Val) ref.Val {
		l, ok := v.(traits.Lister)
		if !ok {
			return types.MaybeNoSuchOverloadErr(v)
		}
		acc := zero
		it := l.Iterator()
		for it.HasNext() == types.True {
			e := it.Next()
			adder, ok := acc.(traits.Adder)
			if !ok {
				return types.MaybeNoSuchOverloadErr(acc)
			}
			acc = adder.Add(e)
			if types.IsError(acc) {
				return acc
			}
		}
		return acc
	}
}

// Hex renders v as crit renders (criu).hex fields: "0x1f", "0x0"; "-0x1f"
// for a negative v.
func Hex(v int64) string {
	if v < 0 {
		return "-0x" + strconv.FormatUint(uint64(-v), 16)
	}
	return HexUint(uint64(v))
}

// HexUint renders v as crit renders (criu).hex fields.
func HexUint(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

// flagTableOverloads declares fn(int|uint, string) -> string over the tables
// that byName finds.
func flagTableOverloads(fn string, byName func(string) ([]flagnames.Flag, func([]flagnames.Flag, uint64) string, bool)) []cel.FunctionOpt {
	apply := func(v ref.Val, name ref.Val) ref.Val {
		n, errVal := nonNegativeArg(fn, v)
		if errVal != nil {
			return errVal
		}
		table, format, ok := byName(string(name.(types.String)))
		if !ok {
			return types.NewErr("%s: unknown table %q", fn, string(name.(types.String)))
		}
		return types.String(format(table, n))
	}
	return []cel.FunctionOpt{
		cel.Overload("critq_"+fn+"_int", []*cel.Type{cel.IntType, cel.StringType}, cel.StringType, cel.BinaryBinding(apply)),
		cel.Overload("critq_"+fn+"_uint", []*cel.Type{cel.UintType, cel.StringType}, cel.StringType, cel.BinaryBinding(apply)),
	}
}

func flagTableByName(name string) ([]flagnames.Flag, func([]flagnames.Flag, uint64) string, bool) {
	t := flagnames.Table(name)
	return t, flagnames.Format, t != nil
}

func dictTableByName(name string) ([]flagnames.Flag, func([]flagnames.Flag, uint64) string, bool) {
	table, field, _ := strings.Cut(name, ".")
	t := flagnames.Dict(table, field)
	return t, dictValueName, t != nil
}

func dictValueName(t []flagnames.Flag, v uint64) string {
	if s, ok := flagnames.Name(t, v); ok {
		return s
	}
	return strconv.FormatUint(v, 10)
}

// nonNegativeArg returns an int or uint value as a uint64, or an error value
// for a negative int.
func nonNegativeArg(fn string, v ref.Val) (uint64, ref.Val) {
	switch n := v.(type) {
	case types.Uint:
		return uint64(n), nil
	case types.Int:
		if n < 0 {
			return 0, types.NewErr("%s: negative value %d", fn, int64(n))
		}
		return uint64(n), nil
	}
	return 0, types.MaybeNoSuchOverloadErr(v)
}

// devNumberOverloads declares fn(int) -> int and fn(uint) -> uint.
func devNumberOverloads(fn string, f func(uint64) uint64) []cel.FunctionOpt {
	return []cel.FunctionOpt{
		cel.Overload("critq_"+fn+"_int", []*cel.Type{cel.IntType}, cel.IntType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				n, errVal := nonNegativeArg(fn, v)
				if errVal != nil {
					return errVal
				}
				return types.Int(int64(f(n)))
			})),
		cel.Overload("critq_"+fn+"_uint", []*cel.Type{cel.UintType}, cel.UintType,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return types.Uint(f(uint64(v.(types.Uint)))) })),
	}
}

// maxGlobWork bounds the segment comparisons of one Glob call.
const maxGlobWork = 1 << 20

// Glob reports whether the slash-separated name matches pattern: '*', '?',
// '[...]' and '\' within a segment as in path.Match, and a segment "**"
// matching any number of whole segments. The error is path.ErrBadPattern
// for a malformed pattern, or a complaint about a pattern and name too
// long to compare.
func Glob(name, pattern string) (bool, error) {
	pats := strings.Split(pattern, "/")
	for _, p := range pats {
		if p != "**" {
			if _, err := path.Match(p, ""); err != nil {
				return false, err
			}
		}
	}
	segs := strings.Split(name, "/")
	if len(pats)*(len(segs)+1) > maxGlobWork {
		return false, errors.New("glob: pattern and path too long")
	}
	// cur[j]: the patterns so far match the first j segments.
	cur := make([]bool, len(segs)+1)
	next := make([]bool, len(segs)+1)
	cur[0] = true
	for _, p := range pats {
		clear(next)
		if p == "**" {
			seen := false
			for j := range cur {
				seen = seen || cur[j]
				next[j] = seen
			}
		} else {
			for j, s := range segs {
				if cur[j] {
					ok, err := path.Match(p, s)
					if err != nil {
						return false, err
					}
					next[j+1] = ok
				}
			}
		}
		cur, next = next, cur
	}
	return cur[len(segs)], nil
}

func globCELBinding(name, pattern ref.Val) ref.Val {
	ok, err := Glob(string(name.(types.String)), string(pattern.(types.String)))
	if err != nil {
		return types.NewErr("glob: %q: %v", string(pattern.(types.String)), err)
	}
	return types.Bool(ok)
}
