//go:build !unix

package cli

import (
	"os"
	"syscall"
)

var termSignals = []os.Signal{syscall.SIGTERM}

// die ends the process after a signal.
func die(os.Signal) { os.Exit(exitError) }
