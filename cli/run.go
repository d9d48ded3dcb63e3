// Package cli is the critq command: argument parsing, the subcommands, their
// output and exit codes. cmd/critq's main only calls Run; tests call run
// in process with their own streams.
//
// Every command reports an error once, as "critq: ..." on stderr, and the
// error decides the exit status (see the Exit constants).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/panics"
	"github.com/critq/critq/query"
)

// Exit codes, shared by every command.
const (
	exitOK       = 0 // success
	exitFalse    = 1 // -e: the result was false, null or empty
	exitUsage    = 2 // bad command line
	exitCompile  = 3 // the expression does not compile
	exitBadImage = 4 // an image is bad or unreadable (a raw image given to decode included)
	exitError    = 5 // evaluation or write failure
)

const exitCodesHelp = `Exit status:
  0  success
  1  with -e: the result was false, null or empty
  2  usage error
  3  the expression does not compile
  4  an image is bad or cannot be read
  5  evaluation or write failure
`

// exitError is an error with the exit code it maps to.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }
func (e *codedError) ExitCode() int { return e.code }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}

func usageErrorf(format string, args ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, args...))
}

// errSilent marks a failure that was already reported.
type silentError struct{ code int }

func (e silentError) Error() string { return "" }
func (e silentError) ExitCode() int { return e.code }

// cli holds the streams of one invocation. Nothing else in the program
// touches os.Stdin, os.Stdout or os.Stderr.
type cli struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	env    func(string) string

	limits        dump.Limits // set by the flags of archiveFlags
	restoreLimits func()
	interruptible atomic.Bool // see watchSignals
	dying         atomic.Bool // a signal is ending the process
	// onFlags, when set, sees every flag set a command makes (completion
	// and man pages read the commands' flags through it).
	onFlags func(*flag.FlagSet)
	// step, when set, is called before each step of an in-place
	// transform (tests kill the process there).
	step func(string)
}

// command is one subcommand of critq.
type command struct {
	name    string
	summary string
	run     func(c *cli, args []string) error
}

// commands is filled by the files of each command in their init functions.
var commands = map[string]*command{}

func register(cmd *command) {
	if _, dup := commands[cmd.name]; dup {
		panic("duplicate command " + cmd.name)
	}
	commands[cmd.name] = cmd
}

// Run runs critq with the arguments (without the program name) and the
// streams given, and returns the exit status. It never calls os.Exit.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(args, stdin, stdout, stderr)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, env: os.Getenv}
	return c.main(args)
}

func (c *cli) main(args []string) int {
	defer c.watchSignals()()
	defer func() {
		if c.restoreLimits != nil {
			c.restoreLimits()
		}
	}()
	err := panics.Call(func() error { return c.dispatch(args) })
	c.blockIfDying()
	if err == nil {
		return exitOK
	}
	code := exitCode(err, exitError)
	if errors.Is(err, errHelp) {
		return exitOK
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(c.stderr, "critq: %s\n", strings.TrimRight(msg, "\n"))
	}
	var pe *panics.Error
	if errors.As(err, &pe) && c.env("CRITQ_DEBUG") == "1" {
		fmt.Fprintf(c.stderr, "%s", pe.Stack)
	}
	return code
}

func (c *cli) dispatch(args []string) error {
	if len(args) == 0 {
		c.usage(c.stderr)
		return withCode(exitUsage, errors.New("no command or expression given"))
	}
	switch args[0] {
	case "-h", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			return c.help(args[1:])
		}
		c.usage(c.stdout)
		return nil
	case "--version", "-version":
		return runVersion(c, args[1:])
	case completeCommand:
		return c.complete(args[1:])
	}
	if cmd, ok := commands[args[0]]; ok {
		return cmd.run(c, args[1:])
	}
	if near := nearCommand(args[0]); near != "" {
		return usageErrorf("unknown command %q: did you mean %q? (an expression that is a bare name runs with critq query %s DUMP)", args[0], near, args[0])
	}
	if q, ok := commands["query"]; ok {
		return q.run(c, args)
	}
	return usageErrorf("unknown command %q (see critq help)", args[0])
}

// nearCommand returns the command a mistyped first argument most likely
// meant ("infoo" is info), or "" when the argument is no plain word, is a
// name an expression can use, or is near no command.
func nearCommand(word string) string {
	for _, r := range word {
		if !(r >= 'a' && r <= 'z' || r == '-') {
			return ""
		}
	}
	for _, v := range query.Vars() {
		if v.Name == word {
			return ""
		}
	}
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	return query.Suggest(word, names)
}

func (c *cli) help(args []string) error {
	addViewTopics()
	if topic, ok := helpTopics[args[0]]; ok {
		fmt.Fprint(c.stdout, topic())
		return nil
	}
	if cmd, ok := commands[args[0]]; ok {
		return cmd.run(c, []string{"-h"})
	}
	return unknownHelp(args[0])
}

// helpTopics are "critq help TOPIC" pages other than commands.
var helpTopics = map[string]func() string{}

func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, `critq reads, queries and rewrites CRIU checkpoint images.

usage: critq [flags] EXPR DUMP...     evaluate a CEL expression over dumps
       critq COMMAND [flags] [args]

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, "\nRun 'critq COMMAND -h' for a command's flags, 'critq help vars|functions|constants'\nfor what an expression can use, 'critq help archives' for checkpoint archives, 'critq help formats'\nfor the --format names.\n\n", exitCodesHelp)
}
