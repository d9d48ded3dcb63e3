package diff

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/codec/critjson"
)

// fieldChange is one leaf that differs between two messages of one type.
type fieldChange struct {
	path     string
	old, new string
}

// skipFunc reports whether the field at path (dotted proto names, indexes
// as [i]) is left out of the comparison.
type skipFunc func(path string) bool

// compareMessages appends to out the fields that differ between a and b,
// which have the same type, in field-number order. Singular messages are
// compared field by field, repeated messages element by element (extra
// elements as one change each), repeated scalars and maps as a whole;
// fields the schema does not know as "(unknown fields)", by their bytes.
func compareMessages(out []fieldChange, prefix string, a, b protoreflect.Message, skip skipFunc) []fieldChange {
	if ua, ub := a.GetUnknown(), b.GetUnknown(); !bytes.Equal(ua, ub) {
		// fields the schema does not know: shown by size, compared by bytes
		size := func(u []byte) string {
			if len(u) == 0 {
				return ""
			}
			return strconv.Itoa(len(u)) + " bytes"
		}
		out = append(out, fieldChange{path: prefix + "(unknown fields)", old: size(ua), new: size(ub)})
	}
	fields := a.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		path := prefix + string(fd.Name())
		if skip != nil && skip(path) {
			continue
		}
		ha, hb := a.Has(fd), b.Has(fd)
		if !ha && !hb {
			continue
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			la, lb := a.Get(fd).List(), b.Get(fd).List()
			n := min(la.Len(), lb.Len())
			for j := 0; j < n; j++ {
				out = compareMessages(out, path+"["+strconv.Itoa(j)+"].", la.Get(j).Message(), lb.Get(j).Message(), skip)
			}
			for j := n; j < la.Len(); j++ {
				out = append(out, fieldChange{path: path + "[" + strconv.Itoa(j) + "]", old: renderMessage(la.Get(j).Message())})
			}
			for j := n; j < lb.Len(); j++ {
				out = append(out, fieldChange{path: path + "[" + strconv.Itoa(j) + "]", new: renderMessage(lb.Get(j).Message())})
			}
		case fd.IsList() || fd.IsMap():
			if !a.Get(fd).Equal(b.Get(fd)) {
				out = append(out, fieldChange{path: path, old: renderField(a, fd), new: renderField(b, fd)})
			}
		case fd.Message() != nil:
			if ha && hb {
				out = compareMessages(out, path+".", a.Get(fd).Message(), b.Get(fd).Message(), skip)
				continue
			}
			c := fieldChange{path: path}
			if ha {
				c.old = renderMessage(a.Get(fd).Message())
			} else {
				c.new = renderMessage(b.Get(fd).Message())
			}
			out = append(out, c)
		default:
			if ha != hb || !a.Get(fd).Equal(b.Get(fd)) {
				out = append(out, fieldChange{path: path, old: renderField(a, fd), new: renderField(b, fd)})
			}
		}
	}
	return out
}

// renderMessage renders m as one line of crit's pretty JSON.
func renderMessage(m protoreflect.Message) string {
	return compactJSON(critjson.AppendMessage(nil, m, critjson.Options{Pretty: true}))
}

// renderField renders field fd of m as crit's pretty JSON shows it ("0x1000",
// "PROT_READ | PROT_WRITE", "127.0.0.1"), a string without its quotes; ""
// when m does not have it. The field is rendered in a message of its own, so
// that its (criu) options apply.
func renderField(m protoreflect.Message, fd protoreflect.FieldDescriptor) string {
	if !m.Has(fd) {
		return ""
	}
	one := m.Type().New()
	one.Set(fd, m.Get(fd))
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(critjson.AppendMessage(nil, one, critjson.Options{Pretty: true}), &obj); err != nil {
		return m.Get(fd).String()
	}
	v := obj[fd.TextName()]
	if v == nil {
		v = obj[string(fd.Name())]
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return compactJSON(v)
}

// compactJSON removes the indentation of a JSON document.
func compactJSON(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return strings.TrimSpace(string(b))
	}
	return buf.String()
}

// skipPaths returns a skipFunc that leaves out the given paths and
// everything under them, indexes ignored. A pattern element "*" matches any
// one path element ("entry.*.id"), "ti_*" any that starts with "ti_". Results are memoized per path.
func skipPaths(patterns ...string) skipFunc {
	split := make([][]string, len(patterns))
	for i, p := range patterns {
		split[i] = strings.Split(p, ".")
	}
	memo := map[string]bool{}
	return func(path string) bool {
		path = stripIndexes(path)
		if v, ok := memo[path]; ok {
			return v
		}
		v := skipped(split, path)
		memo[path] = v
		return v
	}
}

// skipped reports whether path is under one of the split patterns.
func skipped(split [][]string, path string) bool {
	elems := strings.Split(path, ".")
	for _, p := range split {
		if len(p) > len(elems) {
			continue
		}
		ok := true
		for i, e := range p {
			if e != elems[i] && !(strings.HasSuffix(e, "*") && strings.HasPrefix(elems[i], e[:len(e)-1])) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// stripIndexes removes the [i] of a path: "rlimits[7].cur" -> "rlimits.cur".
func stripIndexes(path string) string {
	if !strings.Contains(path, "[") {
		return path
	}
	var b strings.Builder
	in := false
	for _, r := range path {
		switch {
		case r == '[':
			in = true
		case r == ']':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}
