// Package flagnames holds the named bits and values that crit prints for
// fields with the (criu).flags and (criu).dict options, in crit's order, and
// the task states of compel. The JSON encoder renders and parses them; the
// query engine turns them into CEL constants and the flags() function.
package flagnames

import (
	"strconv"
	"strings"
)

// Flag is one named bit (or value) of a table.
type Flag struct {
	Name  string
	Value uint64
}

// Flag tables by the name the schema's (criu).flags option uses. Bits are
// tested in this order and names are printed in this order.
var flagTables = map[string][]Flag{
	"mmap.prot": {
		{"PROT_READ", 0x1}, {"PROT_WRITE", 0x2}, {"PROT_EXEC", 0x4},
	},
	"mmap.flags": {
		{"MAP_SHARED", 0x1}, {"MAP_PRIVATE", 0x2}, {"MAP_DROPPABLE", 0x8}, {"MAP_ANON", 0x20}, {"MAP_GROWSDOWN", 0x100},
	},
	"mmap.status": {
		{"VMA_AREA_NONE", 0}, {"VMA_AREA_REGULAR", 1 << 0}, {"VMA_AREA_STACK", 1 << 1}, {"VMA_AREA_VSYSCALL", 1 << 2},
		{"VMA_AREA_VDSO", 1 << 3}, {"VMA_AREA_HEAP", 1 << 5}, {"VMA_FILE_PRIVATE", 1 << 6}, {"VMA_FILE_SHARED", 1 << 7},
		{"VMA_ANON_SHARED", 1 << 8}, {"VMA_ANON_PRIVATE", 1 << 9}, {"VMA_AREA_SYSVIPC", 1 << 10}, {"VMA_AREA_SOCKET", 1 << 11},
		{"VMA_AREA_VVAR", 1 << 12}, {"VMA_AREA_AIORING", 1 << 13}, {"VMA_AREA_MEMFD", 1 << 14}, {"VMA_AREA_SHSTK", 1 << 15},
		{"VMA_AREA_UPROBES", 1 << 17}, {"VMA_UNSUPP", 1 << 31},
	},
	"rfile.flags": {
		{"O_WRONLY", 0o1}, {"O_RDWR", 0o2}, {"O_CREAT", 0o100}, {"O_EXCL", 0o200}, {"O_NOCTTY", 0o400},
		{"O_TRUNC", 0o1000}, {"O_APPEND", 0o2000}, {"O_NONBLOCK", 0o4000}, {"O_DSYNC", 0o10000},
		{"FASYNC", 0o20000}, {"O_DIRECT", 0o40000}, {"O_LARGEFILE", 0o100000}, {"O_DIRECTORY", 0o200000},
		{"O_NOFOLLOW", 0o400000}, {"O_NOATIME", 0o1000000}, {"O_CLOEXEC", 0o2000000},
	},
	"seals.flags": {
		{"F_SEAL_SEAL", 0x1}, {"F_SEAL_SHRINK", 0x2}, {"F_SEAL_GROW", 0x4}, {"F_SEAL_WRITE", 0x8}, {"F_SEAL_FUTURE_WRITE", 0x10},
	},
	"pmap.flags": {
		{"PE_PARENT", 0x1}, {"PE_LAZY", 0x2}, {"PE_PRESENT", 0x4},
	},
}

// Extra bits CRIU defines for vma_entry.status (criu/include/image.h) that
// crit's table lacks and prints as a hex leftover.
var ExtraVMAStatus = []Flag{
	{"VMA_AREA_GUARD", 1 << 16}, {"VMA_EXT_PLUGIN", 1 << 27}, {"VMA_CLOSE", 1 << 28},
	{"VMA_NO_PROT_WRITE", 1 << 29}, {"VMA_PREMMAPED", 1 << 30},
}

// Table returns the flag table of a (criu).flags option value, or nil.
// The slice is shared: do not modify it.
func Table(name string) []Flag { return flagTables[name] }

// TableNames returns the names of the flag tables.
func TableNames() []string {
	return []string{"mmap.flags", "mmap.prot", "mmap.status", "pmap.flags", "rfile.flags", "seals.flags"}
}

// Format renders v as crit does: the names of the set bits of table t in
// table order joined by " | ", then any bits left over as one "0x%x";
// "" for zero.
func Format(t []Flag, v uint64) string { return string(AppendFormat(nil, t, v)) }

// AppendFormat appends Format(t, v) to dst.
func AppendFormat(dst []byte, t []Flag, v uint64) []byte {
	start := len(dst)
	for _, f := range t {
		if f.Value != 0 && v&f.Value == f.Value {
			if len(dst) > start {
				dst = append(dst, " | "...)
			}
			dst = append(dst, f.Name...)
			v &^= f.Value
		}
	}
	if v != 0 {
		if len(dst) > start {
			dst = append(dst, " | "...)
		}
		dst = append(dst, "0x"...)
		dst = strconv.AppendUint(dst, v, 16)
	}
	return dst
}

// Parse is the inverse of Format as crit's encoder implements it: names and
// integer literals (decimal, 0x, 0o, 0b) separated by "|", added up.
// "" is 0.
func Parse(t []Flag, s string) (uint64, bool) {
	var v uint64
	for _, part := range strings.Split(s, "|") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if n, ok := lookup(t, part); ok {
			v += n
			continue
		}
		n, err := strconv.ParseUint(part, 0, 64)
		if err != nil {
			return 0, false
		}
		v += n
	}
	return v, true
}

func lookup(t []Flag, name string) (uint64, bool) {
	for _, f := range t {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

// Dict tables of the (criu).dict option, keyed by table and then by field
// name, as in crit's pb2dict.py.
var dictTables = map[string]map[string][]Flag{
	"sk": {
		"family": {{"UNIX", 1}, {"INET", 2}, {"INET6", 10}, {"NETLINK", 16}, {"PACKET", 17}},
		"type":   {{"STREAM", 1}, {"DGRAM", 2}, {"RAW", 3}, {"SEQPACKET", 5}, {"PACKET", 10}},
		"state": {{"ESTABLISHED", 1}, {"SYN_SENT", 2}, {"SYN_RECV", 3}, {"FIN_WAIT1", 4}, {"FIN_WAIT2", 5},
			{"TIME_WAIT", 6}, {"CLOSE", 7}, {"CLOSE_WAIT", 8}, {"LAST_ACK", 9}, {"LISTEN", 10}},
		"proto": {{"IP", 0}, {"TCP", 6}, {"UDP", 17}, {"UDPLITE", 136}},
	},
	// crit 4.2's "gen" table says 3 Zombie and 6 Stopped: swapped (bug B7),
	// and lacks 2. These are compel's values (compel/include/uapi/task-state.h).
	"gen": {
		"task_state": TaskStates,
	},
}

// TaskStates are compel's task states with the names critq prints: compel's
// (COMPEL_TASK_ZOMBIE is ZOMBIE), spelt apart from crit's so that JSON from
// either tool parses back to the value it was printed for.
var TaskStates = []Flag{{"ALIVE", 1}, {"DEAD", 2}, {"STOPPED", 3}, {"ZOMBIE", 6}}

// CritTaskStates are the names crit 4.2 prints for task states, at the
// values it prints them for: wrong for 3 and 6 (bug B7).
var CritTaskStates = []Flag{{"Alive", 1}, {"Zombie", 3}, {"Stopped", 6}}

// ParseTaskState reads a task state name as critq prints it or as crit 4.2
// printed it (at crit's values: "Zombie" is 3, bug B7).
func ParseTaskState(name string) (uint64, bool) {
	if v, ok := lookup(TaskStates, name); ok {
		return v, true
	}
	return lookup(CritTaskStates, name)
}

// Dict returns the value table of a (criu).dict option for a field, or nil.
func Dict(table, field string) []Flag { return dictTables[table][field] }

// Name returns the name of value v in table t.
func Name(t []Flag, v uint64) (string, bool) {
	for _, f := range t {
		if f.Value == v {
			return f.Name, true
		}
	}
	return "", false
}

// Value returns the value of name in table t.
func Value(t []Flag, name string) (uint64, bool) { return lookup(t, name) }
