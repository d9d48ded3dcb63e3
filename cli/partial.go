package cli

import (
	"fmt"
	"strings"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/model"
	"github.com/critq/critq/query"
)

// warnPartial writes one warning line on stderr for each image a query's
// result needed and did not have (missing, or damaged under a memory read),
// and returns the error that makes the command exit 4 unless partial
// results were accepted (--partial).
func (c *cli) warnPartial(d *query.Dump, accept bool) error {
	return c.partialResult(d.Images(), d.Warnings(), accept)
}

// warnMissing is warnPartial for a view of the dump's model: one line per
// missing image, exit 4 (the view was printed without it).
func (c *cli) warnMissing(md *model.Model) error {
	var ws []string
	for _, m := range md.Missing() {
		ws = append(ws, m.Err().Error())
	}
	return c.partialResult(md.Dump(), ws, false)
}

// partialResult writes the warnings of d's result, after a line for each
// image d does not read (a symbolic link) that no warning names.
func (c *cli) partialResult(d *dump.Dump, warnings []string, accept bool) error {
	for _, w := range append(notRead(d, warnings), warnings...) {
		fmt.Fprintf(c.stderr, "critq: warning: %s: %s\n", d.Name, w)
	}
	if len(warnings) == 0 || accept {
		return nil
	}
	what := "an image"
	if len(warnings) > 1 {
		what = fmt.Sprintf("%d images", len(warnings))
	}
	return withCode(exitBadImage, fmt.Errorf("%s: the result is partial: %s missing or damaged (--partial accepts it)", d.Name, what))
}

// notRead returns the files named like images that d does not read
// (dump.Dump.NotRead), "core-1.img: a symbolic link, not read", but those
// that a warning names already (a value needed them).
func notRead(d *dump.Dump, warnings []string) []string {
	var out []string
	for _, n := range d.NotRead() {
		named := false
		for _, w := range warnings {
			named = named || strings.Contains(w, n)
		}
		if !named {
			out = append(out, n)
		}
	}
	return out
}
