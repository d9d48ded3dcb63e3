package cli

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/critq/critq/container"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/explore"
	"github.com/critq/critq/mem"
)

func init() {
	register(&command{name: "inspect", summary: "summary of a dump: processes, files, sockets, mounts, namespaces, statistics, container", run: (*cli).runInspect})
}

const inspectUsage = `usage: critq inspect [-p PID] [--ps-tree-env] [--format text|tree|json] DUMP

Prints a summary tree like checkpointctl inspect: the process tree with
command lines, each task's descriptors with its working and root
directories (cwd, root), sockets, mounts, the namespaces of the root task
and the statistics of stats-dump.

  -p PID, --pid PID  only the subtree of task PID: its processes, their
                     files and the sockets they hold, and the namespaces
                     of PID (mounts and statistics are the dump's)
  --ps-tree-env      the environment of each process, read from its
                     memory in order (JSON: "environ", a list of
                     "NAME=value" strings; "environ_error" when it cannot
                     be read)
  --ps-tree-cmd      accepted as checkpointctl's flag: critq always shows
                     the command lines
  --format           text (the default; tree is the same, checkpointctl's
                     name for it) or json, one object with stable field
                     names
` + containerSectionHelp + `A compressed archive is read in one pass: the images, the container's files
and the listing of rootfs-diff.tar.
` + pidHelp + dumpArgHelp

// containerSectionHelp is the part of inspect's help about containers.
const containerSectionHelp = `
For a container checkpoint a Container section follows: the engine
(Podman, CRI-O, containerd, detected from the files), container name and
id, image name and id, runtime, created and checkpointed times, pod name,
id, namespace and uid, the network interfaces and addresses
(network.status), the OCI mounts of spec.dump with their sources, the
annotations, the sizes (checkpoint, memory pages, rootfs-diff.tar), the
files the container changed (rootfs-diff.tar: critq rootfs lists them all)
and removed (deleted.files). A plain dump folder prints the one line
"no container: a plain dump folder". With --format json the section is
the "container" member of the object (null for a dump folder).

`

func (c *cli) runInspect(args []string) error {
	fs := c.newFlags("inspect", inspectUsage)
	c.archiveFlags(fs)
	format := fs.String("format", "text", "output format: text (or tree) or json")
	var pid uint64
	fs.Uint64Var(&pid, "p", 0, "show only the subtree of task `PID`")
	fs.Uint64Var(&pid, "pid", 0, "same as -p")
	env := fs.Bool("ps-tree-env", false, "show the environment of each process, read from its memory")
	fs.Bool("ps-tree-cmd", false, "accepted as checkpointctl's flag: the command lines are always shown")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("inspect: %s", firstLine(inspectUsage))
	}
	if err := checkFormat("inspect", *format); err != nil {
		return err
	}
	if pid > math.MaxUint32 {
		return usageErrorf("bad pid %d", pid)
	}
	p := pos[0]
	// An archive is read once: package dump keeps the images, the
	// container's scan sees the members it skips (rootfs-diff.tar).
	opts := dump.ArchiveOptions{SpoolPages: true}
	var finish func(*dump.Archive) (*container.Checkpoint, error)
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		opts.Visit, finish = container.Scan(p, container.Options{Rootfs: true})
	}
	d, err := dump.OpenAny(p, opts)
	if err != nil {
		return withCode(exitBadImage, err)
	}
	defer d.Close()
	m := mem.Open(d)
	defer m.Close()
	e := explore.New(d, m)
	if pid != 0 {
		if err := checkPID(e, uint32(pid)); err != nil {
			return err
		}
	}
	v, err := e.InspectWith(explore.InspectOptions{PID: uint32(pid), Env: *env})
	if err != nil {
		return withExitCode(err, exitBadImage)
	}
	c.warnCmdlines(v.Processes)
	cp, err := checkpointOf(p, d, finish)
	if err != nil {
		return withCode(exitBadImage, err)
	}
	if *format == "json" {
		err = c.writeInspectJSON(v, cp)
	} else {
		err = c.writeInspectText(v, cp)
	}
	if err != nil {
		return err
	}
	return c.warnMissing(e.Model())
}

// checkpointOf returns the container part of the dump d opened from p:
// from the scan of its archive when finish is set, else from the folder.
func checkpointOf(p string, d *dump.Dump, finish func(*dump.Archive) (*container.Checkpoint, error)) (*container.Checkpoint, error) {
	if a := d.Archive(); a != nil && finish != nil {
		return finish(a)
	}
	cp, err := container.Open(p, container.Options{Rootfs: true})
	if err != nil {
		st, serr := os.Stat(p)
		if serr != nil || !st.IsDir() || !errors.Is(err, container.ErrNotCheckpoint) {
			return nil, err
		}
		cp = &container.Checkpoint{Path: p, Kind: container.KindDump}
	}
	return cp, nil
}

func (c *cli) writeInspectText(v *explore.Inspect, cp *container.Checkpoint) error {
	if err := v.Text(c.stdout); err != nil {
		return withCode(exitError, err)
	}
	if cp.IsContainer() {
		cp = shortRootfs(cp)
	}
	return withCode(exitError, cp.Text(c.stdout))
}

// inspectRootfsLines is how many members of rootfs-diff.tar the text of
// inspect shows; critq rootfs lists them all.
const inspectRootfsLines = 20

func shortRootfs(cp *container.Checkpoint) *container.Checkpoint {
	if len(cp.Rootfs) <= inspectRootfsLines {
		return cp
	}
	short := *cp
	short.Rootfs = cp.Rootfs[:inspectRootfsLines]
	short.Warnings = append([]string{fmt.Sprintf("rootfs: %d more members not shown (critq rootfs %s)", len(cp.Rootfs)-inspectRootfsLines, cp.Path)}, cp.Warnings...)
	return &short
}

// writeInspectJSON writes the inspect view's JSON object with a
// "container" member added last: the section, or null for a dump folder.
func (c *cli) writeInspectJSON(v *explore.Inspect, cp *container.Checkpoint) error {
	var view, sect bytes.Buffer
	if err := explore.Write(&view, v, "json"); err != nil {
		return withCode(exitError, err)
	}
	if err := cp.JSON(&sect); err != nil {
		return withCode(exitError, err)
	}
	obj := bytes.TrimRight(view.Bytes(), "\n")
	if !bytes.HasSuffix(obj, []byte("}")) {
		return withCode(exitError, errors.New("inspect: the view is not a JSON object"))
	}
	obj = bytes.TrimRight(obj[:len(obj)-1], " \n")
	sep := ","
	if bytes.HasSuffix(obj, []byte("{")) {
		sep = ""
	}
	section := strings.ReplaceAll(strings.TrimRight(sect.String(), "\n"), "\n", "\n  ")
	_, err := fmt.Fprintf(c.stdout, "%s%s\n  \"container\": %s\n}\n", obj, sep, section)
	return withCode(exitError, err)
}
