// Package examples holds critq's cookbook (cookbook.txt) and its tests.
package examples

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/model"
	"github.com/critq/critq/query"
)

type recipe struct{ name, src string }

func cookbook(t *testing.T) []recipe {
	f, err := os.Open("cookbook.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []recipe
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, src, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("cookbook.txt: %q is no \"name: EXPR\" line", line)
		}
		out = append(out, recipe{name, src})
	}
	if len(out) < 25 {
		t.Fatalf("cookbook.txt has %d recipes, wanted at least 25", len(out))
	}
	return out
}

// dumps returns the corpus dumps, or the repository's when the corpus is
// absent (and CRITQ_REQUIRE_CORPUS is not 1).
// A predump chain gives its last dump (see package testcorpus).
func dumps(t *testing.T) []string { return testcorpus.Dumps(t) }

// eval runs a recipe and returns its result as JSON-decoded Go values.
func eval(t *testing.T, q *query.Query, d *query.Dump) any {
	t.Helper()
	v, err := q.Eval(context.Background(), d)
	if err != nil {
		t.Fatalf("%s: %v", d.Name(), err)
	}
	var b bytes.Buffer
	if err := (query.Output{Format: query.FormatJSON}).Write(&b, "", v); err != nil {
		t.Fatal(err)
	}
	var out any
	dec := json.NewDecoder(&b)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCookbook runs every recipe over every dump, and compares the crit x
// recipes with crit 4.2's golden output where crit succeeded.
func TestCookbook(t *testing.T) {
	recipes := cookbook(t)
	compiled := map[string]*query.Query{}
	for _, r := range recipes {
		q, err := query.Compile(r.src)
		if err != nil {
			t.Fatalf("recipe %s: %v", r.name, err)
		}
		compiled[r.name] = q
	}
	checks := map[string]func(*testing.T, any, string){"ps": checkPS, "fds": checkFDs, "mems": checkMems, "rss": checkRSS}
	for _, dir := range dumps(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			d, err := query.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recipes {
				got := eval(t, compiled[r.name], d)
				check := checks[r.name]
				if check == nil {
					continue
				}
				if _, err := os.Stat(filepath.Join(dir, "golden", "x-"+r.name+".err")); err == nil {
					continue // crit failed: zombies (B10), dumps without tasks
				}
				golden, err := os.ReadFile(filepath.Join(dir, "golden", "x-"+r.name+".txt"))
				if err != nil {
					continue
				}
				check(t, got, string(golden))
			}
		})
	}
}

func num(v any) uint64 {
	n, _ := strconv.ParseUint(fmt.Sprint(v), 10, 64)
	return n
}

func diff(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		t.Errorf("%s:\ngot    %s\nwanted %s", what, gj, wj)
	}
}

// checkPS compares with crit x ps: "%7d%7d%7d   %s%s", 4 spaces per level.
func checkPS(t *testing.T, got any, golden string) {
	type row struct {
		Pid, Pgid, Sid, Depth uint64
		Comm                  string
	}
	var want, have []row
	lines := strings.Split(strings.TrimRight(golden, "\n"), "\n")
	for _, l := range lines[1:] {
		rest := l[24:]
		comm := strings.TrimLeft(rest, " ")
		want = append(want, row{num(strings.TrimSpace(l[0:7])), num(strings.TrimSpace(l[7:14])), num(strings.TrimSpace(l[14:21])), uint64(len(rest)-len(comm)) / 4, comm})
	}
	for _, e := range got.([]any) {
		m := e.(map[string]any)
		have = append(have, row{num(m["pid"]), num(m["pgid"]), num(m["sid"]), num(m["depth"]), fmt.Sprint(m["comm"])})
	}
	diff(t, "x ps", have, want)
}

// checkFDs compares with crit x fds. crit prints unix socket names in
// quoted-printable (its unix_name conversion); they are decoded and shown
// as critq does (model.UnixName: @ for abstract names, no trailing NUL).
func checkFDs(t *testing.T, got any, golden string) {
	var want, have []string
	for _, l := range strings.Split(strings.TrimRight(golden, "\n"), "\n") {
		if i := strings.Index(l, "unix["); i >= 0 {
			l = l[:i] + unixText(l[i:])
		}
		want = append(want, strings.TrimSpace(l))
	}
	for _, e := range got.([]any) {
		m := e.(map[string]any)
		have = append(have, fmt.Sprint(m["pid"]))
		for _, f := range m["fds"].([]any) {
			fm := f.(map[string]any)
			have = append(have, fmt.Sprintf("%v: %v", fm["fd"], fm["file"]))
		}
		have = append(have, "cwd: "+fmt.Sprint(m["cwd"]), "root: "+fmt.Sprint(m["root"]))
	}
	diff(t, "x fds", have, want)
}

// unixText turns crit's "unix[ino (peer) qp-name]" into critq's text.
func unixText(s string) string {
	inner := strings.TrimSuffix(strings.TrimPrefix(s, "unix["), "]")
	i := strings.Index(inner, ") ")
	if i < 0 {
		return s
	}
	name, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(inner[i+2:])))
	if err != nil {
		return s
	}
	// critq's rule for the name (issue 9: the trailing NUL that crit keeps
	// is dropped; @ for an abstract name).
	return "unix[" + inner[:i+1] + " " + model.UnixName(name) + "]"
}

// checkMems compares with crit x mems. crit numbers SysV, shmem and packet
// resources from 1 in order of appearance; critq's recipe gives the ids,
// numbered here the same way.
func checkMems(t *testing.T, got any, golden string) {
	var want, have []string
	for _, l := range strings.Split(strings.TrimRight(golden, "\n"), "\n") {
		want = append(want, strings.Join(strings.Fields(l), " "))
	}
	ids := map[string]int{}
	for _, e := range got.([]any) {
		m := e.(map[string]any)
		have = append(have, fmt.Sprint(m["pid"]), "exe "+fmt.Sprint(m["exe"]))
		for _, v := range m["vmas"].([]any) {
			vm := v.(map[string]any)
			res := fmt.Sprint(vm["res"])
			for _, kind := range []string{"ips", "shmem", "packet"} {
				if rest, ok := strings.CutPrefix(res, kind+" "); ok {
					id, star, _ := strings.Cut(rest, " ")
					if _, seen := ids[id]; !seen {
						ids[id] = len(ids) + 1
					}
					res = fmt.Sprintf("%s[%x]", kind, ids[id])
					if star != "" {
						res += " " + star
					}
				}
			}
			have = append(have, strings.Join(strings.Fields(fmt.Sprintf("%08x-%08x %s %s", num(vm["start"]), num(vm["end"]), vm["prot"], res)), " "))
		}
	}
	diff(t, "x mems", have, want)
}

// checkRSS compares with crit x rss; a "~" (the VMA printed last, again)
// is resolved to that VMA.
func checkRSS(t *testing.T, got any, golden string) {
	type vma struct {
		Start, Pages uint64
		Path         string
	}
	type run struct {
		Vaddr, Pages uint64
		VMAs         []vma
	}
	type task struct {
		Pid  uint64
		Runs []run
	}
	var want, have []task
	var last vma
	for _, l := range strings.Split(strings.TrimRight(golden, "\n"), "\n") {
		if !strings.HasPrefix(l, "\t") {
			want = append(want, task{Pid: num(l)})
			continue
		}
		cur := &want[len(want)-1]
		if len(l) < 24 {
			continue
		}
		if l[1] != ' ' {
			f := strings.Fields(l[:24])
			va, _ := strconv.ParseUint(f[0], 16, 64)
			cur.Runs = append(cur.Runs, run{Vaddr: va, Pages: num(f[2])})
		}
		rest := strings.TrimSpace(l[24:])
		switch {
		case rest == "":
		case rest == "~":
			r := &cur.Runs[len(cur.Runs)-1]
			r.VMAs = append(r.VMAs, last)
		default:
			f := strings.Fields(rest)
			st, _ := strconv.ParseUint(f[0], 16, 64)
			last = vma{st, num(f[2]), strings.Join(f[3:], " ")}
			r := &cur.Runs[len(cur.Runs)-1]
			r.VMAs = append(r.VMAs, last)
		}
	}
	for _, e := range got.([]any) {
		m := e.(map[string]any)
		tk := task{Pid: num(m["pid"])}
		for _, r := range m["rss"].([]any) {
			rm := r.(map[string]any)
			rn := run{Vaddr: num(rm["vaddr"]), Pages: num(rm["pages"])}
			for _, v := range rm["vmas"].([]any) {
				vm := v.(map[string]any)
				rn.VMAs = append(rn.VMAs, vma{num(vm["start"]), num(vm["pages"]), fmt.Sprint(vm["path"])})
			}
			tk.Runs = append(tk.Runs, rn)
		}
		have = append(have, tk)
	}
	diff(t, "x rss", have, want)
}
