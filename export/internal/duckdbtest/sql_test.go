package duckdbtest

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/critq/critq/export"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/query"
)

// exported exports every corpus dump (or testdata's) once into a folder
// shared by the tests, and returns it with the dump ids by path.
func exported(t *testing.T) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	ids := map[string]string{}
	start := time.Now()
	for _, p := range testcorpus.Dumps(t) {
		r, err := export.Export(context.Background(), p, dir, export.Options{})
		if err != nil {
			t.Fatalf("export %s: %v", p, err)
		}
		ids[p] = r.ID
	}
	t.Logf("exported %d dumps in %v", len(ids), time.Since(start))
	return dir, ids
}

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var celLine = regexp.MustCompile(`(?m)^-- cel: (.*)$`)

// TestSQLExamples runs every query of examples/sql over the exported corpus
// and compares, dump by dump, its rows with the value of the CEL recipe the
// file names, evaluated by critq on the dump itself.
func TestSQLExamples(t *testing.T) {
	root, ids := exported(t)
	db := openDB(t)
	files, _ := filepath.Glob("../../../examples/sql/*.sql")
	if len(files) == 0 {
		t.Fatal("no examples/sql/*.sql")
	}
	compared := 0
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".sql"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m := celLine.FindSubmatch(b)
			if m == nil {
				t.Fatal("no -- cel: line")
			}
			q, err := query.Compile(string(m[1]))
			if err != nil {
				t.Fatal(err)
			}
			got := sqlRows(t, db, strings.ReplaceAll(string(b), "{{root}}", root))
			for p, id := range ids {
				d, err := query.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				v, err := q.Eval(context.Background(), d)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				want := celRows(t, v)
				have := got[id]
				sort.Strings(want)
				sort.Strings(have)
				if !slices.Equal(want, have) {
					t.Errorf("%s (%s):\n SQL %q\n CEL %q", p, id, have, want)
				}
				compared++
			}
		})
	}
	t.Logf("%d (query, dump) answers compared", compared)
}

// sqlRows runs a query whose first column is dump_id and returns the other
// columns of each row, normalised, by dump id.
func sqlRows(t *testing.T, db *sql.DB, q string) map[string][]string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := map[string][]string{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprint(vals[0])
		cells := make([]string, 0, len(vals)-1)
		for _, v := range vals[1:] {
			cells = append(cells, sqlCell(v))
		}
		out[id] = append(out[id], strings.Join(cells, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sqlCell(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x)
	case *big.Int:
		return x.String()
	case float64:
		if x == math.Trunc(x) {
			return strconv.FormatFloat(x, 'f', 0, 64)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprintf("?%T", v)
}

// celRows turns a CEL result into rows like sqlRows': a list of lists is
// a list of rows; a list of scalars one cell a row; a scalar one row.
func celRows(t *testing.T, v ref.Val) []string {
	t.Helper()
	l, ok := v.(traits.Lister)
	if !ok {
		return []string{celCell(t, v)}
	}
	out := []string{}
	for it := l.Iterator(); it.HasNext() == types.True; {
		e := it.Next()
		if row, ok := e.(traits.Lister); ok {
			var cells []string
			for jt := row.Iterator(); jt.HasNext() == types.True; {
				cells = append(cells, celCell(t, jt.Next()))
			}
			out = append(out, strings.Join(cells, "|"))
			continue
		}
		out = append(out, celCell(t, e))
	}
	return out
}

func celCell(t *testing.T, v ref.Val) string {
	switch x := v.(type) {
	case types.Null:
		return "null"
	case types.String:
		return strconv.Quote(string(x))
	case types.Bool:
		return strconv.FormatBool(bool(x))
	case types.Int:
		return strconv.FormatInt(int64(x), 10)
	case types.Uint:
		return strconv.FormatUint(uint64(x), 10)
	}
	t.Fatalf("CEL value %v of type %v has no SQL form here", v, v.Type())
	return ""
}

// TestTypesRoundTrip reads back through DuckDB values whose types are easy
// to get wrong: uint64 addresses above 2^63, an empty string beside a
// null, and nested lists.
func TestTypesRoundTrip(t *testing.T) {
	root, ids := exported(t)
	db := openDB(t)
	// Addresses: every VMA's start as DuckDB reads it equals the view's.
	for p, id := range ids {
		d, err := query.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		q, _ := query.Compile(`vmas.map(v, [v.pid, v.start, v.end])`)
		v, err := q.Eval(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		want := celRows(t, v)
		got := sqlRows(t, db, fmt.Sprintf(`SELECT dump_id, pid, start, "end" FROM read_parquet('%s/view=vmas/dump=%s/*.parquet', hive_partitioning = true)`, root, id))[id]
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(want, got) {
			t.Errorf("%s: VMA addresses differ", p)
		}
	}
	var typ string
	if err := db.QueryRow(fmt.Sprintf(`SELECT typeof(start) FROM read_parquet('%s/view=vmas/*/*.parquet', hive_partitioning = true) LIMIT 1`, root)).Scan(&typ); err != nil {
		t.Fatal(err)
	}
	if typ != "UBIGINT" {
		t.Errorf("vmas.start is %s in DuckDB, want UBIGINT", typ)
	}
	// vsyscall is mapped at 0xffffffffff600000 on x86_64: above 2^63.
	var high uint64
	err := db.QueryRow(fmt.Sprintf(`SELECT max(start) FROM read_parquet('%s/view=vmas/*/*.parquet', hive_partitioning = true)`, root)).Scan(&high)
	if err != nil {
		t.Fatal(err)
	}
	if high < 1<<63 {
		t.Logf("no VMA above 2^63 in these dumps (max 0x%x)", high)
	} else if high != 0xffffffffff600000 {
		t.Errorf("highest VMA 0x%x, want the vsyscall page 0xffffffffff600000", high)
	}
	// Nulls and empty strings: anonymous VMAs have a null path, never "".
	var empty int
	if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s/view=vmas/*/*.parquet', hive_partitioning = true) WHERE path = ''`, root)).Scan(&empty); err != nil {
		t.Fatal(err)
	}
	if empty != 0 {
		t.Errorf("%d VMAs with an empty path (anonymous ones must be null)", empty)
	}
	// Nested lists: thread ids per task and VMA status names.
	for p, id := range ids {
		d, _ := query.Open(p)
		q, _ := query.Compile(`tasks.map(t, [t.pid, t.threads.map(x, string(x)).join(",")])`)
		v, err := q.Eval(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		want := celRows(t, v)
		got := sqlRows(t, db, fmt.Sprintf(`SELECT dump_id, pid, array_to_string(threads, ',') FROM read_parquet('%s/view=tasks/dump=%s/*.parquet', hive_partitioning = true)`, root, id))[id]
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(want, got) {
			t.Errorf("%s: thread lists differ:\n SQL %q\n CEL %q", p, got, want)
		}
	}
}
