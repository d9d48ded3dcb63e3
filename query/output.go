package query

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/codec/critjson"
	"github.com/critq/critq/internal/annot"
)

// Format is how results are written.
type Format int

const (
	// FormatPretty is crit's pretty JSON (hex addresses, flag and dict
	// names, IP addresses) indented by 4 spaces.
	FormatPretty Format = iota
	// FormatJSON is compact JSON with values in crit's plain form:
	// numbers, enum names, base64 bytes.
	FormatJSON
	// FormatNDJSON writes each element of a list result as compact JSON on
	// its own line; other results as one line.
	FormatNDJSON
	// FormatTable writes a list of messages or maps as columns named after
	// their fields, one row per element, values in the pretty form.
	FormatTable
	// FormatRaw writes strings and bytes unquoted (each string of a list
	// on its own line), as jq -r does; other values as compact JSON.
	FormatRaw
)

var formatNames = [...]string{"pretty", "json", "ndjson", "table", "raw"}

func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ParseFormat returns the format called name.
func ParseFormat(name string) (Format, error) {
	for i, n := range formatNames {
		if n == name {
			return Format(i), nil
		}
	}
	return 0, fmt.Errorf("unknown format %q (pretty, json, ndjson, table or raw)", name)
}

// Output writes query results.
type Output struct {
	Format Format
	// Color colors pretty JSON with ANSI escapes.
	Color bool
	// Order is the byte order of the dumping host, for IP addresses in
	// pretty output; nil is little-endian.
	Order codec.ByteOrder
	// Names, when set, writes the numbers of enum-like fields in the
	// result as names (Query.ValueNames): TASK states, AF_INET, TCP_LISTEN.
	Names *ValueNames
}

// at returns o for writing a part of the result that n describes.
func (o Output) at(n *ValueNames) Output {
	o.Names = n
	return o
}

// Write writes one result to w. With dump != "" the result is tagged with
// the dump it came from: {"dump": NAME, "result": VALUE} in the JSON
// formats, a DUMP column in tables, a "NAME: " prefix in raw output.
func (o Output) Write(w io.Writer, dump string, v ref.Val) error {
	switch o.Format {
	case FormatNDJSON:
		return o.writeNDJSON(w, dump, v)
	case FormatTable:
		return o.writeTable(w, dump, v)
	case FormatRaw:
		if ok, err := o.writeRaw(w, dump, v); ok || err != nil {
			return err
		}
	}
	b, err := o.appendTagged(nil, dump, v, o.Format == FormatPretty)
	if err != nil {
		return err
	}
	if o.Format == FormatPretty {
		b = indentJSON(nil, b, o.Color)
	} else {
		b = compactJSON(b)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func (o Output) appendTagged(dst []byte, dump string, v ref.Val, pretty bool) ([]byte, error) {
	if dump == "" {
		return o.appendValue(dst, v, pretty, 0)
	}
	dst = append(dst, `{"dump": `...)
	dst = annot.AppendJSONString(dst, dump)
	dst = append(dst, `, "result": `...)
	dst, err := o.appendValue(dst, v, pretty, 0)
	return append(dst, '}'), err
}

// maxValueDepth bounds the nesting of values written.
const maxValueDepth = 100

// appendValue appends v as JSON. Messages are written by critjson in
// crit's plain or pretty form.
func (o Output) appendValue(dst []byte, v ref.Val, pretty bool, depth int) ([]byte, error) {
	if depth > maxValueDepth {
		return dst, errors.New("result nested too deeply to print")
	}
	switch x := v.(type) {
	case types.Null:
		return append(dst, "null"...), nil
	case types.Bool:
		return strconv.AppendBool(dst, bool(x)), nil
	case types.Int:
		if s, ok := o.Names.name(x); ok {
			return annot.AppendJSONString(dst, s), nil
		}
		return strconv.AppendInt(dst, int64(x), 10), nil
	case types.Uint:
		if s, ok := o.Names.name(x); ok {
			return annot.AppendJSONString(dst, s), nil
		}
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case types.Double:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return strconv.AppendQuote(dst, strconv.FormatFloat(f, 'g', -1, 64)), nil
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64), nil
	case types.String:
		return annot.AppendJSONString(dst, string(x)), nil
	case types.Bytes:
		return annot.AppendJSONString(dst, base64.StdEncoding.EncodeToString(x)), nil
	case *types.Err:
		return dst, x
	}
	if m, ok := v.Value().(proto.Message); ok {
		return critjson.AppendMessage(dst, m.ProtoReflect(), critjson.Options{Pretty: pretty, Order: o.Order}), nil
	}
	switch x := v.(type) {
	case traits.Mapper:
		return o.appendMap(dst, x, pretty, depth)
	case traits.Lister:
		dst = append(dst, '[')
		it := x.Iterator()
		for i := 0; it.HasNext() == types.True; i++ {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			var err error
			if dst, err = o.at(o.Names.element(i)).appendValue(dst, it.Next(), pretty, depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	}
	if s, ok := v.ConvertToType(types.StringType).(types.String); ok {
		return annot.AppendJSONString(dst, string(s)), nil // durations, timestamps, types
	}
	return dst, fmt.Errorf("cannot print a value of type %s", v.Type().TypeName())
}

// appendMap writes a map with its keys sorted as text.
func (o Output) appendMap(dst []byte, m traits.Mapper, pretty bool, depth int) ([]byte, error) {
	type kv struct {
		key string
		val ref.Val
	}
	var kvs []kv
	for it := m.Iterator(); it.HasNext() == types.True; {
		k := it.Next()
		var ks string
		switch x := k.(type) {
		case types.String:
			ks = string(x)
		default:
			ks = fmt.Sprint(k.Value())
		}
		kvs = append(kvs, kv{ks, m.Get(k)})
	}
	sort.SliceStable(kvs, func(i, j int) bool { return keyLess(kvs[i].key, kvs[j].key) })
	dst = append(dst, '{')
	for i, e := range kvs {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = annot.AppendJSONString(dst, e.key)
		dst = append(dst, ": "...)
		var err error
		if dst, err = o.at(o.Names.key(e.key)).appendValue(dst, e.val, pretty, depth+1); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// keyLess orders numeric keys by value and others as text.
func keyLess(a, b string) bool {
	x, ea := strconv.ParseUint(a, 10, 64)
	y, eb := strconv.ParseUint(b, 10, 64)
	if ea == nil && eb == nil {
		return x < y
	}
	return a < b
}

// compactJSON removes the spaces critjson puts after separators.
func compactJSON(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}

// elements returns the elements of a list result, or false.
func elements(v ref.Val) ([]ref.Val, bool) {
	l, ok := v.(traits.Lister)
	if !ok {
		return nil, false
	}
	if _, isMsg := v.Value().(proto.Message); isMsg {
		return nil, false
	}
	var out []ref.Val
	for it := l.Iterator(); it.HasNext() == types.True; {
		out = append(out, it.Next())
	}
	return out, true
}

// rows returns the elements of a list result, or the result alone, and
// the names of each.
func (o Output) rows(v ref.Val) ([]ref.Val, func(int) *ValueNames) {
	if els, ok := elements(v); ok {
		return els, o.Names.element
	}
	return []ref.Val{v}, func(int) *ValueNames { return o.Names }
}

func (o Output) writeNDJSON(w io.Writer, dump string, v ref.Val) error {
	els, part := o.rows(v)
	var b []byte
	for i, el := range els {
		line, err := o.at(part(i)).appendTagged(nil, dump, el, false)
		if err != nil {
			return err
		}
		b = append(append(b, compactJSON(line)...), '\n')
	}
	_, err := w.Write(b)
	return err
}

// writeRaw writes strings and bytes unquoted; it reports false for other
// values, which are written as JSON.
func (o Output) writeRaw(w io.Writer, dump string, v ref.Val) (bool, error) {
	els, isList := elements(v)
	if !isList {
		els = []ref.Val{v}
	}
	var b []byte
	for _, el := range els {
		if dump != "" {
			b = append(b, dump+": "...)
		}
		switch x := el.(type) {
		case types.String:
			b = append(append(b, x...), '\n')
		case types.Bytes:
			b = append(b, x...)
		default:
			if !isList {
				return false, nil
			}
			j, err := o.appendValue(nil, el, false, 0)
			if err != nil {
				return true, err
			}
			b = append(append(b, compactJSON(j)...), '\n')
		}
	}
	_, err := w.Write(b)
	return true, err
}

// maxCell bounds the width of a table cell; longer values are cut with "…".
const maxCell = 60

// writeTable writes one result as a table.
func (o Output) writeTable(w io.Writer, dump string, v ref.Val) error {
	t := o.NewTable()
	if err := t.Add(dump, v); err != nil {
		return err
	}
	return t.Write(w)
}

// Table is one table over the results of several dumps: Add renders the
// rows of each result (so that its dump may be closed), Write prints them
// all under one header. Each element of a list result is a row, rendered
// as pretty JSON; an object's keys are the columns (in order of first
// appearance over every result; the fields of messages in field-number
// order), any other element goes in one VALUE column. Rows of a result
// tagged with a dump name get a leading DUMP column.
type Table struct {
	o      Output
	cols   []string
	colIdx map[string]int
	rows   []tableRow
	tagged bool
	fields protoreflect.FieldDescriptors // of the first message row, for the column order
}

type tableRow struct {
	dump  string
	cells map[string]string
}

// NewTable returns an empty table written in o's way.
func (o Output) NewTable() *Table { return &Table{o: o, colIdx: map[string]int{}} }

// Add adds the rows of the result v of dump ("" for an untagged result).
func (t *Table) Add(dump string, v ref.Val) error {
	t.tagged = t.tagged || dump != ""
	els, part := t.o.rows(v)
	for i, el := range els {
		b, err := t.o.at(part(i)).appendValue(nil, el, true, 0)
		if err != nil {
			return err
		}
		row, isObj := objectCells(b)
		if !isObj {
			row = map[string]string{"VALUE": cellText(b)}
		}
		keys := make([]string, 0, len(row))
		for k := range row {
			keys = append(keys, k)
		}
		if isObj {
			keys = objectKeys(b)
		}
		for _, k := range keys {
			if _, seen := t.colIdx[k]; !seen {
				t.colIdx[k] = len(t.cols)
				t.cols = append(t.cols, k)
			}
		}
		if m, ok := el.Value().(proto.Message); ok && t.fields == nil {
			t.fields = m.ProtoReflect().Descriptor().Fields()
		}
		t.rows = append(t.rows, tableRow{dump: dump, cells: row})
	}
	return nil
}

// Write prints the table: a header of column names in upper case, then
// the rows, in the order they were added.
func (t *Table) Write(w io.Writer) error {
	cols := t.cols
	if t.fields != nil {
		// Columns of messages in field-number order, as crit prints fields.
		cols = slices.Clone(cols)
		num := func(c string) int {
			if fd := t.fields.ByName(protoreflect.Name(c)); fd != nil {
				return int(fd.Number())
			}
			return math.MaxInt32
		}
		sort.SliceStable(cols, func(i, j int) bool { return num(cols[i]) < num(cols[j]) })
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	if t.tagged {
		fmt.Fprint(tw, "DUMP\t")
	}
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, strings.ToUpper(c))
	}
	fmt.Fprintln(tw)
	for _, r := range t.rows {
		if t.tagged {
			fmt.Fprint(tw, r.dump, "\t")
		}
		for i, c := range cols {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, r.cells[c])
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// objectCells parses a JSON object into cell texts by key.
func objectCells(b []byte) (map[string]string, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = cellText(v)
	}
	return out, true
}

// objectKeys returns the keys of a JSON object in document order.
func objectKeys(b []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(b))
	var keys []string
	if _, err := dec.Token(); err != nil {
		return nil
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return keys
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return keys
		}
	}
	return keys
}

// cellText renders a JSON value for a table: strings unquoted, the rest
// compact, cut at maxCell runes.
func cellText(b []byte) string {
	var s string
	if json.Unmarshal(b, &s) != nil {
		s = string(compactJSON(b))
	}
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > maxCell {
		s = string(r[:maxCell-1]) + "…"
	}
	return s
}

// ANSI colors of pretty output, as jq uses them.
const (
	colorNull   = "\x1b[1;30m"
	colorFalse  = "\x1b[0;39m"
	colorNumber = "\x1b[0;39m"
	colorString = "\x1b[0;32m"
	colorKey    = "\x1b[34;1m"
	colorPunct  = "\x1b[1;39m"
	colorReset  = "\x1b[0m"
)

// indentJSON indents valid JSON by 4 spaces per level with crit's
// separators ("," at line ends, ": " after keys), coloring it if asked.
// Empty arrays and objects stay "[]" and "{}".
func indentJSON(dst, src []byte, color bool) []byte {
	depth := 0
	paint := func(c string, tok []byte) {
		if color {
			dst = append(dst, c...)
			dst = append(dst, tok...)
			dst = append(dst, colorReset...)
		} else {
			dst = append(dst, tok...)
		}
	}
	newline := func() {
		dst = append(dst, '\n')
		for range depth {
			dst = append(dst, "    "...)
		}
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			i++
		case '{', '[':
			j := i + 1
			for j < len(src) && (src[j] == ' ' || src[j] == '\n' || src[j] == '\t' || src[j] == '\r') {
				j++
			}
			if j < len(src) && (src[j] == '}' || src[j] == ']') {
				paint(colorPunct, []byte{c, src[j]})
				i = j + 1
				continue
			}
			paint(colorPunct, []byte{c})
			depth++
			newline()
			i++
		case '}', ']':
			depth--
			newline()
			paint(colorPunct, []byte{c})
			i++
		case ',':
			paint(colorPunct, []byte{','})
			newline()
			i++
		case ':':
			paint(colorPunct, []byte{':'})
			dst = append(dst, ' ')
			i++
		case '"':
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(src))
			k := j
			for k < len(src) && (src[k] == ' ' || src[k] == '\n') {
				k++
			}
			if k < len(src) && src[k] == ':' {
				paint(colorKey, src[i:j])
			} else {
				paint(colorString, src[i:j])
			}
			i = j
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\n\r,:]}", rune(src[j])) {
				j++
			}
			if j == i {
				j++
			}
			tok := src[i:j]
			switch {
			case string(tok) == "null":
				paint(colorNull, tok)
			case string(tok) == "true" || string(tok) == "false":
				paint(colorFalse, tok)
			default:
				paint(colorNumber, tok)
			}
			i = j
		}
	}
	return dst
}
