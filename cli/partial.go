package cli

import (
	"fmt"

	"github.com/critq/critq/model"
	"github.com/critq/critq/query"
)

// warnPartial writes one warning line on stderr for each image a query's
// result needed and did not have (missing, or damaged under a memory read),
// and returns the error that makes the command exit 4 unless partial
// results were accepted (--partial).
func (c *cli) warnPartial(d *query.Dump, accept bool) error {
	return c.partialResult(d.Name(), d.Warnings(), accept)
}

// warnMissing is warnPartial for a view of the dump's model: one line per
// missing image, exit 4 (the view was printed without it).
func (c *cli) warnMissing(md *model.Model) error {
	var ws []string
	for _, m := range md.Missing() {
		ws = append(ws, (&model.MissingError{Image: m.Image, For: m.For}).Error())
	}
	return c.partialResult(md.Dump().Name, ws, false)
}

func (c *cli) partialResult(dump string, warnings []string, accept bool) error {
	for _, w := range warnings {
		fmt.Fprintf(c.stderr, "critq: warning: %s: %s\n", dump, w)
	}
	if len(warnings) == 0 || accept {
		return nil
	}
	what := "an image"
	if len(warnings) > 1 {
		what = fmt.Sprintf("%d images", len(warnings))
	}
	return withCode(exitBadImage, fmt.Errorf("%s: the result is partial: %s missing or damaged (--partial accepts it)", dump, what))
}
