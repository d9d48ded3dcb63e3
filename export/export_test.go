package export_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"github.com/parquet-go/parquet-go"

	"github.com/critq/critq/export"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/query"
)

var update = flag.Bool("update", false, "rewrite the schema golden file")

// TestSchemaGolden guards the columns: a change of any view's schema
// fails here until SchemaVersion is bumped and the new golden written
// (go test ./export -run TestSchemaGolden -update), and docs/export.md
// says what changed.
func TestSchemaGolden(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, "critq export schema version %d\n", export.SchemaVersion)
	for _, v := range export.AllViews() {
		fmt.Fprintf(&b, "\n-- view=%s\n%s\n", v, export.SchemaOf(v))
	}
	golden := filepath.Join("testdata", fmt.Sprintf("schema-v%d.txt", export.SchemaVersion))
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v: a new SchemaVersion needs its golden (-update)", err)
	}
	if string(want) != b.String() {
		t.Errorf("the schema changed without a SchemaVersion bump (now %d); got:\n%s", export.SchemaVersion, b.String())
	}
}

// TestExportMatchesViews exports every dump and reads the Parquet files
// back: each view has as many rows as the CEL view has elements, and the
// rows carry the values of the views.
func TestExportMatchesViews(t *testing.T) {
	dir := t.TempDir()
	for _, p := range testcorpus.Dumps(t) {
		res, err := export.Export(context.Background(), p, dir, export.Options{})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		d, err := query.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		for view, expr := range map[string]string{
			"tasks": "tasks.size()", "vmas": "vmas.size()", "fds": "fds.size()", "files": "files.size()",
			"sockets": "sockets.size()", "mounts": "mounts.size()", "pagemaps": "pagemaps.size()",
			"threads": "tasks.map(t, t.threads.size()).sum()", "images": "images.size()",
		} {
			q, err := query.Compile(expr)
			if err != nil {
				t.Fatal(err)
			}
			v, err := q.Eval(context.Background(), d)
			if err != nil {
				t.Fatalf("%s: %s: %v", p, expr, err)
			}
			want := fmt.Sprint(v.Value())
			if got := fmt.Sprint(res.Rows[view]); got != want {
				t.Errorf("%s: view %s: %s rows written, the CEL view has %s", p, view, got, want)
			}
			file := filepath.Join(dir, "view="+view, "dump="+res.ID, "part-0.parquet")
			n := countParquet(t, file)
			if fmt.Sprint(n) != want {
				t.Errorf("%s: %s holds %d rows, want %s", p, file, n, want)
			}
		}
		// Values: the VMAs read back equal the view's, field by field.
		rows := readParquet[export.VMARow](t, filepath.Join(dir, "view=vmas", "dump="+res.ID, "part-0.parquet"))
		q, _ := query.Compile(`vmas.map(v, [v.pid, v.start, v.end, v.prot, has(v.path) ? v.path : "<null>"])`)
		v, err := q.Eval(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		want := celRows(v)
		var got []string
		for _, r := range rows {
			path := "<null>"
			if r.Path != nil {
				path = *r.Path
			}
			got = append(got, fmt.Sprint(r.PID, " ", r.Start, " ", r.End, " ", r.Prot, " ", path))
			if r.DumpID != res.ID || r.DumpPath != p {
				t.Fatalf("%s: row of dump %q at %q", p, r.DumpID, r.DumpPath)
			}
			if r.StartHex != fmt.Sprintf("0x%x", r.Start) {
				t.Errorf("start_hex %s for 0x%x", r.StartHex, r.Start)
			}
		}
		// Command lines, which the tasks view fills only when named.
		tq, _ := query.Compile(`tasks.map(t, t.cmdline.join("\x00"))`)
		tv, err := tq.Eval(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		tasks := readParquet[export.TaskRow](t, filepath.Join(dir, "view=tasks", "dump="+res.ID, "part-0.parquet"))
		for i, c := range tv.Value().([]ref.Val) {
			if i >= len(tasks) || strings.Join(tasks[i].Cmdline, "\x00") != c.Value().(string) {
				t.Errorf("%s: task %d: command line read back differs from %q", p, i, c.Value())
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d VMAs read back, want %d", p, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: VMA %d read back as %s, want %s", p, i, got[i], want[i])
				break
			}
		}
	}
}

// celRows renders a CEL list of lists as rows of space-separated cells.
func celRows(v ref.Val) []string {
	var out []string
	for it := v.(traits.Lister).Iterator(); it.HasNext() == types.True; {
		var cells []string
		for jt := it.Next().(traits.Lister).Iterator(); jt.HasNext() == types.True; {
			cells = append(cells, fmt.Sprint(jt.Next().Value()))
		}
		out = append(out, strings.Join(cells, " "))
	}
	return out
}

func countParquet(t *testing.T, name string) int64 {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if v, ok := pf.Lookup("critq.schema_version"); !ok || v != fmt.Sprint(export.SchemaVersion) {
		t.Errorf("%s: critq.schema_version %q", name, v)
	}
	return pf.NumRows()
}

func readParquet[T any](t *testing.T, name string) []T {
	t.Helper()
	rows, err := parquet.ReadFile[T](name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rows
}

// files lists the files below dir with their modification times.
func files(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		out[p] = info.ModTime()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExportIncremental: a second export of the same dumps writes nothing
// and says so; --force writes again.
func TestExportIncremental(t *testing.T) {
	dir := t.TempDir()
	dumps, _ := filepath.Glob(filepath.Join(testcorpus.Testdata(t), "*"))
	start := time.Now()
	for _, p := range dumps {
		if _, err := export.Export(context.Background(), p, dir, export.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	first := time.Since(start)
	before := files(t, dir)
	start = time.Now()
	for _, p := range dumps {
		r, err := export.Export(context.Background(), p, dir, export.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Skipped {
			t.Errorf("%s exported again", p)
		}
	}
	second := time.Since(start)
	after := files(t, dir)
	if len(after) != len(before) {
		t.Errorf("%d files before, %d after", len(before), len(after))
	}
	for p, mt := range before {
		if !after[p].Equal(mt) {
			t.Errorf("%s rewritten", p)
		}
	}
	t.Logf("first export %v, second %v (%.1f%%)", first, second, 100*second.Seconds()/first.Seconds())
	r, err := export.Export(context.Background(), dumps[0], dir, export.Options{Force: true})
	if err != nil || r.Skipped {
		t.Errorf("--force: skipped %v, %v", r.Skipped, err)
	}
}

// TestExportFailureLeavesNothing: a dump that cannot be read leaves no file
// behind, temporary or final.
func TestExportFailureLeavesNothing(t *testing.T) {
	src := filepath.Join(testcorpus.Testdata(t), "sleep-plain")
	bad := t.TempDir()
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "mm-19635.img" {
			b = b[:len(b)/2] // truncated
		}
		if err := os.WriteFile(filepath.Join(bad, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	if _, err := export.Export(context.Background(), bad, out, export.Options{}); err == nil {
		t.Fatal("a truncated mm image exported without an error")
	} else if !strings.Contains(err.Error(), "mm-19635.img") {
		t.Errorf("error does not name the image: %v", err)
	}
	if fs := files(t, out); len(fs) != 0 {
		t.Errorf("files left behind: %v", fs)
	}
}

// TestExportPartial: a dump whose pages image is cut short holds command
// lines that cannot be read; export refuses it, naming the image, unless
// Partial, which writes it with the reason in mem_error.
func TestExportPartial(t *testing.T) {
	dir := t.TempDir()
	testcorpus.CopyFiles(t, filepath.Join(testcorpus.Testdata(t), "sleep-plain"), dir)
	if err := os.Truncate(filepath.Join(dir, "pages-1.img"), 4096); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	_, err := export.Export(context.Background(), dir, out, export.Options{Views: []string{"tasks"}})
	var pe *export.PartialError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "pages-1.img") {
		t.Fatalf("a cut pages image: %v", err)
	}
	if fs := files(t, out); len(fs) != 0 {
		t.Errorf("files written for a refused dump: %v", fs)
	}
	r, err := export.Export(context.Background(), dir, out, export.Options{Views: []string{"tasks"}, Partial: true})
	if err != nil || len(r.Warnings) == 0 {
		t.Fatalf("Partial: %v, warnings %q", err, r.Warnings)
	}
	rows := readParquet[export.TaskRow](t, filepath.Join(out, "view=tasks", "dump="+r.ID, "part-0.parquet"))
	if len(rows) != 1 || rows[0].MemError == nil || !strings.Contains(*rows[0].MemError, "pages-1.img") || len(rows[0].Cmdline) != 0 {
		t.Errorf("rows %+v", rows)
	}
}

// TestExportNDJSON writes the same rows as JSON lines.
func TestExportNDJSON(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(testcorpus.Testdata(t), "tcp")
	r, err := export.Export(context.Background(), p, dir, export.Options{Format: "ndjson", Views: []string{"sockets"}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "view=sockets", "dump="+r.ID, "part-0.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	listen := false
	for s := bufio.NewScanner(f); s.Scan(); n++ {
		if strings.Contains(s.Text(), `"state":"TCP_LISTEN"`) && strings.Contains(s.Text(), `"family":"AF_INET`) {
			listen = true
		}
	}
	if n != r.Rows["sockets"] || n == 0 {
		t.Errorf("%d lines, %d rows", n, r.Rows["sockets"])
	}
	if !listen {
		t.Error("no AF_INET TCP_LISTEN socket by name in the tcp dump")
	}
}

func BenchmarkExport(b *testing.B) {
	p := filepath.Join(testcorpus.Testdata(b), "sleep-plain")
	for b.Loop() {
		dir := b.TempDir()
		if _, err := export.Export(context.Background(), p, dir, export.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
