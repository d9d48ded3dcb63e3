package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"cel.dev/cel-go/common/types/ref"
	"github.com/peterh/liner"

	"github.com/critq/critq/batch"
	"github.com/critq/critq/internal/fileout"
	"github.com/critq/critq/query"
	"github.com/critq/critq/repl"
)

const replUsage = `usage: critq repl [flags] [DUMP...]

Explores dumps interactively: type a CEL expression and see its result with
its type, or a command (:help lists them: :vars, :type, :let, :unlet, :load,
:dumps, :format, :time, :transform, :quit). The first DUMP is the current
one. :transform KIND: EXPR previews a rule of critq transform on it: the
changed fields and the counts, writing nothing.

With --diff A B, every expression also sees changes, a and b as in
critq diff A B EXPR (see critq diff -h); B is the current dump.

Tab completes names, fields after '.' (at any depth: tasks[0].core.tc.),
functions and commands; a line with an open bracket or string continues on
the next; Ctrl-C stops a running evaluation, Ctrl-D leaves. History is kept
in $XDG_STATE_HOME/critq/history (~/.local/state/critq/history).

When standard input is not a terminal, each line (or multi-line entry) is
processed the same way, results go to standard output and errors to
standard error, and the exit status is that of the first failure.

A result that needed an image the dump does not have (or memory on a
damaged image) is printed with one warning line per image on standard
error; without a terminal it is a failure (exit 4) unless --partial is
given.
`

func init() {
	register(&command{name: "repl", summary: "explore dumps interactively (expressions, :let, completion)", run: runRepl})
}

func runRepl(c *cli, args []string) error {
	var format string
	var cost uint64
	fs := c.newFlags("repl", replUsage)
	c.archiveFlags(fs)
	fs.StringVar(&format, "format", "", "output `format`: pretty (on a terminal), json (elsewhere), ndjson or table")
	fs.Uint64Var(&cost, "cost", query.DefaultCostLimit, "stop an evaluation after this cost (0: no limit)")
	partial := fs.Bool("partial", false, "accept results that depend on missing or damaged images (exit 0, warnings on stderr)")
	diffPair := fs.Bool("diff", false, "with dumps A B: bind changes, a and b as critq diff A B EXPR does (B is current)")
	check := checkFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var declared []query.Option
	var values map[string]ref.Val
	if *diffPair {
		if declared, values, err = replDiff(pos); err != nil {
			return err
		}
		pos = []string{pos[1], pos[0]}
	}
	in, _ := c.stdin.(*os.File)
	term := in != nil && isTerminal(in) && isTerminal(c.stdout)
	opts := repl.Options{Format: query.FormatJSON, ShowTypes: term, Compile: append([]query.Option{query.CostLimit(cost)}, declared...), Values: values}
	if term {
		opts.Format = query.FormatPretty
		opts.Color = c.colorOn(c.stdout)
	}
	if format != "" {
		if err := checkFormat("repl", format); err != nil {
			return err
		}
		f, err := query.ParseFormat(format)
		if err != nil {
			return withCode(exitUsage, err)
		}
		opts.Format = f
	}
	ev, err := repl.New(opts, pos...)
	if err != nil {
		return withCode(exitBadImage, err)
	}
	defer ev.Close()
	for _, n := range ev.NotRead() {
		fmt.Fprintf(c.stderr, "critq: warning: %s\n", n)
	}

	ints := make(chan os.Signal, 1)
	c.handlesInterrupt()
	signal.Notify(ints, os.Interrupt)
	defer signal.Stop(ints)
	s := &session{ev: ev, stdout: c.stdout, stderr: c.stderr, interrupts: ints, parent: check.context(context.Background()), partial: *partial}
	if !term {
		s.in = &plainLines{r: bufio.NewReader(c.stdin)}
		return s.run()
	}
	ln := liner.NewLiner()
	defer ln.Close()
	ln.SetCtrlCAborts(true)
	ln.SetTabCompletionStyle(liner.TabPrints)
	ln.SetWordCompleter(ev.Complete)
	hist := historyPath(c.env)
	loadHistory(ln, hist)
	s.in, s.interactive = ln, true
	fmt.Fprintln(c.stdout, "critq repl: :help lists the commands, Ctrl-D leaves.")
	err = s.run()
	if herr := saveHistory(ln, hist); herr != nil {
		fmt.Fprintf(c.stderr, "critq: history: %v\n", herr)
	}
	return err
}

// lineSource is where a session reads its lines: the line editor on a
// terminal, a plain reader otherwise, scripted lines in tests.
type lineSource interface {
	// Prompt reads a line. It returns io.EOF at the end of input (Ctrl-D)
	// and liner.ErrPromptAborted when Ctrl-C is typed at the prompt.
	Prompt(prompt string) (string, error)
	AppendHistory(entry string)
}

// session connects a line source to an Evaluator: it gathers multi-line
// entries, prints results and errors, and turns Ctrl-C during an
// evaluation into a cancelled context.
type session struct {
	ev             *repl.Evaluator
	in             lineSource
	interactive    bool // prompts are shown; errors do not end in an exit code
	stdout, stderr io.Writer
	interrupts     <-chan os.Signal
	first          int  // exit code of the first failure (not interactive)
	partial        bool // --partial: a partial result is no failure
	// parent is the context of every evaluation: it carries --root and
	// --criu-options to the problems view.
	parent context.Context
}

// errInterrupted is the cause of an evaluation stopped by Ctrl-C.
var errInterrupted = errors.New("interrupted")

func (s *session) run() error {
	for {
		entry, err := s.read()
		switch {
		case err == io.EOF:
			if s.interactive {
				fmt.Fprintln(s.stdout)
			}
			return s.status()
		case errors.Is(err, liner.ErrPromptAborted):
			continue
		case err != nil:
			return withCode(exitError, err)
		}
		if strings.TrimSpace(entry) == "" {
			continue
		}
		s.in.AppendHistory(strings.Join(strings.Fields(entry), " "))
		cmd, err := repl.Parse(entry)
		if err != nil {
			s.fail(exitUsage, err)
			continue
		}
		out, exit, err := s.process(cmd)
		io.WriteString(s.stdout, out)
		if err != nil {
			s.fail(exitCode(err, exitError), err)
		}
		if exit {
			return s.status()
		}
	}
}

// read reads one entry: a line, and more lines while a bracket or a
// triple-quoted string is open.
func (s *session) read() (string, error) {
	prompt := s.ev.Prompt()
	var entry string
	for {
		line, err := s.in.Prompt(s.prompt(prompt))
		if err != nil {
			if err == io.EOF && entry != "" {
				return entry, nil
			}
			return "", err
		}
		if entry != "" {
			entry += "\n"
		}
		entry += line
		if !batch.Incomplete(entry) {
			return entry, nil
		}
		prompt = strings.Repeat(" ", max(len(prompt)-4, 0)) + "... "
	}
}

func (s *session) prompt(p string) string {
	if !s.interactive {
		return ""
	}
	return p
}

// process runs cmd, cancelling it when an interrupt arrives.
func (s *session) process(cmd repl.Cmd) (string, bool, error) {
	for len(s.interrupts) > 0 { // a Ctrl-C typed before this evaluation
		<-s.interrupts
	}
	parent := s.parent
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-s.interrupts:
			cancel(errInterrupted)
		case <-done:
		}
	}()
	return s.ev.Process(ctx, cmd)
}

func (s *session) fail(code int, err error) {
	var pe *repl.PartialError
	if errors.As(err, &pe) {
		prefix := "critq: "
		if s.interactive {
			prefix = ""
		}
		for _, w := range pe.Warnings {
			fmt.Fprintf(s.stderr, "%swarning: %s: %s\n", prefix, pe.Dump, w)
		}
		if s.partial || s.interactive {
			return
		}
		err = fmt.Errorf("%w (--partial accepts it)", err)
	}
	msg := strings.TrimRight(err.Error(), "\n")
	if errors.Is(err, errInterrupted) {
		msg = "interrupted"
	}
	if s.interactive {
		fmt.Fprintln(s.stderr, msg)
		return
	}
	fmt.Fprintf(s.stderr, "critq: %s\n", msg)
	if s.first == 0 {
		s.first = code
	}
}

func (s *session) status() error {
	if s.first != 0 {
		return silentError{code: s.first}
	}
	return nil
}

// plainLines reads lines from a reader that is not a terminal.
type plainLines struct{ r *bufio.Reader }

func (p *plainLines) Prompt(string) (string, error) {
	line, err := p.r.ReadString('\n')
	if err == io.EOF && line != "" {
		err = nil
	}
	return strings.TrimRight(line, "\r\n"), err
}

func (p *plainLines) AppendHistory(string) {}

// historyPath returns the file of the REPL's history:
// $XDG_STATE_HOME/critq/history, or ~/.local/state/critq/history; "" when
// neither is known.
func historyPath(env func(string) string) string {
	if d := env("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "critq", "history")
	}
	if h := env("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "critq", "history")
	}
	return ""
}

func loadHistory(ln *liner.State, path string) {
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	ln.ReadHistory(f)
}

// saveHistory writes the history through a temporary file renamed over
// the old, so that two sessions ending together leave a whole file.
func saveHistory(ln *liner.State, path string) error {
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return fileout.WriteFile(path, 0o600, func(w io.Writer) error {
		_, err := ln.WriteHistory(w)
		return err
	})
}
