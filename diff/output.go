package diff

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Record is a Change as the JSON outputs write it.
type Record struct {
	Section string `json:"section"`
	PID     uint32 `json:"pid,omitempty"`
	Key     string `json:"key"`
	Path    string `json:"path,omitempty"`
	Op      string `json:"op"`
	Old     string `json:"old,omitempty"`
	New     string `json:"new,omitempty"`
	Addr    string `json:"addr,omitempty"`
	End     string `json:"end,omitempty"`
	Pages   uint64 `json:"pages,omitempty"`
}

// RecordOf returns the JSON form of c.
func RecordOf(c *Change) Record {
	r := Record{Section: c.GetSection(), PID: c.GetPid(), Key: c.GetKey(), Path: c.GetPath(), Op: c.GetOp(),
		Old: c.GetOld(), New: c.GetNew(), Pages: c.GetPages()}
	if c.Addr != nil {
		r.Addr = hexKey(c.GetAddr())
		r.End = hexKey(c.GetEnd())
	}
	return r
}

// Counts are the changes of one section by op.
type Counts struct {
	Added     int `json:"added"`
	Removed   int `json:"removed"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged,omitempty"`
}

// Summary counts changes per section, in the order of the changes.
func Summary(cs []*Change) (sections []string, counts map[string]*Counts) {
	counts = map[string]*Counts{}
	for _, c := range cs {
		n := counts[c.GetSection()]
		if n == nil {
			n = &Counts{}
			counts[c.GetSection()] = n
			sections = append(sections, c.GetSection())
		}
		switch c.GetOp() {
		case Added:
			n.Added++
		case Removed:
			n.Removed++
		case Changed:
			n.Changed++
		case Unchanged:
			n.Unchanged++
		}
	}
	return sections, counts
}

// Differs reports whether cs holds a change (not only unchanged records).
func Differs(cs []*Change) bool {
	for _, c := range cs {
		if c.GetOp() != Unchanged {
			return true
		}
	}
	return false
}

// WriteJSON writes one document: {"a", "b", "same", "changes", "summary"}.
func WriteJSON(w io.Writer, a, b string, cs []*Change) error {
	recs := make([]Record, len(cs))
	for i, c := range cs {
		recs[i] = RecordOf(c)
	}
	_, counts := Summary(cs)
	doc := struct {
		A       string             `json:"a"`
		B       string             `json:"b"`
		Same    bool               `json:"same"`
		Changes []Record           `json:"changes"`
		Summary map[string]*Counts `json:"summary"`
	}{a, b, !Differs(cs), recs, counts}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}

// WriteNDJSON writes one change a line.
func WriteNDJSON(w io.Writer, cs []*Change) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, c := range cs {
		if err := enc.Encode(RecordOf(c)); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteTable writes the changes as a table: SECTION PID KEY PATH OP OLD NEW.
func WriteTable(w io.Writer, cs []*Change) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SECTION\tPID\tKEY\tPATH\tOP\tOLD\tNEW")
	for _, c := range cs {
		pid := "-"
		if c.GetPid() != 0 {
			pid = strconv.FormatUint(uint64(c.GetPid()), 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.GetSection(), pid, c.GetKey(), dash(c.GetPath()), c.GetOp(), dash(oneLine(c.GetOld())), dash(oneLine(c.GetNew())))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine escapes the line ends and tabs of s.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\n\r\t") {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

var marks = map[string]string{Added: "+", Removed: "-", Changed: "~", Unchanged: "="}

// WriteTree writes the changes grouped by section and pid: + added,
// - removed, ~ changed, old -> new; a last line counts them.
func WriteTree(w io.Writer, cs []*Change) error {
	bw := bufio.NewWriter(w)
	section, pid, key := "", ^uint32(0), ""
	for _, c := range cs {
		if c.GetSection() != section {
			section, pid, key = c.GetSection(), ^uint32(0), ""
			fmt.Fprintf(bw, "%s\n", section)
		}
		indent := "  "
		if c.GetPid() != 0 {
			if c.GetPid() != pid {
				pid, key = c.GetPid(), ""
				fmt.Fprintf(bw, "  pid %d\n", pid)
			}
			indent = "    "
		}
		text := oneLine(c.GetKey())
		if c.Pages != nil { // memory
			fmt.Fprintf(bw, "%s%s %s: %d pages %s", indent, marks[c.GetOp()], text, c.GetPages(), c.GetOp())
			if at, old, ok := strings.Cut(c.GetOld(), ": "); ok && c.Old != nil && c.New != nil {
				_, new, _ := strings.Cut(c.GetNew(), ": ")
				fmt.Fprintf(bw, " at 0x%x-0x%x, first difference at %s: %s -> %s", c.GetAddr(), c.GetEnd(), at, old, new)
			} else if s := c.GetOld() + c.GetNew(); s != "" && strings.HasPrefix(s, "0x") {
				fmt.Fprintf(bw, " at %s", strings.Fields(s)[0])
			}
			fmt.Fprintln(bw)
			key = ""
			continue
		}
		switch c.GetOp() {
		case Added, Removed:
			fmt.Fprintf(bw, "%s%s %s", indent, marks[c.GetOp()], text)
			if c.GetPath() != "" {
				fmt.Fprintf(bw, " %s", c.GetPath())
			}
			if v := c.GetOld() + c.GetNew(); v != "" && v != c.GetKey() {
				fmt.Fprintf(bw, ": %s", oneLine(v))
			}
			key = ""
		case Unchanged:
			fmt.Fprintf(bw, "%s= %s", indent, text)
			key = ""
		default:
			if c.GetKey() != key || c.Addr != nil {
				fmt.Fprintf(bw, "%s~ %s\n", indent, text)
				key = c.GetKey()
				if c.Addr != nil {
					key = ""
				}
			}
			fmt.Fprintf(bw, "%s    %s: %s -> %s", indent, c.GetPath(), orNone(oneLine(c.GetOld())), orNone(oneLine(c.GetNew())))
		}
		fmt.Fprintln(bw)
	}
	sections, counts := Summary(cs)
	if !Differs(cs) {
		fmt.Fprintln(bw, "no differences")
	} else {
		parts := make([]string, 0, len(sections))
		total := 0
		for _, s := range sections {
			n := counts[s]
			total += n.Added + n.Removed + n.Changed
			parts = append(parts, fmt.Sprintf("%s +%d -%d ~%d", s, n.Added, n.Removed, n.Changed))
		}
		fmt.Fprintf(bw, "%d changes: %s\n", total, strings.Join(parts, ", "))
	}
	return bw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
