package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/critq/critq/diff"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/proto/views"
	"github.com/critq/critq/query"
)

func init() {
	register(&command{name: "diff", summary: "what changed between two dumps, down to the page", run: runDiff})
}

const diffUsage = `usage: critq diff [flags] A B [EXPR]
       critq diff [flags] DUMP             a step of a pre-dump chain against its parent

Compares dump A (the older) with dump B, section by section: processes
(command line and environment read from memory included), threads, vmas,
memory, fds, files, sockets, mounts, images, and the other image kinds
(timers, file locks, namespaces, pipe and FIFO data, socket queues, TCP
stream queues, ghost files, ...) by their kind's name (--only other selects
them). Elements are matched by a key (pid; pid and tid; pid and start
address; pid and fd; path; socket inode or TCP 4-tuple; mount id; pipe id),
so a moved element is a change, not a removal and an addition. Registers
(unless --registers), counters and CRIU's dump numbering (file ids,
kernel-object ids) are not compared: "go doc github.com/critq/critq/diff
Volatile" lists them. A and B are folders or tar, tar.gz, tar.zst archives.

Memory: the pages each dump holds (parent dumps followed) are compared page
by page; counts per VMA and the total, or with --pages one line per range of
pages, with --bytes the first differing bytes of each changed range. The
data that follows an image's entries (a pipe's unread bytes, a queued
packet, a TCP queue, a ghost file's contents) is compared by size and
SHA-256, with --bytes its first differing bytes.

With EXPR, a CEL expression, critq prints its value instead: changes is the
list of change records (critq.views.change: section, pid, key, path, op, old,
new, addr, end, pages), a and b are the views of the two dumps
(critq.views.dump_views: tasks, vmas, fds, files, sockets, mounts, pagemaps,
threads):

  critq diff A B 'changes.filter(c, c.section == "vmas" && c.path == "prot")'
  critq diff A B 'b.sockets.filter(s, !a.sockets.exists(o, o.ino == s.ino))'

Exit status: 0 the dumps are the same (with EXPR: the value is true or not
empty), 1 they differ (with EXPR: false, null or empty), 2 usage error,
3 EXPR does not compile, 4 a bad or unreadable image, 5 an evaluation or
write failure.
`

type diffOptions struct {
	format    string
	only      string
	pid       uint
	unchanged bool
	registers bool
	pages     bool
	bytes     bool
	partial   bool
}

func runDiff(c *cli, args []string) error {
	fs := c.newFlags("diff", diffUsage)
	var o diffOptions
	fs.StringVar(&o.format, "format", "", "tree, json, ndjson or table (default: tree on a terminal, else json; with EXPR as critq query)")
	fs.StringVar(&o.only, "only", "", "compare only these sections, comma-separated")
	fs.UintVar(&o.pid, "pid", 0, "compare only this task's elements")
	fs.BoolVar(&o.unchanged, "show-unchanged", false, "list the matched elements that did not change")
	fs.BoolVar(&o.registers, "registers", false, "compare registers, FPU state and TLS too")
	fs.BoolVar(&o.pages, "pages", false, "memory: list the changed ranges of pages")
	fs.BoolVar(&o.bytes, "bytes", false, "the first differing bytes of each changed range of pages (implies --pages) and of entry data")
	fs.BoolVar(&o.partial, "partial", false, "accept a comparison that had to go without missing or damaged images (exit 0 or 1, warnings on stderr)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	opts := diff.Options{PID: uint32(o.pid), Unchanged: o.unchanged, Registers: o.registers, Pages: o.pages || o.bytes, Bytes: o.bytes}
	if o.only != "" {
		opts.Only = strings.Split(o.only, ",")
		if err := diff.CheckSections(opts.Only); err != nil {
			return usageErrorf("diff: %v", err)
		}
	}
	if o.pid > 1<<32-1 {
		return usageErrorf("diff: --pid %d is not a pid", o.pid)
	}
	// DUMP against its parent, or A B [EXPR].
	var paths []string
	var expr string
	switch {
	case len(pos) == 1:
		paths = pos
	case len(pos) == 2:
		paths = pos
	case len(pos) == 3:
		paths, expr = pos[:2], pos[2]
	default:
		return usageErrorf("diff: %s", firstLine(diffUsage))
	}
	var q *query.Query
	if expr != "" {
		q, err = query.Compile(expr, diffDeclared()...)
		if err != nil {
			return withCode(exitCompile, err)
		}
	} else {
		if err := checkFormat("diff", o.format); err != nil {
			return err
		}
	}
	needPages := opts.Only == nil || strings.Contains(o.only, "memory")
	a, b, done, err := openPair(paths, needPages)
	if err != nil {
		return err
	}
	defer done()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	va, vb, err := diff.LoadPair(ctx, a, b)
	if err != nil {
		return diffErr(err)
	}
	cs, err := diff.Views(ctx, a, b, va, vb, opts)
	if err != nil {
		return diffErr(err)
	}
	if q != nil {
		err := c.diffExpr(ctx, q, b, va, vb, cs, o.format)
		return c.diffPartial(a, b, o.partial, err)
	}
	format := o.format
	if format == "" {
		format = "json"
		if isTerminal(c.stdout) {
			format = "tree"
		}
	}
	switch format {
	case "tree":
		err = diff.WriteTree(c.stdout, cs)
	case "json":
		err = diff.WriteJSON(c.stdout, a.Name(), b.Name(), cs)
	case "ndjson":
		err = diff.WriteNDJSON(c.stdout, cs)
	case "table":
		err = diff.WriteTable(c.stdout, cs)
	}
	if err != nil {
		return withCode(exitError, err)
	}
	if diff.Differs(cs) {
		err = silentError{code: exitFalse}
	}
	return c.diffPartial(a, b, o.partial, err)
}

// diffPartial warns of the images either dump lacked for the comparison,
// one line each: without them a change may only be a missing value, so the
// result is exit 4 unless --partial accepts it (then err, the comparison's
// own outcome).
func (c *cli) diffPartial(a, b *query.Dump, accept bool, err error) error {
	perr := c.warnPartial(a, accept)
	if berr := c.warnPartial(b, accept); perr == nil {
		perr = berr
	}
	if perr != nil {
		return perr
	}
	return err
}

// openPair opens the two dumps of paths, or the one dump of paths and its
// parent (as a).
func openPair(paths []string, pages bool) (a, b *query.Dump, done func(), err error) {
	ao := dump.ArchiveOptions{SpoolPages: pages}
	var opened []*dump.Dump
	done = func() {
		for _, d := range opened {
			d.Close()
		}
	}
	open := func(p string) (*dump.Dump, error) {
		d, err := dump.OpenAny(p, ao)
		if err != nil {
			return nil, withCode(exitBadImage, err)
		}
		opened = append(opened, d)
		return d, nil
	}
	db, err := open(paths[len(paths)-1])
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	var da *dump.Dump
	if len(paths) == 2 {
		da, err = open(paths[0])
	} else {
		da, err = db.Parent()
		if err == nil && da == nil {
			err = errors.New(paths[0] + ": no parent dump to compare with (give two dumps)")
		}
		if err != nil {
			err = withCode(exitUsage, err)
		}
	}
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	return query.NewDump(da), query.NewDump(db), done, nil
}

// diffErr gives the error of a comparison its exit code: an interrupt is
// a failure (5); anything else is an image that could not be read (4).
func diffErr(err error) error {
	if errors.Is(err, context.Canceled) {
		return withCode(exitError, err)
	}
	return withCode(exitBadImage, err)
}

// diffDeclared declares changes, a and b for an expression over a diff.
func diffDeclared() []query.Option {
	return []query.Option{
		query.Declare("changes", cel.ListType(cel.ObjectType("critq.views.change"))),
		query.Declare("a", cel.ObjectType("critq.views.dump_views")),
		query.Declare("b", cel.ObjectType("critq.views.dump_views")),
	}
}

// diffValues returns the values of changes, a and b.
func diffValues(va, vb *views.DumpViews, cs []*diff.Change) (map[string]ref.Val, error) {
	reg, err := types.NewRegistry(&views.Change{}, &views.DumpViews{})
	if err != nil {
		return nil, err
	}
	return map[string]ref.Val{
		"changes": reg.NativeToValue(cs),
		"a":       reg.NativeToValue(va),
		"b":       reg.NativeToValue(vb),
	}, nil
}

// replDiff computes the diff of the dumps A and B of critq repl --diff and
// returns the options that bind changes, a and b in the session.
func replDiff(paths []string) (declared []query.Option, vals map[string]ref.Val, err error) {
	if len(paths) != 2 {
		return nil, nil, usageErrorf("repl: --diff takes two dumps, A and B")
	}
	a, b, done, err := openPair(paths, true)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	va, vb, err := diff.LoadPair(ctx, a, b)
	if err != nil {
		return nil, nil, diffErr(err)
	}
	cs, err := diff.Views(ctx, a, b, va, vb, diff.Options{})
	if err != nil {
		return nil, nil, diffErr(err)
	}
	vals, err = diffValues(va, vb, cs)
	if err != nil {
		return nil, nil, withCode(exitError, err)
	}
	return diffDeclared(), vals, nil
}

// diffExpr evaluates q with changes, a and b bound, over dump b (whose
// views the bare names hold), and prints its value.
func (c *cli) diffExpr(ctx context.Context, q *query.Query, b *query.Dump, va, vb *views.DumpViews, cs []*diff.Change, format string) error {
	vars, err := diffValues(va, vb, cs)
	if err != nil {
		return withCode(exitError, err)
	}
	v, err := evalCoded(ctx, 0, func(ctx context.Context) (ref.Val, error) { return q.EvalWith(ctx, b, vars) })
	if err != nil {
		return err
	}
	out := query.Output{Format: query.FormatPretty}
	if format != "" {
		f, err := query.ParseFormat(format)
		if err != nil {
			return usageErrorf("diff: %v", err)
		}
		out.Format = f
	}
	if err := out.Write(c.stdout, "", v); err != nil {
		return withCode(exitError, err)
	}
	if isFalsy(v) {
		return silentError{code: exitFalse}
	}
	return nil
}
