package cli

import (
	"io"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal: an *os.File (or anything
// with a file descriptor) on which the terminal ioctl succeeds. /dev/null
// and pipes are not terminals.
func isTerminal(w any) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// colorOn reports whether output to w may be colored: only on a terminal,
// never when NO_COLOR is set (https://no-color.org) or TERM is dumb.
func (c *cli) colorOn(w io.Writer) bool {
	return isTerminal(w) && c.env("NO_COLOR") == "" && c.env("TERM") != "dumb"
}
