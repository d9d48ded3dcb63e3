package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"cel.dev/cel-go/common/types/ref"

	"github.com/critq/critq/batch"
	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/query"
	"github.com/critq/critq/rules"
)

const batchUsage = `usage: critq batch [flags] SCRIPT DUMP...
       critq -f SCRIPT [flags] DUMP...

Runs every named query of SCRIPT (- for standard input) against every dump,
and previews its rules. A script holds, one per line, comments (#),
bindings "let NAME = EXPR", named queries "NAME: EXPR" and rules
"rule KIND: EXPR" (see critq transform -h). An expression continues on the
next lines while a bracket, parenthesis or triple-quoted string is open.

Output: ndjson (the default) prints a record {"dump", "query", "value"} per
line; json prints the same records as one JSON array; table prints a row per
dump and a column per query (for scalar results). Dumps run in parallel,
-j N at once on at most N cores (by default as many as there are cores); a
dump that fails is reported on standard error and skipped, and the exit
status is that of the first failure (4 a bad image, 5 an evaluation).

A query whose result needed an image the dump does not have (or memory on
a damaged image) is printed, with one warning line per image on standard
error naming the dump and the query, and its dump counts as failed (exit
4); --partial accepts such results (exit 0, the warnings kept).

Rules never write here: each prints a record {"dump", "rule", "value"},
the rule named FILE:LINE, whose value holds its counts (entries, matched,
changed, dropped) and its changes, each {"image", "entry", "field", "old",
"new"} in crit's pretty form (a dropped entry has field null and new null).
Rules apply in order, as critq transform -f SCRIPT DUMP -o OUT applies a
script of rules.

Examples:
  critq -f examples/cookbook.txt ../shared/corpus/*/
  critq -f rules.critq DUMP...      preview the rules of rules.critq
`

func init() {
	register(&command{name: "batch", summary: "run a script of named queries over many dumps (its rules previewed)", run: runBatchCommand})
}

// batchOptions are the flags of a batch run.
type batchOptions struct {
	format  string // ndjson, json or table
	jobs    int
	timeout time.Duration
	cost    uint64
	partial bool // accept results that depend on missing or damaged images
	// ruleCost is --cost for the rules when it is given: 0 leaves their
	// default (rules.DefaultRuleCostLimit, per entry).
	ruleCost uint64
	// check is --root and --criu-options, for the problems view.
	check *checkConfig

	// progressAfter and progressEvery time the progress line (tests); 0
	// means progressAfter and progressEvery.
	progressAfter, progressEvery time.Duration
}

func runBatchCommand(c *cli, args []string) error {
	var o batchOptions
	fs := c.newFlags("batch", batchUsage)
	c.archiveFlags(fs)
	fs.StringVar(&o.format, "format", "ndjson", "output `format`: ndjson, json or table")
	fs.IntVar(&o.jobs, "j", 0, "evaluate `N` dumps at once, on N cores at most (0: the number of cores)")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop an evaluation after `duration` (0: no limit)")
	fs.Uint64Var(&o.cost, "cost", query.DefaultCostLimit, "stop an evaluation (of a rule: on one entry) after this cost (0: no limit)")
	o.check = checkFlags(fs)
	fs.BoolVar(&o.partial, "partial", false, "accept results that depend on missing or damaged images (exit 0, warnings on stderr)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "cost" {
			o.ruleCost = o.cost
			if o.cost == 0 {
				o.ruleCost = math.MaxUint64
			}
		}
	})
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
	if err := checkFormat("batch", o.format); err != nil {
		return err
	}
	if len(dumps) == 0 {
		return usageErrorf("batch: need at least one dump")
	}
	// -j N runs on N cores at most. Without a bound the garbage collector
	// and the parallel reads of images within a dump take more: -j 1 used
	// 1.4 to 1.5 cores where they were free.
	if n := runtime.GOMAXPROCS(0); o.jobs > 0 && o.jobs < n {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(o.jobs))
	}
	sc, err := readScript(c, script)
	if err != nil {
		return err
	}
	prog, err := compileScript(c, sc, o)
	if err != nil {
		return err
	}
	if o.progressAfter == 0 {
		o.progressAfter, o.progressEvery = progressAfter, progressEvery
	}
	prog.progress = startProgress(c.stderr, isTerminal(c.stderr), len(dumps), o.progressAfter, o.progressEvery)
	defer prog.progress.stop()
	stdout := c.stdout
	if isTerminal(c.stdout) {
		stdout = progressWriter{prog.progress, c.stdout}
	}
	var w recordWriter
	switch o.format {
	case "ndjson":
		w = &ndjsonWriter{w: stdout}
	case "json":
		w = &jsonArrayWriter{w: stdout}
	case "table":
		w = &tableWriter{w: stdout}
	}
	c.handlesInterrupt()
	ctx := context.Background()
	if o.check != nil {
		ctx = o.check.context(ctx)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	// Each dump builds many short-lived values and drops them all when it
	// is done: collecting less often saves a fifth of the CPU time, and the
	// peak stays that of the -j dumps in flight.
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	w.begin(prog.cols)
	first := 0
	err = batch.Run(ctx, dumps, batch.Options{Jobs: o.jobs}, prog.evalDump,
		func(_ int, dir string, res dumpResult, err error) error {
			var msg strings.Builder
			for _, l := range res.notRead {
				fmt.Fprintf(&msg, "critq: warning: %s: %s\n", dir, l)
			}
			if err == nil && len(res.warnings) > 0 {
				for _, l := range res.warnings {
					fmt.Fprintf(&msg, "critq: warning: %s: %s\n", dir, l)
				}
				if !o.partial {
					err = withCode(exitBadImage, fmt.Errorf("%s: partial results (queries %s): images missing or damaged (--partial accepts them)", dir, strings.Join(res.partial, ", ")))
				}
			}
			prog.progress.step(err != nil)
			if err != nil {
				msg.WriteString("critq: " + strings.TrimRight(err.Error(), "\n") + "\n")
				if first == 0 {
					first = exitCode(err, exitError)
				}
			}
			if res.vals != nil {
				if werr := w.dump(dir, prog.cols, res.vals); werr != nil {
					return werr
				}
			}
			if msg.Len() > 0 {
				_ = prog.progress.write(func() error {
					_, werr := io.WriteString(c.stderr, msg.String())
					return werr
				})
			}
			return nil
		})
	prog.progress.stop()
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
	cols     []column // the queries, then the rules
	queries  []*query.Query
	rules    []*rules.Rule // safe for concurrent use
	timeout  time.Duration
	progress *progress
}

// column is what a script prints for every dump: a named query or a rule.
type column struct {
	key  string // "query" or "rule"
	name string
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
				return nil, withCode(exitCompile, rules.LocateError(sc, st, err))
			}
		}
	}
	qs := sc.Queries()
	if len(qs) == 0 && len(sc.Rules()) == 0 {
		return nil, withCode(exitUsage, fmt.Errorf("%s: no named queries (NAME: EXPR) or rules (rule KIND: EXPR)", sc.Name))
	}
	err := batch.Run(context.Background(), qs, batch.Options{Jobs: o.jobs},
		func(_ context.Context, st *batch.Stmt) (*query.Query, error) { return p.lets.Compile(st.Source()) },
		func(_ int, st *batch.Stmt, q *query.Query, err error) error {
			if err != nil {
				return withCode(exitCompile, rules.LocateError(sc, st, err))
			}
			p.cols = append(p.cols, column{"query", st.Name})
			p.queries = append(p.queries, q)
			return nil
		})
	if err != nil {
		return nil, err
	}
	if srcs := rules.ScriptRules(sc); len(srcs) > 0 {
		if p.rules, err = rules.CompileRules(srcs, rules.RuleOptions{CostLimit: o.ruleCost}); err != nil {
			return nil, withCode(exitCompile, err)
		}
		for _, r := range srcs {
			p.cols = append(p.cols, column{"rule", r.Where})
		}
	}
	return p, nil
}

// dumpResult is what a script gives for one dump: a value per column, as
// compact JSON, and the warnings of the queries whose results are partial
// ("query NAME: IMAGE is missing (...)"), one line per image and query.
type dumpResult struct {
	vals     []json.RawMessage
	warnings []string
	partial  []string // the names of the queries with warnings
	notRead  []string // the images not read that no warning names
}

// evalDump evaluates every query against the dump in dir, then previews
// the rules, and returns the results as compact JSON (queries in crit's
// plain form).
func (p *scriptProgram) evalDump(ctx context.Context, dir string) (dumpResult, error) {
	d, err := query.Open(dir)
	if err != nil {
		return dumpResult{}, withCode(exitBadImage, err)
	}
	defer d.Images().Close()
	memo := map[string]ref.Val{}
	res := dumpResult{vals: make([]json.RawMessage, len(p.queries), len(p.cols))}
	var buf bytes.Buffer
	for i, q := range p.queries {
		t := d.Track()
		v, err := p.evalOne(ctx, q, d, memo)
		if ws := t.Stop(); len(ws) > 0 {
			res.partial = append(res.partial, p.cols[i].name)
			for _, w := range ws {
				res.warnings = append(res.warnings, "query "+p.cols[i].name+": "+w)
			}
		}
		if err != nil {
			return dumpResult{}, fmt.Errorf("query %s: %w", p.cols[i].name, err)
		}
		buf.Reset()
		if err := (query.Output{Format: query.FormatJSON}).Write(&buf, "", v); err != nil {
			return dumpResult{}, withCode(exitError, fmt.Errorf("%s: %s: %w", dir, p.cols[i].name, err))
		}
		res.vals[i] = append(json.RawMessage(nil), bytes.TrimSpace(buf.Bytes())...)
	}
	res.notRead = notRead(d.Images(), res.warnings)
	if p.rules == nil {
		return res, nil
	}
	vals, err := p.previewRules(ctx, d.Images())
	if err != nil {
		return dumpResult{}, err
	}
	res.vals = append(res.vals, vals...)
	return res, nil
}

func (p *scriptProgram) evalOne(ctx context.Context, q *query.Query, d *query.Dump, memo map[string]ref.Val) (ref.Val, error) {
	return evalCoded(ctx, p.timeout, func(ctx context.Context) (ref.Val, error) { return p.lets.Eval(ctx, q, d, memo) })
}

// evalCoded runs eval, under timeout when it is not 0, and gives its error
// its exit code (exitBadImage when the dump could not be read, exitError
// otherwise).
func evalCoded(ctx context.Context, timeout time.Duration, eval func(context.Context) (ref.Val, error)) (ref.Val, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, fmt.Errorf("timeout after %v", timeout))
		defer cancel()
	}
	v, err := eval(ctx)
	if err != nil {
		return nil, withExitCode(err, exitError)
	}
	return v, nil
}

// recordWriter writes the results of a batch run, dump by dump.
type recordWriter interface {
	begin(cols []column)
	dump(dir string, cols []column, vals []json.RawMessage) error
	end() error
}

// appendRecord appends {"dump": ..., "query": ..., "value": ...}, or
// "rule" for a rule.
func appendRecord(b []byte, dir string, col column, val json.RawMessage) []byte {
	b = append(b, `{"dump":`...)
	b = annot.AppendJSONString(b, dir)
	b = append(b, `,"`...)
	b = append(b, col.key...)
	b = append(b, `":`...)
	b = annot.AppendJSONString(b, col.name)
	b = append(b, `,"value":`...)
	return append(b, val...)
}

type ndjsonWriter struct {
	w   io.Writer
	buf []byte
}

func (n *ndjsonWriter) begin([]column) {}
func (n *ndjsonWriter) end() error     { return nil }
func (n *ndjsonWriter) dump(dir string, cols []column, vals []json.RawMessage) error {
	n.buf = n.buf[:0]
	for i, v := range vals {
		n.buf = append(appendRecord(n.buf, dir, cols[i], v), "}\n"...)
	}
	_, err := n.w.Write(n.buf)
	return err
}

type jsonArrayWriter struct {
	w     io.Writer
	buf   []byte
	count int
}

func (j *jsonArrayWriter) begin([]column) {}
func (j *jsonArrayWriter) dump(dir string, cols []column, vals []json.RawMessage) error {
	j.buf = j.buf[:0]
	for i, v := range vals {
		if j.count == 0 {
			j.buf = append(j.buf, "[\n"...)
		} else {
			j.buf = append(j.buf, ",\n"...)
		}
		j.count++
		j.buf = append(appendRecord(j.buf, dir, cols[i], v), '}')
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

// tableWriter prints a row per dump and a column per query or rule; strings
// are unquoted, other values compact JSON. The columns are aligned at the
// end.
type tableWriter struct {
	w  io.Writer
	tw *tabwriter.Writer
}

func (t *tableWriter) begin(cols []column) {
	t.tw = tabwriter.NewWriter(t.w, 0, 0, 2, ' ', 0)
	fmt.Fprint(t.tw, "DUMP")
	for _, c := range cols {
		fmt.Fprintf(t.tw, "\t%s", cell(c.name))
	}
	fmt.Fprintln(t.tw)
}
func (t *tableWriter) dump(dir string, _ []column, vals []json.RawMessage) error {
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

// progress draws "critq: DONE/TOTAL dumps, N failed, T s" on a terminal's
// stderr once a run has lasted a second, from a ticker, so that one slow
// dump still shows it. Whatever else goes to the terminal while it is shown
// goes through [progress.write], which erases the line first and draws it
// again after. A progress that is not on does nothing.
type progress struct {
	mu                  sync.Mutex
	w                   io.Writer
	start               time.Time
	total, done, failed int
	shown               bool
	stopped             chan struct{} // closed by stop; nil when not on
	ticker              sync.WaitGroup
	line                func() string // the line's text, if not the dumps' (progress.go)
}

// Timing of the progress line.
const (
	progressAfter = time.Second
	progressEvery = 200 * time.Millisecond
)

// startProgress starts a progress of total dumps on w when on is true: the
// line is drawn after the first tick past after, then redrawn every tick.
func startProgress(w io.Writer, on bool, total int, after, every time.Duration) *progress {
	return (&progress{w: w, start: time.Now(), total: total}).run(on, after, every)
}

// run starts the ticker of p when on is true.
func (p *progress) run(on bool, after, every time.Duration) *progress {
	if !on {
		return p
	}
	p.stopped = make(chan struct{})
	p.ticker.Add(1)
	go func() {
		defer p.ticker.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stopped:
				return
			case now := <-t.C:
				if now.Sub(p.start) >= after {
					p.mu.Lock()
					p.draw()
					p.mu.Unlock()
				}
			}
		}
	}()
	return p
}

// step counts a dump done; the next tick or write shows it.
func (p *progress) step(failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if failed {
		p.failed++
	}
}

// draw writes the line over the one shown; p.mu is held.
func (p *progress) draw() {
	if p.line != nil {
		fmt.Fprintf(p.w, "\r\x1b[Kcritq: %s", p.line())
	} else {
		fmt.Fprintf(p.w, "\r\x1b[Kcritq: %d/%d dumps, %d failed, %.1fs", p.done, p.total, p.failed, time.Since(p.start).Seconds())
	}
	p.shown = true
}

// erase erases the line if it is shown; p.mu is held.
func (p *progress) erase() {
	if p.shown {
		io.WriteString(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// write calls f, which writes to the terminal, with the line erased, and
// draws the line again after it if it was shown.
func (p *progress) write(f func() error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	shown := p.shown
	p.erase()
	err := f()
	if shown {
		p.draw()
	}
	return err
}

// stop stops the ticker and erases the line.
func (p *progress) stop() {
	if p.stopped == nil {
		return
	}
	close(p.stopped)
	p.ticker.Wait()
	p.stopped = nil
	p.mu.Lock()
	p.erase()
	p.mu.Unlock()
}

// progressWriter writes to a terminal that shows a progress line, erasing
// the line first (records on a standard output that is the terminal of
// standard error).
type progressWriter struct {
	p *progress
	w io.Writer
}

func (pw progressWriter) Write(b []byte) (n int, err error) {
	err = pw.p.write(func() error {
		n, err = pw.w.Write(b)
		return err
	})
	return n, err
}
