package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/critq/critq/export"
	"github.com/critq/critq/internal/panics"
)

const exportUsage = `usage: critq export [flags] DUMP... -o DIR

Write the views of dumps (folders or checkpoint archives) as tables that
SQL engines read: one file per view and dump, in Hive partitioning,
DIR/view=VIEW/dump=ID/part-0.parquet. A dump already exported with the same
content is skipped. The schema is in docs/export.md.
`

func init() {
	register(&command{name: "export", summary: "write the views of dumps as Parquet tables for SQL engines", run: runExport})
}

// namedError is the text of err about the dump p, named once: most errors
// of a dump already begin with its name.
func namedError(p string, err error) string {
	if msg := err.Error(); strings.HasPrefix(msg, p+":") {
		return msg
	}
	return p + ": " + err.Error()
}

func runExport(c *cli, args []string) error {
	fs := c.newFlags("export", exportUsage)
	out := fs.String("o", "", "the output `DIR` (created if need be)")
	format := fs.String("format", "parquet", "file `FORMAT`: parquet or ndjson")
	viewList := fs.String("views", "", "the `VIEWS` to write, comma-separated (default: "+strings.Join(export.Views, ",")+")")
	pageHashes := fs.Bool("page-hashes", false, "add the pagehashes view: the sha256 of every page held in the dump")
	id := fs.String("id", export.IDContent, "how a dump's id is made: content (container id and checkpoint time, else a content hash) or path")
	force := fs.Bool("force", false, "write dumps that are unchanged since the last export")
	partial := fs.Bool("partial", false, "export a dump whose views miss images (nulls in their place, a warning each) instead of failing it")
	jobs := fs.Int("j", 0, "export `N` dumps at once (0: the number of cores)")
	quiet := fs.Bool("q", false, "do not print a line per dump")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkFormat("export", *format); err != nil {
		return err
	}
	if *out == "" || len(pos) == 0 {
		return usageErrorf("export: %s", firstLine(exportUsage))
	}
	opts := export.Options{Format: *format, PageHashes: *pageHashes, ID: *id, Force: *force, Partial: *partial}
	if *viewList != "" {
		opts.Views = strings.Split(*viewList, ",")
	}
	if err := (&opts).Validate(); err != nil {
		return usageErrorf("export: %v", err)
	}
	n := *jobs
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	type result struct {
		res export.Result
		err error
	}
	results := make([]chan result, len(pos))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(n, len(pos)) {
		wg.Go(func() {
			for i := range work {
				var r export.Result
				err := panics.Call(func() (err error) {
					r, err = export.Export(ctx, pos[i], *out, opts)
					return err
				})
				results[i] <- result{r, err}
			}
		})
	}
	go func() {
		defer close(work)
		for i := range pos {
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var first error
	written, skipped := 0, 0
	for i := range pos {
		var r result
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			wg.Wait()
			return withCode(exitError, fmt.Errorf("export: %w", context.Cause(ctx)))
		}
		if r.err != nil {
			fmt.Fprintf(c.stderr, "critq: %s\n", namedError(pos[i], r.err))
			if first == nil {
				first = withExitCode(r.err, exitError)
			}
			continue
		}
		for _, w := range r.res.Warnings {
			fmt.Fprintf(c.stderr, "critq: warning: %s: %s\n", pos[i], w)
		}
		if r.res.Skipped {
			skipped++
		} else {
			written++
		}
		if !*quiet {
			state := "written"
			if r.res.Skipped {
				state = "unchanged"
			}
			fmt.Fprintf(c.stdout, "%s\t%s\t%s\n", r.res.ID, state, pos[i])
		}
	}
	wg.Wait()
	if first != nil {
		fmt.Fprintf(c.stderr, "critq: export: %d written, %d unchanged, %d failed\n", written, skipped, len(pos)-written-skipped)
		return silentError{code: exitCode(first, exitError)}
	}
	return nil
}
