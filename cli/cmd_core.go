package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/critq/critq/elfcore"
	"github.com/critq/critq/explore"
	"github.com/critq/critq/internal/fileout"
	"github.com/critq/critq/mem"
)

func init() {
	register(&command{name: "core", summary: "write ELF core files of the tasks, for gdb", run: runCore})
}

const coreUsage = `usage: critq core [flags] -o DIR DUMP [PID...]
       critq core [flags] -o - DUMP PID       the core on stdout
       critq core --check [flags] DUMP [PID...]

Writes one ELF core file, DIR/core.PID, per task (every task without PID),
as the kernel writes a core: NT_PRPSINFO, for every thread NT_PRSTATUS,
NT_FPREGSET, NT_SIGINFO (and NT_X86_XSTATE on x86_64, NT_ARM_TLS on
aarch64), NT_AUXV and NT_FILE, and one PT_LOAD per VMA with the bytes of
the dump's pages (anonymous pages the dump does not hold are zero). Open
one with gdb EXE -c DIR/core.PID.

The pages of file mappings that the dump does not hold (unmodified code
and data of executables and libraries) are on the dumping host: --root
DIR reads them from DIR/PATH (--root / from this host) when the file there
has the size and build-id the images record. Without --root they are left
out of the core and a warning says how many bytes of which files. gdb
needs the first page of the executable (its ELF header) to relocate a PIE
program and find its libraries: for backtraces with symbols give --root
a folder that holds the dumped executable and libraries at their paths.
Zombies get a core without memory.

DIR must not exist or be empty; each core is written to a temporary file,
synced and renamed, so DIR never holds a partial core. --check writes
nothing and says, per task, whether its core can be written and what it
would leave out.
` + pidHelp + dumpArgHelp

func runCore(c *cli, args []string) error {
	fset := c.newFlags("core", coreUsage)
	out := fset.String("o", "", "output directory, or - for stdout (one PID)")
	root := fset.String("root", "", "directory that holds the dumping host's files (/ for this host)")
	check := fset.Bool("check", false, "write nothing: say which cores can be written and what they would leave out")
	pageSize := fset.Int("page-size", 0, "page size of the dump (default: from the dump)")
	pos, err := parse(fset, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || (*out == "" && !*check) || (*out != "" && *check) {
		return usageErrorf("core: %s", firstLine(coreUsage))
	}
	if *out == "-" && len(pos) != 2 {
		return usageErrorf("core: -o - writes one core: give one PID")
	}
	if *root != "" {
		if fi, err := os.Stat(*root); err != nil || !fi.IsDir() {
			return usageErrorf("core: --root %s: not a directory", *root)
		}
	}
	d, err := openDump(pos[0], true)
	if err != nil {
		return err
	}
	defer d.Close()
	m := mem.Open(d, mem.PageSize(*pageSize))
	defer m.Close()
	w := elfcore.New(d, m, elfcore.Options{Root: *root})
	defer w.Close()
	e := explore.New(d, m)
	var pids []uint32
	if len(pos) == 1 {
		tasks, err := e.Tasks()
		if err != nil {
			return withExitCode(err, exitBadImage)
		}
		for _, t := range tasks {
			pids = append(pids, t.PID)
		}
	}
	for _, s := range pos[1:] {
		pid, err := parsePID(s)
		if err != nil {
			return err
		}
		if err := checkPID(e, pid); err != nil {
			return err
		}
		pids = append(pids, pid)
	}
	if *check {
		return coreCheck(c, w, pids, *root != "")
	}
	if *out == "-" {
		p, err := w.Plan(pids[0])
		if err != nil {
			return withExitCode(err, exitBadImage)
		}
		if err := w.WritePlan(c.stdout, p); err != nil {
			return coreWriteError(p, "stdout", err)
		}
		c.warnCoreMissing(p, *root != "")
		return nil
	}
	if ents, err := os.ReadDir(*out); err == nil && len(ents) > 0 {
		return usageErrorf("core: %s: output directory is not empty", *out)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return withCode(exitError, err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return withCode(exitError, err)
	}
	for _, pid := range pids {
		p, err := w.Plan(pid)
		if err != nil {
			return withExitCode(err, exitBadImage)
		}
		if err := writeCoreFile(w, p, filepath.Join(*out, fmt.Sprintf("core.%d", pid))); err != nil {
			return err
		}
		c.warnCoreMissing(p, *root != "")
	}
	return nil
}

// writeCoreFile writes the core of p to name through package fileout (a
// temporary file synced and renamed). Mode 0600, as the kernel writes
// cores: they hold the process's memory.
func writeCoreFile(w *elfcore.Writer, p *elfcore.Plan, name string) error {
	f, err := fileout.Create(name, 0o600)
	if err != nil {
		return withCode(exitError, err)
	}
	// The *os.File itself, so that WritePlan leaves holes where memory is zero.
	if err := w.WritePlan(f.File, p); err != nil {
		f.Abort()
		return coreWriteError(p, name, err)
	}
	if err := f.Commit(); err != nil {
		return withCode(exitError, err)
	}
	return nil
}

// coreWriteError maps an error of WritePlan to an exit code: a write
// failure is 5, a dump that cannot be read 4.
func coreWriteError(p *elfcore.Plan, name string, err error) error {
	var we *elfcore.WriteError
	if errors.As(err, &we) {
		return withCode(exitError, fmt.Errorf("%s: %w", name, we.Err))
	}
	return withExitCode(fmt.Errorf("core of pid %d: %w", p.PID, err), exitBadImage)
}

// warnCoreMissing says on stderr what a core left out of file mappings.
func (c *cli) warnCoreMissing(p *elfcore.Plan, root bool) {
	if p.MissingBytes == 0 {
		return
	}
	var files []string
	for i, m := range p.Missing {
		if i == 4 {
			files = append(files, fmt.Sprintf("%d more (critq core --check)", len(p.Missing)-i))
			break
		}
		files = append(files, fmt.Sprintf("%s %d (%s)", m.File, m.Bytes, m.Why))
	}
	hint := ""
	if !root {
		hint = "; --root DIR supplies file pages"
	}
	fmt.Fprintf(c.stderr, "critq: warning: core.%d: %d bytes left out%s: %s\n", p.PID, p.MissingBytes, hint, strings.Join(files, ", "))
}

func coreCheck(c *cli, w *elfcore.Writer, pids []uint32, root bool) error {
	tw := tabwriter.NewWriter(c.stdout, 4, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tCOMM\tTHREADS\tCORE\tSIZE\tFROM DUMP\tFROM ROOT\tLEFT OUT")
	var failed error
	var details []string
	for _, pid := range pids {
		p, err := w.Plan(pid)
		if err != nil {
			fmt.Fprintf(tw, "%d\t\t\tno: %v\t\t\t\t\n", pid, err)
			if failed == nil {
				failed = err
			}
			continue
		}
		what := "yes"
		if p.Zombie {
			what = "yes (zombie: no memory)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%d\t%d\t%d\t%d\n", pid, p.Comm, len(p.Threads), what, p.Size, p.DumpBytes, p.RootBytes, p.MissingBytes)
		for _, m := range p.Missing {
			details = append(details, fmt.Sprintf("  %d: %s: %d bytes left out: %s", pid, m.File, m.Bytes, m.Why))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(details) > 0 {
		fmt.Fprintln(c.stdout, "left out:")
		fmt.Fprintln(c.stdout, strings.Join(details, "\n"))
		if !root {
			fmt.Fprintln(c.stdout, "(--root DIR supplies the pages of files that are under DIR)")
		}
	}
	if failed != nil {
		return withExitCode(fmt.Errorf("some cores cannot be written: %w", failed), exitBadImage)
	}
	return nil
}
