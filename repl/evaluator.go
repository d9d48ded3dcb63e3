package repl

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"

	"github.com/critq/critq/query"
	"github.com/critq/critq/rules"
)

// Options configure an Evaluator.
type Options struct {
	// Format is the output format of results; the zero value is pretty.
	Format query.Format
	// Color colors pretty output.
	Color bool
	// ShowTypes appends " : TYPE" to every result, as on a terminal.
	ShowTypes bool
	// Compile holds the options every expression is compiled with (cost
	// limit).
	Compile []query.Option
	// Open opens a dump; nil means query.Open.
	Open func(path string) (*query.Dump, error)
	// Values are the values of variables declared in Compile (critq repl
	// --diff: changes, a, b), the same against every dump.
	Values map[string]ref.Val
}

// Evaluator holds the state of a REPL session: the loaded dumps, the
// current one, the let bindings and the settings. It never touches the
// terminal: Process returns what to print. An Evaluator is used by one
// goroutine; Process may be cancelled through its context.
type Evaluator struct {
	opts   Options
	lets   *query.Bindings
	dumps  []*loaded
	cur    int
	timing bool
	env    *cel.Env // critq's environment, for completion and :vars
}

// loaded is a dump of the session.
type loaded struct {
	path  string
	d     *query.Dump
	memo  map[string]ref.Val // values of the bindings against d
	reads atomic.Int64       // images read from d so far
}

// New returns an Evaluator with the dumps at paths loaded; the first is
// current. It may start without dumps (then expressions fail until :load).
func New(opts Options, paths ...string) (*Evaluator, error) {
	if opts.Open == nil {
		opts.Open = query.Open
	}
	env, err := query.NewEnv()
	if err != nil {
		return nil, err
	}
	e := &Evaluator{opts: opts, lets: query.NewBindings(opts.Compile...), env: env}
	for _, p := range paths {
		if _, err := e.load(p); err != nil {
			e.Close()
			return nil, err
		}
	}
	e.cur = 0
	return e, nil
}

// NotRead returns the files named like images that the loaded dumps have
// and do not read (symbolic links: dump.Dump.NotRead), each as "DUMP:
// core-1.img: a symbolic link, not read".
func (e *Evaluator) NotRead() []string {
	var out []string
	for _, l := range e.dumps {
		for _, n := range l.d.Images().NotRead() {
			out = append(out, l.path+": "+n)
		}
	}
	return out
}

// Close releases the dumps.
func (e *Evaluator) Close() {
	for _, l := range e.dumps {
		l.d.Images().Close()
	}
	e.dumps = nil
}

// load opens path, or finds it among the loaded dumps, and makes it
// current. It reports whether it was already loaded.
func (e *Evaluator) load(path string) (bool, error) {
	clean := filepath.Clean(path)
	for i, l := range e.dumps {
		if filepath.Clean(l.path) == clean {
			e.cur = i
			return true, nil
		}
	}
	d, err := e.opts.Open(path)
	if err != nil {
		return false, err
	}
	l := &loaded{path: path, d: d, memo: map[string]ref.Val{}}
	d.Images().SetHook(func(string) { l.reads.Add(1) })
	e.dumps = append(e.dumps, l)
	e.cur = len(e.dumps) - 1
	return false, nil
}

// Prompt returns the prompt for the next line: the current dump's base
// name.
func (e *Evaluator) Prompt() string {
	if len(e.dumps) == 0 {
		return "critq> "
	}
	return filepath.Base(e.dumps[e.cur].path) + "> "
}

// ErrNoDump is returned for an expression evaluated before any dump is
// loaded.
var ErrNoDump = errors.New("no dump loaded (:load DUMP)")

// Process carries out cmd. It returns the text to print (ending in a
// newline, or empty), whether the session should end, and an error to
// print. Errors leave the session as it was: an invalid :let keeps the
// previous bindings. A cancelled ctx stops an evaluation, with an error
// that wraps ctx's cause. A result that is partial comes with its text and
// a *PartialError.
func (e *Evaluator) Process(ctx context.Context, cmd Cmd) (string, bool, error) {
	switch c := cmd.(type) {
	case Eval:
		out, err := e.eval(ctx, c.Expr)
		return out, false, err
	case Help:
		return helpText(), false, nil
	case Vars:
		return e.vars(), false, nil
	case TypeOf:
		q, err := e.lets.Compile(c.Expr)
		if err != nil {
			return "", false, named(err)
		}
		return q.OutputType().String() + "\n", false, nil
	case Let:
		if err := e.lets.Let(c.Name, c.Expr); err != nil {
			return "", false, named(err)
		}
		e.forget()
		return "", false, nil
	case Unlet:
		if err := e.lets.Unlet(c.Name); err != nil {
			return "", false, err
		}
		e.forget()
		return "", false, nil
	case Load:
		again, err := e.load(c.Path)
		if err != nil {
			return "", false, err
		}
		if again {
			return fmt.Sprintf("switched to %s\n", c.Path), false, nil
		}
		d := e.dumps[e.cur].d.Images()
		out := fmt.Sprintf("loaded %s (%d files)\n", c.Path, len(d.Files()))
		for _, n := range d.NotRead() {
			out += "warning: " + n + "\n"
		}
		return out, false, nil
	case Dumps:
		if c.N > 0 {
			if c.N > len(e.dumps) {
				return "", false, fmt.Errorf(":dumps: there are %d dumps", len(e.dumps))
			}
			e.cur = c.N - 1
		}
		return e.listDumps(), false, nil
	case Format:
		f, err := query.ParseFormat(c.Name)
		if err != nil {
			return "", false, err
		}
		e.opts.Format = f
		return "", false, nil
	case Time:
		e.timing = c.On
		return "", false, nil
	case Transform:
		out, err := e.transform(ctx, c.Rule)
		return out, false, err
	case Quit:
		return "", true, nil
	}
	return "", false, fmt.Errorf("unknown command %T", cmd)
}

// forget drops the values of the bindings computed so far.
func (e *Evaluator) forget() {
	for _, l := range e.dumps {
		l.memo = map[string]ref.Val{}
	}
}

// replSource names the REPL's input in compile errors, as <input> names
// cel-go's.
const replSource = "<repl>"

// named makes the compile errors in err name the REPL's input.
func named(err error) error {
	var ce *query.CompileError
	if errors.As(err, &ce) {
		ce.File = replSource
		for _, m := range ce.More {
			m.File = replSource
		}
	}
	return err
}

// measure runs f against the current dump and returns how long it took
// and, when :time is on, the line that says so and how many images it
// read.
func (e *Evaluator) measure(f func(l *loaded) error) (string, error) {
	if len(e.dumps) == 0 {
		return "", ErrNoDump
	}
	l := e.dumps[e.cur]
	reads := l.reads.Load()
	start := time.Now()
	if err := f(l); err != nil {
		return "", err
	}
	if !e.timing {
		return "", nil
	}
	took := time.Since(start)
	n := l.reads.Load() - reads
	return fmt.Sprintf("(%v, %d %s read)\n", took.Round(10*time.Microsecond), n, plural(n, "image", "images")), nil
}

func (e *Evaluator) eval(ctx context.Context, src string) (string, error) {
	q, err := e.lets.Compile(src)
	if err != nil {
		return "", named(err)
	}
	var v ref.Val
	var partial *PartialError
	timing, err := e.measure(func(l *loaded) (err error) {
		t := l.d.Track()
		v, err = e.lets.EvalValues(ctx, q, l.d, l.memo, e.opts.Values)
		if ws := t.Stop(); len(ws) > 0 {
			partial = &PartialError{Dump: l.path, Warnings: ws}
		}
		return err
	})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	out := query.Output{Format: e.opts.Format, Color: e.opts.Color}
	if err := out.Write(&b, "", v); err != nil {
		return "", err
	}
	s := b.String()
	if e.opts.ShowTypes {
		s = strings.TrimRight(s, "\n") + " : " + q.OutputType().String() + "\n"
	}
	if partial != nil {
		return s + timing, partial
	}
	return s + timing, nil
}

// PartialError is what Process returns, with the result's text, when an
// expression's result needed images the dump does not have (or memory on
// a damaged image): the fields they would fill are unset, the lists read
// from memory short. Warnings has one line per image ([query.Tracker]).
type PartialError struct {
	Dump     string
	Warnings []string
}

func (e *PartialError) Error() string {
	what := "an image"
	if len(e.Warnings) > 1 {
		what = fmt.Sprintf("%d images", len(e.Warnings))
	}
	return fmt.Sprintf("%s: the result is partial: %s missing or damaged", e.Dump, what)
}

// transform previews rule src on the current dump: the changed fields of
// every changed entry, the warnings, and what the rule matched and changed.
// Nothing is written.
func (e *Evaluator) transform(ctx context.Context, src string) (string, error) {
	rs, err := rules.ParseRule(":transform", src)
	if err != nil {
		return "", err
	}
	compiled, err := rules.CompileRules([]rules.RuleSource{rs}, rules.RuleOptions{})
	if err != nil {
		var ce *query.CompileError
		if errors.As(err, &ce) {
			return "", named(ce) // the caret says where
		}
		return "", err
	}
	var b strings.Builder
	timing, err := e.measure(func(l *loaded) error {
		res, err := rules.ApplyRules(ctx, l.d.Images(), compiled)
		if err != nil {
			return err
		}
		if err := res.WriteDiff(&b); err != nil {
			return err
		}
		for _, w := range res.Warnings(l.d.Images()) {
			fmt.Fprintf(&b, "warning: %s\n", w)
		}
		fmt.Fprintf(&b, "%s; nothing written\n", res.Stats[0])
		return nil
	})
	if err != nil {
		return "", err
	}
	return b.String() + timing, nil
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (e *Evaluator) listDumps() string {
	var b strings.Builder
	for i, l := range e.dumps {
		mark := " "
		if i == e.cur {
			mark = "*"
		}
		fmt.Fprintf(&b, "%s %d  %s\n", mark, i+1, l.path)
	}
	if b.Len() == 0 {
		return "no dumps loaded (:load DUMP)\n"
	}
	return b.String()
}

func (e *Evaluator) vars() string {
	var b strings.Builder
	if lets := e.lets.List(); len(lets) > 0 {
		b.WriteString("bindings:\n")
		for _, l := range lets {
			fmt.Fprintf(&b, "  %-16s %s\n", l.Name, l.Query.OutputType())
		}
		b.WriteString("\n")
	}
	b.WriteString("names of the dump (critq help vars says more):\n")
	for _, v := range query.Vars() {
		fmt.Fprintf(&b, "  %-16s %s\n", v.Name, v.Type)
	}
	return b.String()
}
