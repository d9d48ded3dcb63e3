package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"cel.dev/cel-go/common/types/ref"

	"github.com/critq/critq/batch"
	"github.com/critq/critq/query"
)

const batchUsage = `Usage: critq batch [flags] SCRIPT DUMP...
       critq -f SCRIPT [flags] DUMP...

Runs every named query of SCRIPT (- for standard input) against every dump.
A script holds, one per line, comments (#), bindings "let NAME = EXPR",
named queries "NAME: EXPR" and rules "rule KIND: EXPR" (rules are applied
by critq transform -f; here they are skipped). An expression continues on
the next lines while a bracket, parenthesis or triple-quoted string is open.

Output: ndjson (the default) prints a record {"dump", "query", "value"} per
line; json prints the same records as one JSON array; table prints a row per
dump and a column per query (for scalar results). Dumps run in parallel; a
dump that fails is reported on standard error and skipped, and the exit
status is that of the first failure (4 a bad image, 5 an evaluation).

Example:
  critq -f examples/cookbook.txt ../shared/corpus/*/
`

func init() {
	register(&command{name: "batch", summary: "run a script of named queries over many dumps", run: runBatchCommand})
}

// batchOptions are the flags of a batch run.
type batchOptions struct {
	format  string // ndjson, json or table
	jobs    int
	timeout time.Duration
	cost    uint64
}

func runBatchCommand(c *cli, args []string) error {
	var o batchOptions
	fs := c.newFlags("batch", batchUsage)
	fs.StringVar(&o.format, "format", "ndjson", "output `format`: ndjson, json or table")
	fs.IntVar(&o.jobs, "j", 0, "evaluate `N` dumps at once (0: the number of cores)")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop an evaluation after `duration` (0: no limit)")
	fs.Uint64Var(&o.cost, "cost", query.DefaultCostLimit, "stop an evaluation after this cost (0: no limit)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usageErrorf("batch: need a script and at least one dump (critq batch -h)")
	}
	return runBatch(c, pos[0], pos[1:], o)
}

// runBatch runs the script named script (- for standard input) over dumps.
// The query command calls it for -f SCRIPT.
func runBatch(c *cli, script string, dumps []string, o batchOptions) error {
	if o.format == "" {
		o.format = "ndjson"
	}
	var w recordWriter
	switch o.format {
	case "ndjson":
		w = &ndjsonWriter{w: c.stdout}
	case "json":
		w = &jsonArrayWriter{w: c.stdout}
	case "table":
		w = &tableWriter{w: c.stdout}
	default:
		return usageErrorf("batch: unknown format %q (ndjson, json or table)", o.format)
	}
	if len(dumps) == 0 {
		return usageErrorf("batch: need at least one dump")
	}
	sc, err := readScript(c, script)
	if err != nil {
		return err
	}
	prog, err := compileScript(c, sc, o)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// Each dump builds many short-lived values and drops them all when it
	// is done: collecting less often saves a fifth of the CPU time, and the
	// peak stays that of the -j dumps in flight.
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	w.begin(prog.names)
	prog.progress = newProgress(c.stderr, isTerminal(c.stderr), len(dumps))
	first := 0
	err = batch.Run(ctx, dumps, batch.Options{Jobs: o.jobs}, prog.evalDump,
		func(_ int, dir string, vals []json.RawMessage, err error) error {
			prog.progress.step(err != nil)
			if err != nil {
				prog.progress.clear()
				fmt.Fprintf(c.stderr, "critq: %s\n", strings.TrimRight(err.Error(), "\n"))
				if first == 0 {
					first = exitCodeOf(err)
				}
				return nil
			}
			return w.dump(dir, prog.names, vals)
		})
	prog.progress.clear()
	if err == nil {
		err = w.end()
	}
	if err != nil {
		if ctx.Err() != nil {
			return withCode(exitError, errors.New("interrupted"))
		}
		return withCode(exitError, err)
	}
	if first != 0 {
		return silentError{code: first}
	}
	return nil
}

func readScript(c *cli, name string) (*batch.Script, error) {
	var r io.Reader
	if name == "-" {
		r, name = c.stdin, "<stdin>"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, withCode(exitUsage, err)
		}
		defer f.Close()
		r = f
	}
	src, err := io.ReadAll(io.LimitReader(r, batch.MaxScriptSize+1))
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("%s: %w", name, err))
	}
	sc, err := batch.Parse(name, src)
	if err != nil {
		return nil, withCode(exitCompile, err)
	}
	return sc, nil
}

// scriptProgram is a compiled script.
type scriptProgram struct {
	lets     *query.Bindings
	names    []string
	queries  []*query.Query
	timeout  time.Duration
	progress *progress
}

// compileScript compiles the bindings in order, then the queries in
// parallel: a query may use every binding of the script, a binding those
// above it.
func compileScript(c *cli, sc *batch.Script, o batchOptions) (*scriptProgram, error) {
	p := &scriptProgram{lets: query.NewBindings(query.CostLimit(o.cost)), timeout: o.timeout}
	for _, st := range sc.Stmts {
		switch st.Kind {
		case batch.Let:
			if err := p.lets.Let(st.Name, st.Source()); err != nil {
				return nil, withCode(exitCompile, scriptCompileError(sc, st, err))
			}
		case batch.Rule:
			fmt.Fprintf(c.stderr, "critq: %s:%d: rule %s skipped (rules apply with critq transform -f)\n", sc.Name, st.Line, st.Name)
		}
	}
	qs := sc.Queries()
	if len(qs) == 0 {
		return nil, withCode(exitUsage, fmt.Errorf("%s: no named queries (NAME: EXPR)", sc.Name))
	}
	err := batch.Run(context.Background(), qs, batch.Options{Jobs: o.jobs},
		func(_ context.Context, st *batch.Stmt) (*query.Query, error) { return p.lets.Compile(st.Source()) },
		func(_ int, st *batch.Stmt, q *query.Query, err error) error {
			if err != nil {
				return withCode(exitCompile, scriptCompileError(sc, st, err))
			}
			p.names = append(p.names, st.Name)
			p.queries = append(p.queries, q)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// scriptCompileError places a compile error of statement st in the script.
func scriptCompileError(sc *batch.Script, st *batch.Stmt, err error) error {
	var ce *query.CompileError
	if !errors.As(err, &ce) || ce.Line <= 0 {
		return sc.ErrorAt(st.Line, 1, err.Error())
	}
	var b strings.Builder
	for i, e := range append([]*query.CompileError{ce}, ce.More...) {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(sc.ErrorAt(e.Line, e.Col, e.Msg).Error())
	}
	var be *query.BindingError
	if errors.As(err, &be) && be.User != "" {
		return fmt.Errorf("let %s: %s uses it and no longer compiles:\n%s", be.Name, be.User, b.String())
	}
	return errors.New(b.String())
}

// evalDump evaluates every query against the dump in dir and returns the
// results as compact JSON in crit's plain form.
func (p *scriptProgram) evalDump(ctx context.Context, dir string) ([]json.RawMessage, error) {
	d, err := query.Open(dir)
	if err != nil {
		return nil, withCode(exitBadImage, err)
	}
	defer d.Images().Close()
	memo := map[string]ref.Val{}
	out := make([]json.RawMessage, len(p.queries))
	var buf bytes.Buffer
	for i, q := range p.queries {
		v, err := p.evalOne(ctx, q, d, memo)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", p.names[i], err)
		}
		buf.Reset()
		if err := (query.Output{Format: query.FormatJSON}).Write(&buf, "", v); err != nil {
			return nil, withCode(exitError, fmt.Errorf("%s: %s: %w", dir, p.names[i], err))
		}
		out[i] = append(json.RawMessage(nil), bytes.TrimSpace(buf.Bytes())...)
	}
	return out, nil
}

func (p *scriptProgram) evalOne(ctx context.Context, q *query.Query, d *query.Dump, memo map[string]ref.Val) (ref.Val, error) {
	return evalCoded(ctx, p.timeout, func(ctx context.Context) (ref.Val, error) { return p.lets.Eval(ctx, q, d, memo) })
}

// evalCoded runs eval, under timeout when it is not 0, and gives its error
// an exit code: exitBadImage when the dump could not be read, exitError
// otherwise.
func evalCoded(ctx context.Context, timeout time.Duration, eval func(context.Context) (ref.Val, error)) (ref.Val, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, fmt.Errorf("timeout after %v", timeout))
		defer cancel()
	}
	v, err := eval(ctx)
	var de *query.DumpError
	switch {
	case errors.As(err, &de):
		return nil, withCode(exitBadImage, err)
	case err != nil:
		return nil, withCode(exitError, err)
	}
	return v, nil
}

// exitCodeOf returns the exit code an error carries, exitError if none.
func exitCodeOf(err error) int {
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	return exitError
}

// recordWriter writes the results of a batch run, dump by dump.
type recordWriter interface {
	begin(queries []string)
	dump(dir string, queries []string, vals []json.RawMessage) error
	end() error
}

// appendRecord appends {"dump": ..., "query": ..., "value": ...}.
func appendRecord(b []byte, dir, name string, val json.RawMessage) []byte {
	b = append(b, `{"dump":`...)
	b = strconv.AppendQuote(b, dir)
	b = append(b, `,"query":`...)
	b = strconv.AppendQuote(b, name)
	b = append(b, `,"value":`...)
	return append(b, val...)
}

type ndjsonWriter struct {
	w   io.Writer
	buf []byte
}

func (n *ndjsonWriter) begin([]string) {}
func (n *ndjsonWriter) end() error     { return nil }
func (n *ndjsonWriter) dump(dir string, queries []string, vals []json.RawMessage) error {
	n.buf = n.buf[:0]
	for i, v := range vals {
		n.buf = append(appendRecord(n.buf, dir, queries[i], v), "}\n"...)
	}
	_, err := n.w.Write(n.buf)
	return err
}

type jsonArrayWriter struct {
	w     io.Writer
	buf   []byte
	count int
}

func (j *jsonArrayWriter) begin([]string) {}
func (j *jsonArrayWriter) dump(dir string, queries []string, vals []json.RawMessage) error {
	j.buf = j.buf[:0]
	for i, v := range vals {
		if j.count == 0 {
			j.buf = append(j.buf, "[\n"...)
		} else {
			j.buf = append(j.buf, ",\n"...)
		}
		j.count++
		j.buf = append(appendRecord(j.buf, dir, queries[i], v), '}')
	}
	_, err := j.w.Write(j.buf)
	return err
}
func (j *jsonArrayWriter) end() error {
	s := "\n]\n"
	if j.count == 0 {
		s = "[]\n"
	}
	_, err := io.WriteString(j.w, s)
	return err
}

// tableWriter prints a row per dump and a column per query; strings are
// unquoted, other values compact JSON. The columns are aligned at the end.
type tableWriter struct {
	w  io.Writer
	tw *tabwriter.Writer
}

func (t *tableWriter) begin(queries []string) {
	t.tw = tabwriter.NewWriter(t.w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(t.tw, "DUMP\t%s\n", strings.Join(queries, "\t"))
}
func (t *tableWriter) dump(dir string, _ []string, vals []json.RawMessage) error {
	cells := make([]string, 0, len(vals)+1)
	cells = append(cells, cell(dir))
	for _, v := range vals {
		var s string
		if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil {
			cells = append(cells, cell(s))
		} else {
			cells = append(cells, cell(string(v)))
		}
	}
	_, err := fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
	return err
}
func (t *tableWriter) end() error { return t.tw.Flush() }

// cell keeps a table cell on one line and out of the column separators.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
}

// progress writes "[done/total]" on a terminal's stderr once a run has
// lasted a second.
type progress struct {
	w           io.Writer
	on          bool
	start       time.Time
	total, done int
	failed      int
	shown       bool
}

func newProgress(w io.Writer, term bool, total int) *progress {
	return &progress{w: w, on: term, start: time.Now(), total: total}
}

func (p *progress) step(failed bool) {
	p.done++
	if failed {
		p.failed++
	}
	if !p.on || time.Since(p.start) < time.Second {
		return
	}
	fmt.Fprintf(p.w, "\r\033[Kcritq: %d/%d dumps, %d failed, %.1fs", p.done, p.total, p.failed, time.Since(p.start).Seconds())
	p.shown = true
}

func (p *progress) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
