package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/critq/critq/check"
	"github.com/critq/critq/dump"
)

const checkUsage = `usage: critq check [flags] DUMP...

Predict whether each dump (a folder or checkpoint archive) will restore on
this host: files and directories it opens, ports and unix socket paths it
binds, pids it needs, external mounts, cgroup controllers, namespaces, CPU
features (cpuinfo.img, checked by CRIU only with --cpu-cap), terminals, and
the CRIU options the restore needs. Exit status 0 when nothing would stop
the restore, 1 when something would.

The same problems are the CEL view problems of critq query, batch and repl,
which take --root and --criu-options too:
  critq --root /mnt/new 'problems.filter(p, p.blocking)' DUMP
`

func init() {
	register(&command{name: "check", summary: "predict whether a dump will restore on this host, and if not, why", run: runCheck})
}

func runCheck(c *cli, args []string) error {
	fs := c.newFlags("check", checkUsage)
	cfg := checkFlags(fs)
	format := fs.String("format", "text", "output `FORMAT`: text or json")
	fs.BoolVar(&cfg.skipRWX, "skip-file-rwx-check", false, "as CRIU's option: compare only the type of files, not their permissions")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErrorf("check: %s", firstLine(checkUsage))
	}
	if err := checkFormat("check", *format); err != nil {
		return err
	}
	opts, host := cfg.options(), cfg.host()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	blocking := false
	var reports []*check.Report
	for _, p := range pos {
		d, err := dump.OpenAny(p, dump.ArchiveOptions{})
		if err != nil {
			return withCode(exitBadImage, err)
		}
		rep, err := check.Run(ctx, d, host, opts)
		d.Close()
		if err != nil {
			return withCode(exitCode(err, exitError), errors.New(namedError(p, err)))
		}
		rep.Dump = p
		blocking = blocking || rep.Blocking()
		reports = append(reports, rep)
	}
	if *format == "json" {
		enc := json.NewEncoder(c.stdout)
		enc.SetEscapeHTML(false)
		for _, r := range reports {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	} else {
		for _, r := range reports {
			writeCheckText(c.stdout, r, len(reports) > 1)
		}
	}
	if blocking {
		return silentError{code: exitFalse}
	}
	return nil
}

// writeCheckText prints one line per problem, grouped by task, then the
// suggested restore command.
func writeCheckText(w io.Writer, r *check.Report, named bool) {
	if named {
		fmt.Fprintf(w, "%s:\n", r.Dump)
	}
	var last uint32 = ^uint32(0)
	for _, p := range r.Problems {
		if p.PID != last {
			if p.PID == 0 {
				fmt.Fprintln(w, "dump:")
			} else {
				fmt.Fprintf(w, "task %d:\n", p.PID)
			}
			last = p.PID
		}
		mark := "warning"
		if p.Blocking {
			mark = "FAIL"
		}
		where := p.Image
		if p.Entry != "" {
			where += " " + p.Entry
		}
		if where != "" {
			where = " [" + where + "]"
		}
		fmt.Fprintf(w, "  %s %s: %s%s; CRIU: %s\n", mark, p.Check, p.Message, where, p.CRIU)
	}
	if len(r.Problems) == 0 {
		fmt.Fprintln(w, "no problem found: nothing in the images stops a restore on this host")
	}
	fmt.Fprintf(w, "restore with: criu restore -D %s", r.Dump)
	for _, o := range r.Options {
		fmt.Fprintf(w, " %s", o)
	}
	fmt.Fprintln(w)
}
