package cli

import (
	"github.com/critq/critq/explore"
	"github.com/critq/critq/mem"
)

func init() {
	register(&command{name: "x", summary: "explore a dump as crit x does: ps, fds, mems, rss", run: runX})
}

const xUsage = `usage: critq x [--format text|json] DUMP ps|fds|mems|rss

Prints what crit 4.2's "crit x DIR WHAT" prints, byte for byte, so that
scripts that parse it keep working:
  ps    the process tree: PID, PGID, SID, COMM
  fds   each task's descriptors, cwd and root
  mems  each task's executable and VMAs
  rss   each task's pagemap runs against its VMAs
--format json gives the same data as JSON.

Where crit is wrong critq differs: crit crashes on zombie and dead tasks
(which have no files and no memory) in fds, mems and rss; critq prints
their pid line alone and goes on. rss counts pages of the dump's page
size, not always 4096 bytes.
` + dumpArgHelp

func runX(c *cli, args []string) error {
	fs := c.newFlags("x", xUsage)
	c.archiveFlags(fs)
	format := formatFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageErrorf("x: %s", firstLine(xUsage))
	}
	views := map[string]func(e *explore.Explorer) (explore.View, error){
		"ps":   func(e *explore.Explorer) (explore.View, error) { return e.XPs() },
		"fds":  func(e *explore.Explorer) (explore.View, error) { return e.XFds() },
		"mems": func(e *explore.Explorer) (explore.View, error) { return e.XMems() },
		"rss":  func(e *explore.Explorer) (explore.View, error) { return e.XRss() },
	}
	get, ok := views[pos[1]]
	if !ok {
		return usageErrorf("x: unknown explorer %q (ps, fds, mems or rss)", pos[1])
	}
	if err := checkFormat("x", *format); err != nil {
		return err
	}
	d, err := openDump(pos[0], false)
	if err != nil {
		return err
	}
	defer d.Close()
	m := mem.Open(d)
	defer m.Close()
	e := explore.New(d, m)
	v, err := get(e)
	if err != nil {
		return withExitCode(err, exitBadImage)
	}
	if err := explore.Write(c.stdout, v, *format); err != nil {
		return withCode(exitError, err)
	}
	return c.warnMissing(e.Model())
}
