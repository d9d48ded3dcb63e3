package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/critq/critq/transform"
)

// previewWrite prints, for transform --dry-run with -o OUT or --in-place,
// every file that command would write, in the order it writes them, and
// writes nothing. It follows transform.WriteDir and ApplyInPlace: under -o
// the rewritten images, the parent link, and every other file of the dump
// copied (or hard-linked with --link); in place the rewritten images, the
// old ones kept as NAME.orig unless --no-backup.
func (c *cli) previewWrite(dir string, o *transformFlags, plan *transform.Plan) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return withCode(exitBadImage, err)
	}
	have := map[string]bool{}
	for _, e := range ents {
		have[e.Name()] = true
	}
	names := make([]string, 0, len(plan.Images))
	for n := range plan.Images {
		if !have[n] {
			return withCode(exitError, fmt.Errorf("%s: not in the dump", n))
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	size := func(name string) int64 {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return st.Size()
		}
		return -1
	}
	if o.inPlace {
		for _, n := range names {
			fmt.Fprintf(&b, "would rewrite %s: %d bytes (was %d)", filepath.Join(dir, n), len(plan.Images[n]), size(n))
			if !o.noBackup {
				fmt.Fprintf(&b, ", the old image kept as %s.orig", n)
			}
			b.WriteByte('\n')
		}
	} else {
		copies := 0
		for _, e := range ents {
			n, dst := e.Name(), filepath.Join(o.out, e.Name())
			switch {
			case plan.Images[n] != nil:
				fmt.Fprintf(&b, "would write %s: rewritten, %d bytes (was %d)\n", dst, len(plan.Images[n]), size(n))
			case n == "parent":
				fmt.Fprintf(&b, "would write %s: a link to the parent dump of %s\n", dst, dir)
			case e.IsDir():
			default:
				copies++
				how := "copied"
				if o.link {
					how = "hard-linked (copied where a link fails)"
				}
				fmt.Fprintf(&b, "would write %s: %s from %s, %d bytes\n", dst, how, filepath.Join(dir, n), size(n))
			}
		}
	}
	if _, err := fmt.Fprint(c.stdout, b.String()); err != nil {
		return withCode(exitError, err)
	}
	target := o.out
	if o.inPlace {
		target = dir
	}
	fmt.Fprintf(c.stderr, "critq: %s: dry run: %d image(s) would be rewritten, nothing written: %s\n", target, len(names), strings.Join(names, " "))
	return nil
}
