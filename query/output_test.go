package query

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/output")

// TestOutput renders results in every format and compares them with the
// golden files of testdata/output (go test -run TestOutput -update rewrites
// them).
func TestOutput(t *testing.T) {
	d := mustOpen(t, "../testdata/dumps/tcp")
	for _, tc := range []struct {
		name, src string
		out       Output
		tag       string
	}{
		{"exec-vmas.json", "vmas.filter(v, v.prot & 4)", Output{Format: FormatJSON}, ""},
		{"exec-vmas.pretty", "vmas.filter(v, v.prot & 4)", Output{Format: FormatPretty}, ""},
		{"exec-vmas-color.pretty", "vmas.filter(v, v.prot & 4).map(v, [v.start, v.path])", Output{Format: FormatPretty, Color: true}, ""},
		{"sockets.table", "sockets.map(s, {'family': s.family, 'state': s.state, 'local': s.local_addr, 'port': s.local_port})", Output{Format: FormatTable}, ""},
		{"sockets-msg.table", "sockets.filter(s, s.state == TCP_LISTEN)", Output{Format: FormatTable}, "tcp"},
		{"tasks.ndjson", "tasks.map(t, {'pid': t.pid, 'comm': t.comm, 'exe': t.exe})", Output{Format: FormatNDJSON}, ""},
		{"paths.raw", "fds.map(f, f.path)", Output{Format: FormatRaw}, ""},
		{"tagged.json", "tasks.map(t, t.pid)", Output{Format: FormatJSON}, "tcp"},
		{"scalars.json", "[1, 2u, 1.5, 'a\"b', b'\\x00', null, true, {'k': [1]}, {2: 'two', 10: 'ten'}]", Output{Format: FormatJSON}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := mustEval(t, mustCompile(t, tc.src), d)
			var b bytes.Buffer
			if err := tc.out.Write(&b, tc.tag, v); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata/output", tc.name)
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s in %v:\ngot\n%s\nwanted\n%s", tc.src, tc.out.Format, b.Bytes(), want)
			}
		})
	}
}

// TestPrettyIsIndentedJSON checks that pretty output is valid JSON equal
// to the compact output's document structure, for every view.
func TestPrettyIsIndentedJSON(t *testing.T) {
	d := mustOpen(t, "../testdata/dumps/unix-sockets")
	for _, src := range []string{"tasks", "fds", "files", "sockets", "pagemaps", "vmas"} {
		v, err := mustCompile(t, src).Eval(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := (Output{Format: FormatPretty}).Write(&b, "", v); err != nil {
			t.Fatal(err)
		}
		var c bytes.Buffer
		if err := json.Compact(&c, b.Bytes()); err != nil {
			t.Errorf("%s: pretty output is no JSON: %v", src, err)
		}
	}
}

// TestTableManyResults: one table over the results of two dumps has one
// header, a leading DUMP column, the rows of each result in order, and
// the union of their columns (a cell a row lacks is empty).
func TestTableManyResults(t *testing.T) {
	tbl := Output{Format: FormatTable}.NewTable()
	for _, c := range []struct{ dump, src string }{
		{"tcp", "tasks.map(t, {'pid': t.pid, 'comm': t.comm})"},
		{"sleep", "tasks.map(t, {'pid': t.pid, 'threads': t.threads.size()})"},
		{"none", "tasks.filter(t, false)"},
	} {
		if err := tbl.Add(c.dump, mustEval(t, mustCompile(t, c.src), mustOpen(t, "../testdata/dumps/"+map[string]string{"tcp": "tcp", "sleep": "sleep-plain", "none": "tcp"}[c.dump]))); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := tbl.Write(&b); err != nil {
		t.Fatal(err)
	}
	const want = "DUMP    COMM         PID     THREADS\n" + // map keys in sorted order, as the JSON formats write them
		"tcp     tcp-corpus   19347   \n" +
		"sleep                19635   1\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwanted\n%s", b.String(), want)
	}
}
