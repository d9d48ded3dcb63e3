package cli

import (
	"os"
	"os/signal"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/fileout"
)

// watchSignals cleans up on the signals that end a run, until the
// returned function is called: a compressed archive's temporary folder
// (gigabytes of spooled pages) and the temporary file of an output are
// removed before critq dies of SIGTERM or SIGHUP, or of SIGINT in a
// command that does not handle it. A command that handles SIGINT itself
// (query, batch, transform, repl: c.handlesInterrupt) goes on; SIGINT
// stops the reading of archives under way, so it fails with exit 5.
func (c *cli) watchSignals() (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, append([]os.Signal{os.Interrupt}, termSignals...)...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case sig := <-ch:
				if sig == os.Interrupt && c.interruptible.Load() {
					dump.AbortReads()
					continue
				}
				c.dying.Store(true)
				dump.CloseArchives()
				fileout.RemoveTemps()
				die(sig)
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// blockIfDying waits for the end of a process that dies of a signal:
// the command, whose archive was closed under it, neither reports that
// nor exits with a code of its own.
func (c *cli) blockIfDying() {
	if c.dying.Load() {
		select {}
	}
}

// handlesInterrupt says that the command handles SIGINT itself.
func (c *cli) handlesInterrupt() { c.interruptible.Store(true) }
