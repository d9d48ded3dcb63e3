package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/critq/critq/container"
	"github.com/critq/critq/explore"
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

// writeView writes a view in format; inspect adds the container section
// of the checkpoint at p.
func (c *cli) writeView(name, p string, v explore.View, format string) error {
	if name != "inspect" {
		return withCode(exitError, explore.Write(c.stdout, v, format))
	}
	cp, err := container.Open(p, container.Options{Rootfs: true})
	if err != nil {
		st, serr := os.Stat(p)
		if serr != nil || !st.IsDir() || !errors.Is(err, container.ErrNotCheckpoint) {
			return withCode(exitBadImage, err)
		}
		cp = &container.Checkpoint{Path: p, Kind: container.KindDump}
	}
	if format == "json" {
		return c.writeInspectJSON(v, cp)
	}
	if err := explore.Write(c.stdout, v, format); err != nil {
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
func (c *cli) writeInspectJSON(v explore.View, cp *container.Checkpoint) error {
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
