package cli

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"

	"github.com/critq/critq/transform"
)

// lockFlags adds the flags of the dump lock that --in-place and
// --recover take.
func (o *transformFlags) lockFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.lockWait, "lock-wait", transform.DefaultLockWait,
		"with --in-place or --recover: wait up to `duration` for another transform of the dump to finish")
	fs.BoolVar(&o.noWait, "no-wait", false, "with --in-place or --recover: fail at once when another transform holds the dump")
}

// lockDump takes the exclusive lock of the dump for an in-place run.
func (c *cli) lockDump(dir string, o *transformFlags) (*transform.Lock, error) {
	wait := o.lockWait
	if o.noWait {
		wait = 0
	}
	l, err := transform.LockDump(dir, wait, func() {
		fmt.Fprintf(c.stderr, "critq: %s: waiting for another transform of the dump to finish (up to %v, --lock-wait)\n", dir, wait)
	})
	if errors.Is(err, transform.ErrLocked) {
		hint := "--lock-wait DURATION waits longer"
		if wait == 0 {
			hint = "without --no-wait critq waits for it"
		}
		return nil, withCode(exitError, fmt.Errorf("%w; nothing written (%s)", err, hint))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, withCode(exitBadImage, err) // no dump there: as dump.Open says
	}
	if err != nil {
		return nil, withCode(exitError, err)
	}
	return l, nil
}
