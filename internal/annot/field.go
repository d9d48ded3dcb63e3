package annot

import (
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/proto/images"
)

// Field is how crit presents and reads back one integer field of the
// image schema: its (criu) options resolved to tables.
type Field struct {
	Hex       bool             // "0x1f"
	Dev, ODev bool             // "major:minor", kernel or glibc encoding
	IPAdd     bool             // words of an address (see IPAddr)
	Flags     []flagnames.Flag // "PROT_READ | PROT_WRITE"
	FlagsHex  bool             // a flags option naming no table crit knows: hex
	Dict      []flagnames.Flag // a value's name ("LISTEN")
	TaskState bool             // Dict is the task states; crit's spellings parse too
}

// FieldOf resolves the (criu) options of fd.
func FieldOf(fd protoreflect.FieldDescriptor) Field {
	return fieldOf(images.FieldOptions(fd), string(fd.Name()))
}

func fieldOf(o images.Options, name string) Field {
	f := Field{Hex: o.Hex, Dev: o.Dev, ODev: o.ODev, IPAdd: o.IPAdd}
	if o.Flags != "" {
		f.Flags = flagnames.Table(o.Flags)
		f.FlagsHex = f.Flags == nil
	}
	switch {
	case o.Dict == "gen": // task_state, and the views' task.state
		f.Dict, f.TaskState = flagnames.TaskStates, true
	case o.Dict != "":
		f.Dict = flagnames.Dict(o.Dict, name)
	}
	return f
}

// Annotated reports whether crit prints the field in a form other than a
// plain number, so that a string is a valid value for it.
func (f Field) Annotated() bool {
	return f.Hex || f.Dev || f.IPAdd || f.Flags != nil || f.FlagsHex || f.Dict != nil
}

// AppendText appends the pretty form of integer v of the field, as crit
// prints it, in crit's order of conversions: hex (when hex is set, the
// field's own option or one inherited from an enclosing message), dev,
// flags, dict; else the decimal number. signed says v holds an int64; a
// negative value is printed as a number (or "-0x.." under hex). The result
// str says the text is a JSON string (to be quoted) rather than a number.
func (f *Field) AppendText(dst []byte, v uint64, signed, hex bool) (out []byte, str bool) {
	neg := signed && int64(v) < 0
	switch {
	case hex || f.Hex || f.FlagsHex:
		if neg {
			dst = append(dst, '-')
			v = -v
		}
		return strconv.AppendUint(append(dst, "0x"...), v, 16), true
	case neg:
	case f.Dev:
		return AppendDev(dst, v, f.ODev), true
	case f.Flags != nil:
		return flagnames.AppendFormat(dst, f.Flags, v), true
	case f.Dict != nil:
		if name, ok := flagnames.Name(f.Dict, v); ok {
			return append(dst, name...), true
		}
	}
	if signed {
		return strconv.AppendInt(dst, int64(v), 10), false
	}
	return strconv.AppendUint(dst, v, 10), false
}

// ParseText reads the string form of an integer field as crit's encoder
// reads it: "major:minor" for dev fields, flag names and literals joined
// by "|" for flags, value names for dicts (task states in critq's and
// crit's spellings), else Python's int(s, 0). It returns the magnitude
// and sign; the caller checks the range of the field's type.
func (f *Field) ParseText(s string) (neg bool, mag uint64, ok bool) {
	switch {
	case f.Dev && strings.Contains(s, ":"):
		v, ok := ParseDev(s, f.ODev)
		return false, v, ok
	case f.Flags != nil:
		v, ok := flagnames.Parse(f.Flags, s)
		return false, v, ok
	case f.TaskState:
		if v, ok := flagnames.ParseTaskState(s); ok {
			return false, v, true
		}
	case f.Dict != nil:
		if v, ok := flagnames.Value(f.Dict, s); ok {
			return false, v, true
		}
	}
	return PyInt(s)
}

// PyInt parses s as Python's int(s, 0): surrounding spaces, a sign, a
// 0x/0o/0b prefix or decimal digits without leading zeros, "_" between
// digits.
func PyInt(s string) (neg bool, mag uint64, ok bool) {
	s = strings.TrimSpace(s)
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	base := 10
	if len(s) > 1 && s[0] == '0' {
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 10 {
			s = strings.TrimPrefix(s[2:], "_")
		}
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return false, 0, false
	}
	s = strings.ReplaceAll(s, "_", "")
	if base == 10 && len(s) > 1 && s[0] == '0' && strings.Trim(s, "0") != "" {
		return false, 0, false
	}
	v, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		return false, 0, false
	}
	return neg && v != 0, v, true
}

// TaskStateName returns the name critq prints for a task state (ALIVE,
// DEAD, STOPPED, ZOMBIE), or the number.
func TaskStateName(v uint64) string {
	if s, ok := flagnames.Name(flagnames.TaskStates, v); ok {
		return s
	}
	return strconv.FormatUint(v, 10)
}
