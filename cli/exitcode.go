package cli

import (
	"context"
	"errors"

	"github.com/critq/critq/batch"
	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/export"
	"github.com/critq/critq/mem"
	"github.com/critq/critq/query"
	"github.com/critq/critq/repl"
	"github.com/critq/critq/rules"
)

// exitCode is the one place that maps an error to the exit status it stands
// for; every command's error goes through it (run, and the commands that
// report an error per dump and go on). In order:
//
//   - nil is exitOK;
//   - an interrupted read (dump.ErrAborted) is exitError, not a bad image;
//   - a code given with withCode, or carried (silentError), is that code;
//   - what does not compile (*query.CompileError, *query.BindingError,
//     *rules.RuleError, *batch.ScriptError) is exitCompile; a REPL line
//     that does not parse (*repl.ParseError) is exitUsage;
//   - a failed or stopped evaluation (*query.EvalError, *rules.RuleEvalError,
//     a context's error) is exitError;
//   - a dump that cannot be read (*query.DumpError, *codec.Error,
//     *export.PartialError) is exitBadImage;
//   - memory that is not there to read (mem.ErrUnmapped, ErrNotDumped,
//     ErrNoMemory) is exitError: the dump is fine, the address is not;
//   - any other error is untyped: the caller says what its raw errors are
//     (the text views' are the codec's, so exitBadImage).
func exitCode(err error, untyped int) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, dump.ErrAborted) {
		return exitError
	}
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	var (
		ce  *query.CompileError
		be  *query.BindingError
		re  *rules.RuleError
		se  *batch.ScriptError
		pe  *repl.ParseError
		ee  *query.EvalError
		ree *rules.RuleEvalError
		de  *query.DumpError
		cde *codec.Error
		pae *export.PartialError
		rpe *repl.PartialError
	)
	switch {
	case errors.As(err, &rpe):
		return exitBadImage
	case errors.As(err, &ce), errors.As(err, &be), errors.As(err, &re), errors.As(err, &se):
		return exitCompile
	case errors.As(err, &pe):
		return exitUsage
	case errors.As(err, &ee), errors.As(err, &ree),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return exitError
	case errors.As(err, &de), errors.As(err, &pae), errors.As(err, &cde):
		return exitBadImage
	case errors.Is(err, mem.ErrUnmapped), errors.Is(err, mem.ErrNotDumped), errors.Is(err, mem.ErrNoMemory):
		return exitError
	}
	return untyped
}

// withExitCode gives err its exit code (exitCode), untyped for an error of no
// type exitCode knows.
func withExitCode(err error, untyped int) error {
	if err == nil {
		return nil
	}
	return withCode(exitCode(err, untyped), err)
}
