package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/critq/critq/container"
)

func init() {
	register(&command{name: "rootfs", summary: "files a container changed (rootfs-diff.tar): list them or print one", run: (*cli).runRootfs})
	register(&command{name: "list", summary: "container checkpoints and dumps found under folders, one row each", run: (*cli).runList})
}

const rootfsUsage = `usage: critq rootfs [--format text|json] CHECKPOINT [PATH]

Without PATH, lists the members of the checkpoint's rootfs-diff.tar (the
files the container created or changed) as tar -tv does: mode, owner,
size, modification time, path, and the target of links. With PATH, prints
the bytes of that regular file exactly, as tar -xO does. Nothing is
unpacked to disk: the tar is read in place inside the archive. Members whose
names are absolute or contain ".." are refused (exit 4). A PATH the tar does
not hold as a regular file is exit 2.

CHECKPOINT is a container checkpoint archive (tar, tar.gz, tar.zst) or an
unpacked one (a folder with checkpoint/ and rootfs-diff.tar).
`

func (c *cli) runRootfs(args []string) error {
	fs := c.newFlags("rootfs", rootfsUsage)
	format := formatFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usageErrorf("rootfs: %s", firstLine(rootfsUsage))
	}
	if err := checkFormat("rootfs", *format); err != nil {
		return err
	}
	if len(pos) == 2 {
		w := bufio.NewWriterSize(c.stdout, 1<<16)
		_, err := container.Cat(pos[0], pos[1], w)
		if ferr := w.Flush(); err == nil && ferr != nil {
			return withCode(exitError, ferr)
		}
		if errors.Is(err, container.ErrNoMember) || errors.Is(err, container.ErrNotFile) {
			return withCode(exitUsage, err)
		}
		return withCode(exitBadImage, err)
	}
	ms, err := container.Rootfs(pos[0])
	if err != nil {
		return withCode(exitBadImage, err)
	}
	if *format == "json" {
		return writeJSON(c, ms)
	}
	w := bufio.NewWriter(c.stdout)
	for _, m := range ms {
		fmt.Fprintln(w, m.Line())
	}
	return withCode(exitError, w.Flush())
}

// writeJSON writes v as indented JSON, as the views do.
func writeJSON(c *cli, v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return withCode(exitError, enc.Encode(v))
}

const listUsage = `usage: critq list [--format table|json|ndjson] [DIR...]

Finds the container checkpoint archives (tar, tar.gz, tar.zst; symlinks to
them included), unpacked checkpoint folders and CRIU dump folders under each
DIR (default ` + container.DefaultDir + `), recursively, and prints one
row each, oldest first: checkpoint time, engine, namespace, pod, container,
processes, memory (pages images), size and path. Only the small members of
an archive are read (tar headers, config.dump, spec.dump, pstree.img ...),
never its pages. A dump folder's time is that of its inventory.img.

A path that cannot be read is a warning on stderr and makes the exit
status 4; the other rows are printed.
`

func (c *cli) runList(args []string) error {
	fs := c.newFlags("list", listUsage)
	format := fs.String("format", "table", "output format: table, json or ndjson")
	dirs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkFormat("list", *format); err != nil {
		return err
	}
	if len(dirs) == 0 {
		dirs = []string{container.DefaultDir}
	}
	rows, errs := container.Find(dirs)
	for _, e := range errs {
		fmt.Fprintf(c.stderr, "critq: warning: %v\n", e)
	}
	var werr error
	switch *format {
	case "json":
		if rows == nil {
			rows = []container.Row{}
		}
		werr = writeJSON(c, rows)
	case "ndjson":
		w := bufio.NewWriter(c.stdout)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return withCode(exitError, err)
			}
		}
		werr = withCode(exitError, w.Flush())
	default:
		werr = writeListTable(c, rows)
	}
	if werr != nil {
		return werr
	}
	if len(errs) > 0 {
		return withCode(exitBadImage, fmt.Errorf("list: %d paths could not be read", len(errs)))
	}
	return nil
}

func writeListTable(c *cli, rows []container.Row) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECKPOINTED\tENGINE\tNAMESPACE\tPOD\tCONTAINER\tPROCS\tMEMORY\tSIZE\tPATH")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, r := range rows {
		t := "-"
		if r.Checkpointed != nil {
			t = r.Checkpointed.UTC().Format(time.RFC3339)
		}
		procs := "-"
		if r.Processes >= 0 {
			procs = fmt.Sprint(r.Processes)
		}
		engine := r.Engine
		if r.Kind == container.KindDump {
			engine = "(dump)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t, dash(engine), dash(r.Namespace), dash(r.Pod),
			dash(r.Container), procs, container.FormatSize(r.Memory), container.FormatSize(r.Size), r.Path)
	}
	return withCode(exitError, tw.Flush())
}
