package cli

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/critq/critq/dump"
)

// archiveFlagsHelp is the help of the bounds of reading archives, for the
// usage texts of the commands that open dumps.
const archiveFlagsHelp = `A compressed checkpoint archive is read with bounds against archive bombs,
checked against the tar headers before any data is read: --max-archive-bytes
(default 4G decompressed), --max-meta (256M of images besides pages, kept in
memory), --max-spool (2G of pages copied to $TMPDIR for commands that read
memory) and --max-members (100000). An archive that passes one fails at once
(exit 4) naming the bound; raise it with its flag (sizes take K, M, G, T).
`

// archiveFlags adds the bounds of reading checkpoint archives to fs. A
// flag given sets the bound for the rest of the run (main restores the
// defaults when the run ends).
func (c *cli) archiveFlags(fs *flag.FlagSet) {
	for _, f := range []struct {
		name, usage string
		set         func(*dump.Limits, int64)
	}{
		{"max-archive-bytes", "bound of the decompressed `size` of a compressed archive (default 4G)", func(l *dump.Limits, n int64) { l.MaxBytes = n }},
		{"max-meta", "bound of the `size` of an archive's images besides pages, kept in memory (default 256M)", func(l *dump.Limits, n int64) { l.MaxMeta = n }},
		{"max-spool", "bound of the `size` of an archive's pages copied to $TMPDIR (default 2G)", func(l *dump.Limits, n int64) { l.MaxSpool = n }},
		{"max-members", "bound of the `number` of members of an archive (default 100000)", func(l *dump.Limits, n int64) { l.MaxMembers = int(n) }},
	} {
		fs.Func(f.name, f.usage, func(s string) error {
			n, err := parseSize(s)
			if err != nil {
				return err
			}
			f.set(&c.limits, n)
			if c.restoreLimits == nil {
				c.restoreLimits = dump.SetDefaultLimits(c.limits)
			} else {
				dump.SetDefaultLimits(c.limits)
			}
			return nil
		})
	}
}

// parseSize reads a positive size: a number with an optional K, M, G or T
// (powers of 1024; KiB, MB and the like are read alike).
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	shift := 0
	if t != "" {
		if i := strings.IndexByte("KMGT", t[len(t)-1]); i >= 0 {
			shift = 10 * (i + 1)
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("bad size %q: want a positive number with an optional K, M, G or T", s)
	}
	return n << shift, nil
}

func init() {
	helpTopics["archives"] = func() string {
		return `Checkpoint archives

Every command that reads a dump also reads a container checkpoint archive
(tar, tar.gz, tar.zst) as Podman, CRI-O and Kubernetes write it.

` + archiveFlagsHelp + `
A gzip or zstd archive is read to its end, so that a wrong CRC, length or
checksum, or a cut-off trailer, is an error naming the archive (exit 4).
Ctrl-C stops the reading of an archive (exit 5, or the signal for commands
that do not handle it); on SIGINT, SIGTERM and SIGHUP critq removes its
critq-archive-PID-* temporary folder before it ends, and a later run removes
the folders of critq processes that are gone (killed by SIGKILL).
`
	}
}
