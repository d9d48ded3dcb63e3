// Package panics turns a panic into an error at the top of a goroutine.
//
// critq reads untrusted images in many goroutines at once (the images of a
// query, the dumps of a batch, the archives of a listing). A panic in one of
// them would end the whole process, and with it every other dump of the run.
// Where such a goroutine starts, it defers [Recover] (or runs its work
// through [Call]); the panic becomes an *[Error], which the goroutine's
// caller returns like any other error of that dump. The command prints it
// as an internal error and exits 5 ([Error.ExitCode]); the stack is kept for
// CRITQ_DEBUG=1. Catching is no fix: every panic found is a bug to fix.
package panics

import (
	"fmt"
	"runtime/debug"
)

// Error is a recovered panic: its value and the stack of the goroutine that
// panicked.
type Error struct {
	Value any
	Stack []byte
}

func (e *Error) Error() string {
	return fmt.Sprintf("internal error (a panic): %v; please report it with the command that caused it (CRITQ_DEBUG=1 prints the stack)", e.Value)
}

// ExitCode is 5, the exit status of a failure of critq itself.
func (e *Error) ExitCode() int { return 5 }

// Recover, deferred at the top of a function, turns a panic of that
// function into an *Error stored in *err (when *err is still nil).
func Recover(err *error) {
	if v := recover(); v != nil && *err == nil {
		*err = &Error{Value: v, Stack: debug.Stack()}
	}
}

// Call calls f and returns its error, or the *Error of its panic.
func Call(f func() error) (err error) {
	defer Recover(&err)
	return f()
}
