package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/critq/critq/query"
)

const queryUsage = `usage: critq [flags] EXPR DUMP...
       critq query [flags] EXPR DUMP...

Evaluates the CEL expression EXPR over each dump directory and prints the
result. Only the images the expression reads are decoded. "critq help vars"
lists the names an expression can use, with their types.

Examples:
  critq 'vmas.filter(v, v.prot & PROT_EXEC)' ./dump
  critq --format table 'sockets.filter(s, s.state == 10)' ./dump
  critq -f examples/cookbook.txt ./dump1 ./dump2   # a script (critq batch -h)
  critq -e 'tasks.exists(t, t.state == TASK_DEAD)' ./dump  # exit 1 unless a zombie (CRIU stores zombies as DEAD)

Output: pretty (crit's pretty JSON, indented; colored on a terminal unless
NO_COLOR is set) is the default on a terminal, json (compact, crit's plain
values) elsewhere; ndjson prints one list element per line; table prints a
list of messages as columns; raw prints strings and bytes unquoted. With
several dumps each result is tagged with its dump: {"dump": D, "result": R}
in json and pretty (one document a dump) and in ndjson (one line an
element), a "D: " prefix in raw, and one table over all the dumps with a
leading DUMP column in table.

A result that needed an image the dump does not have (or memory on a
damaged image) is printed with one warning line per image on stderr and
exits 4; --partial accepts it (exit 0, the warnings kept). The fields such
an image would fill are unset (has() is false), never made up.
`

func init() {
	register(&command{name: "query", summary: "evaluate a CEL expression over dumps (the default command)", run: runQuery})
	helpTopics["vars"] = varsHelp
}

// oneShotMemoryLimit is the heap size past which a one-shot query
// collects garbage.
const oneShotMemoryLimit = 512 << 20

type queryFlags struct {
	format  string
	raw     bool
	exit    bool
	timeout time.Duration
	cost    uint64
	memory  uint64 // --max-memory
	names   bool   // --names
	script  string // -f: run a batch script (cmd_batch.go)
	jobs    int
	partial bool
	check   *checkConfig // --root, --criu-options: the problems view
}

func runQuery(c *cli, args []string) (err error) {
	var o queryFlags
	fs := c.newFlags("query", queryUsage)
	c.archiveFlags(fs)
	fs.StringVar(&o.format, "format", "", "output `format`: pretty, json, ndjson, table or raw")
	fs.StringVar(&o.script, "f", "", "run the named queries of `script` (- for stdin) over every DUMP (critq batch -h)")
	fs.IntVar(&o.jobs, "j", 0, "with -f: evaluate `N` dumps at once (0: the number of cores)")
	fs.BoolVar(&o.raw, "r", false, "short for --format raw")
	fs.BoolVar(&o.exit, "e", false, "exit 1 when a result is false, null or empty")
	fs.DurationVar(&o.timeout, "timeout", 0, "stop an evaluation after `duration` (0: no limit)")
	fs.Uint64Var(&o.cost, "cost", query.DefaultCostLimit, "stop an evaluation after this cost (0: no limit)")
	fs.BoolVar(&o.partial, "partial", false, "accept a result that depends on missing or damaged images (exit 0, warnings on stderr)")
	fs.BoolVar(&o.names, "names", false, "write enum-like values (task states, socket families, types, states) as names in JSON too")
	fs.Uint64Var(&o.memory, "max-memory", query.DefaultMaxMemory, "stop an evaluation that holds more than this many `bytes` (0: no limit)")
	o.check = checkFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if o.script != "" {
		return runBatch(c, o.script, pos, batchOptions{format: o.format, jobs: o.jobs, timeout: o.timeout, cost: o.cost, check: o.check, partial: o.partial})
	}
	if len(pos) < 2 {
		return usageErrorf("query: need an expression and at least one dump (critq query -h)")
	}
	out := query.Output{Format: query.FormatJSON}
	term := isTerminal(c.stdout)
	if term {
		out.Format = query.FormatPretty
		out.Color = c.colorOn(c.stdout)
	}
	switch {
	case o.raw:
		out.Format = query.FormatRaw
	case o.format != "":
		if err := checkFormat("query", o.format); err != nil {
			return err
		}
		if out.Format, err = query.ParseFormat(o.format); err != nil {
			return withCode(exitUsage, err)
		}
	}
	// A query builds many short-lived values in a process that lives for
	// one query: collecting them is wasted work until the heap grows
	// large, so the collector runs only past a soft limit, unless GOGC or
	// GOMEMLIMIT say otherwise. The settings are restored on return.
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(oneShotMemoryLimit))
	}
	q, err := query.Compile(pos[0], query.CostLimit(o.cost), query.MaxMemory(o.memory))
	if err != nil {
		if serr := swappedArgs(pos); serr != nil {
			return serr
		}
		return withCode(exitCompile, err)
	}
	c.handlesInterrupt()
	if o.names || out.Format == query.FormatPretty || out.Format == query.FormatTable {
		out.Names = q.ValueNames()
	}
	ctx, stop := signal.NotifyContext(o.check.context(context.Background()), os.Interrupt)
	defer stop()
	dumps := pos[1:]
	falsy := false
	var partial error
	// A table over several dumps is one table with a DUMP column: the rows
	// are rendered as each dump is done and printed at the end (with the
	// rows gathered so far when a dump fails).
	var table *query.Table
	if out.Format == query.FormatTable && len(dumps) > 1 {
		table = out.NewTable()
		defer func() {
			if werr := table.Write(c.stdout); werr != nil && err == nil {
				err = withCode(exitError, werr)
			}
		}()
	}
	for _, dir := range dumps {
		var (
			v    ref.Val
			d    *query.Dump
			done func()
		)
		err := c.withProgress(q, func() (err error) {
			v, d, done, err = evalOne(ctx, q, dir, o.timeout)
			return err
		})
		if err != nil {
			return err
		}
		tag := ""
		if len(dumps) > 1 {
			tag = dir
		}
		if table != nil {
			err = table.Add(tag, v)
		} else {
			err = out.Write(c.stdout, tag, v)
		}
		falsy = falsy || isFalsy(v)
		done()
		if err != nil {
			return withCode(exitError, err)
		}
		if perr := c.warnPartial(d, o.partial); perr != nil && partial == nil {
			partial = perr
		}
	}
	if partial != nil {
		return partial
	}
	if o.exit && falsy {
		return silentError{code: exitFalse}
	}
	return nil
}

// evalOne evaluates q over the dump dir; done closes the dump (an archive
// and its spooled pages) once the value, which may read it lazily, is
// written.
func evalOne(ctx context.Context, q *query.Query, dir string, timeout time.Duration) (v ref.Val, d *query.Dump, done func(), err error) {
	d, err = q.Open(dir)
	if err != nil {
		return nil, nil, nil, withCode(exitBadImage, err)
	}
	v, err = evalCoded(ctx, timeout, func(ctx context.Context) (ref.Val, error) { return q.Eval(ctx, d) })
	done = func() { d.Images().Close() }
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	return v, d, done, nil
}

// isFalsy reports whether v is false, null, or an empty list, map, string
// or bytes.
func isFalsy(v ref.Val) bool {
	switch x := v.(type) {
	case types.Bool:
		return !bool(x)
	case types.Null:
		return true
	case types.String:
		return x == ""
	case types.Bytes:
		return len(x) == 0
	case traits.Sizer:
		return x.Size() == types.IntZero
	}
	return false
}

// varsHelp is "critq help vars": every name of the environment with its
// CEL type.
func varsHelp() string {
	var b strings.Builder
	b.WriteString(`Names an expression can use (see also "go doc github.com/critq/critq/query").

Views join several images; kind variables are named after the image kinds
(lower case), hold one message per image (or a list of entries), and are
maps from the id in the file name (pid, files id, namespace id) where the
file name has one: core[pid].tc.comm, fdinfo[files_id], mm[pid].vmas.
Images are read only when an expression uses them.

`)
	for _, v := range query.Vars() {
		fmt.Fprintf(&b, "  %-14s %s\n  %-14s   %s\n", v.Name, v.Type, "", v.Doc)
	}
	return b.String()
}
