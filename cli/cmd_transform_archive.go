package cli

import (
	"archive/tar"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/fileout"
	"github.com/critq/critq/transform"
)

// isArchiveFile reports whether the dump a user named is a checkpoint
// archive (a regular file that looks like one).
func isArchiveFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && dump.IsArchive(p)
}

// checkOutArchive checks, before anything is read, the -o of a transform
// of an archive: a new file, an empty one, or a device or FIFO; not the
// archive itself (that is --in-place) nor a folder.
func checkOutArchive(out, in string) error {
	if ro, err1 := fileout.Real(out); err1 == nil {
		if ri, err2 := fileout.Real(in); err2 == nil && ro == ri {
			return usageErrorf("transform: -o %s is the archive itself: --in-place replaces it (with a backup)", out)
		}
	}
	st, err := os.Stat(out)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return nil
	case err != nil:
		return usageErrorf("transform: -o %s: %v", out, err)
	case st.IsDir():
		return usageErrorf("transform: -o %s is a folder: the output of an archive is an archive file", out)
	case st.Mode().IsRegular() && st.Size() > 0:
		return usageErrorf("transform: -o %s: the file exists: give a new name", out)
	}
	return nil
}

// outCompression is the compression of the archive -o out writes: the one
// its extension names (.tar, .tar.gz, .tgz, .tar.zst), else the input's.
func outCompression(out string, a *dump.Archive) dump.Compression {
	if c, ok := dump.CompressionFor(out); ok {
		return c
	}
	return a.Compression()
}

// previewArchive prints, for transform --dry-run with -o OUT or
// --in-place on an archive, every member the new archive would hold, in
// order, rewritten or copied, and writes nothing.
func (c *cli) previewArchive(a *dump.Archive, o *transformFlags, plan *transform.Plan) error {
	repl := map[string][]byte{}
	names := make([]string, 0, len(plan.Images))
	for n, b := range plan.Images {
		repl[a.MemberOf(n)] = b
		names = append(names, n)
	}
	target, comp := o.out, dump.Compression(0)
	var b strings.Builder
	if o.inPlace {
		target, comp = a.Path(), a.Compression()
		fmt.Fprintf(&b, "would replace %s with a new %s", target, comp)
		if !o.noBackup {
			fmt.Fprintf(&b, ", the old archive kept as %s.orig", filepath.Base(target))
		}
		b.WriteString(":\n")
	} else {
		comp = outCompression(o.out, a)
		fmt.Fprintf(&b, "would write %s, a %s:\n", target, comp)
	}
	seen := map[string]bool{}
	for _, m := range a.Members() {
		name, _ := dump.CleanMemberName(m.Name)
		if nb, ok := repl[name]; ok {
			seen[name] = true
			fmt.Fprintf(&b, "  %s: rewritten, %d bytes (was %d)\n", m.Name, len(nb), m.Size)
			continue
		}
		fmt.Fprintf(&b, "  %s: copied as it is, %s\n", m.Name, memberWhat(m))
	}
	for n := range repl {
		if !seen[n] {
			return withCode(exitError, fmt.Errorf("%s: no member %s in the archive", a.Path(), n))
		}
	}
	if _, err := fmt.Fprint(c.stdout, b.String()); err != nil {
		return withCode(exitError, err)
	}
	slices.Sort(names)
	fmt.Fprintf(c.stderr, "critq: %s: dry run: %d image(s) would be rewritten, nothing written: %s\n", target, len(names), strings.Join(names, " "))
	return nil
}

// memberWhat describes a member copied: its size, or its type.
func memberWhat(m dump.MemberHeader) string {
	switch m.Typeflag {
	case tar.TypeReg, '\x00', tar.TypeCont:
		return fmt.Sprintf("%d bytes", m.Size)
	case tar.TypeDir:
		return "a folder"
	}
	return fmt.Sprintf("type %q", m.Typeflag)
}
