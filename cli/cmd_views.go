package cli

import (
	"errors"
	"flag"
	"fmt"
	"strconv"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/explore"
	"github.com/critq/critq/mem"
)

func init() {
	for _, v := range []struct {
		name, summary, usage string
		get                  func(e *explore.Explorer, pid uint32) (explore.View, error)
	}{
		{"ps", "process tree like ps -ejH, with command lines read from memory", psUsage,
			func(e *explore.Explorer, _ uint32) (explore.View, error) { return e.Ps() }},
		{"maps", "memory maps of a task as /proc/PID/maps shows them", mapsUsage,
			func(e *explore.Explorer, pid uint32) (explore.View, error) { return e.Maps(pid) }},
		{"fds", "file descriptors of a task like ls -l /proc/PID/fd", fdsUsage,
			func(e *explore.Explorer, pid uint32) (explore.View, error) { return e.Fds(pid) }},
		{"sockets", "sockets of a dump like ss -anp", socketsUsage,
			func(e *explore.Explorer, _ uint32) (explore.View, error) { return e.Sockets() }},
	} {
		register(&command{name: v.name, summary: v.summary, run: func(c *cli, args []string) error {
			return c.runView(v.name, v.usage, args, v.get)
		}})
	}
}

const dumpArgHelp = `DUMP is a dump directory or a container checkpoint archive (tar, tar.gz,
tar.zst, as Podman, CRI-O and Kubernetes write them).
`

const psUsage = `usage: critq ps [-L] [--format text|json] DUMP

Prints the process tree: pid, ppid, pgid, sid, state, threads, uid and
the command line read from the task's memory; children are indented under
their parent as ps -ejH does. The state is what ps shows, in words: ALIVE
(S or R), STOPPED (T) or ZOMBIE (Z, "[comm] <defunct>"; CRIU records every
zombie as a DEAD task). A command line that cannot be read from memory is
shown as [comm], with a warning on stderr; an image the view needs that
cannot be read is an error (exit 4).

With -L, prints one line per thread instead, as ps -eL does: pid, thread
id (LWP), the task's state, scheduling class (TS, FF, RR, B, IDL, DLN as
ps -c), real-time priority, nice value, the blocked and pending signal
masks in hex (SigBlk and SigPnd of /proc/TID/status) and the thread's
name.
` + dumpArgHelp

const mapsUsage = `usage: critq maps [--format text|json] DUMP [PID]

Prints the VMAs of task PID (of every task without PID) in the layout of
/proc/PID/maps, paths resolved: files (" (deleted)" when unlinked), [heap],
[stack] (the VMA that holds mm_start_stack), [vdso], [vvar] (CRIU keeps
[vvar] and [vvar_vclock] as one VMA), [vsyscall], /dev/zero (deleted),
/memfd:NAME (deleted), /[aio] (deleted). Device and inode numbers are not
in CRIU's images: critq prints 00:00 and 0 for every mapping.
` + pidHelp + dumpArgHelp

const fdsUsage = `usage: critq fds [--format text|json] DUMP [PID]

Prints the file descriptors of task PID (of every task without PID) as
"MODE FD -> TARGET", the mode and target that ls -l /proc/PID/fd shows
(pipe:[N], socket:[INO], anon_inode:[eventfd], paths ...). Zombies have none.
` + pidHelp + dumpArgHelp

const socketsUsage = `usage: critq sockets [--format text|json] DUMP

Prints every socket as ss -anp does: netid, state, receive and send
queues (TCP queues from tcp-stream images, unix queues from sk-queues.img,
a listener's backlog as its Send-Q), local and peer address:port, and the
tasks that hold it.
` + dumpArgHelp

// openDump opens a dump directory or checkpoint archive; spool asks a
// compressed archive to copy its pages out in the same pass.
func openDump(p string, spool bool) (*dump.Dump, error) {
	d, err := dump.OpenAny(p, dump.ArchiveOptions{SpoolPages: spool})
	if err != nil {
		return nil, withCode(exitBadImage, err)
	}
	return d, nil
}

// formatFlag adds --format to fs.
func formatFlag(fs *flag.FlagSet) *string {
	return fs.String("format", "text", "output format: text or json")
}

func parsePID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, usageErrorf("bad pid %q", s)
	}
	return uint32(n), nil
}

// pidHelp is the help of commands that take a PID.
const pidHelp = `A PID that is not in the dump is a usage error (exit 2) whose message
lists the pids the dump has.
`

// checkPID returns nil when the dump has task pid, a usage error (exit 2)
// naming the dump's pids when it has not, and an image error (exit 4)
// when its process tree cannot be read.
func checkPID(e *explore.Explorer, pid uint32) error {
	_, err := e.Task(pid)
	if errors.Is(err, explore.ErrNoTask) {
		return withCode(exitUsage, err)
	}
	return withExitCode(err, exitBadImage)
}

// warnCmdlines writes one warning line on stderr when the command line of
// a task of the tree could not be read from its memory (the view shows
// [comm] instead).
func (c *cli) warnCmdlines(roots []*explore.PsNode) {
	var first *explore.PsNode
	n := 0
	var walk func(ns []*explore.PsNode)
	walk = func(ns []*explore.PsNode) {
		for _, p := range ns {
			if p.CmdlineError != "" && !p.CmdlineMissing {
				if first == nil {
					first = p
				}
				n++
			}
			walk(p.Children)
		}
	}
	walk(roots)
	if first == nil {
		return
	}
	more := ""
	if n > 1 {
		more = fmt.Sprintf(" (and %d more tasks)", n-1)
	}
	fmt.Fprintf(c.stderr, "critq: warning: command line of pid %d not read, shown as [%s]%s: %s\n", first.PID, first.Comm, more, first.CmdlineError)
}

func (c *cli) runView(name, usage string, args []string, get func(*explore.Explorer, uint32) (explore.View, error)) error {
	fs := c.newFlags(name, usage)
	c.archiveFlags(fs)
	format := formatFlag(fs)
	var threads bool
	if name == "ps" {
		fs.BoolVar(&threads, "L", false, "one line per thread (ps -L)")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	takesPID := name == "maps" || name == "fds"
	if len(pos) < 1 || len(pos) > 1 && !takesPID || len(pos) > 2 {
		return usageErrorf("%s: %s", name, firstLine(usage))
	}
	if err := checkFormat(name, *format); err != nil {
		return err
	}
	var pid uint32
	if len(pos) == 2 {
		if pid, err = parsePID(pos[1]); err != nil {
			return err
		}
	}
	d, err := openDump(pos[0], name == "ps")
	if err != nil {
		return err
	}
	defer d.Close()
	m := mem.Open(d)
	defer m.Close()
	e := explore.New(d, m)
	if pid != 0 {
		if err := checkPID(e, pid); err != nil {
			return err
		}
	}
	if threads {
		get = func(e *explore.Explorer, _ uint32) (explore.View, error) { return e.Threads() }
	}
	v, err := get(e, pid)
	if err != nil {
		return withExitCode(err, exitBadImage)
	}
	if ps, ok := v.(*explore.Ps); ok {
		c.warnCmdlines(ps.Roots)
	}
	if err := explore.Write(c.stdout, v, *format); err != nil {
		return withCode(exitError, err)
	}
	return c.warnMissing(e.Model())
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
