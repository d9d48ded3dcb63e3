//go:build unix

package cli

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

var termSignals = []os.Signal{syscall.SIGTERM, syscall.SIGHUP}

// die ends the process by sig, as it would have without a handler, so
// that its parent sees the signal.
func die(sig os.Signal) {
	signal.Reset(sig)
	s := sig.(syscall.Signal)
	syscall.Kill(os.Getpid(), s)
	time.Sleep(time.Second)
	os.Exit(128 + int(s))
}
