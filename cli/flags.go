package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// newFlags returns a flag set for a command whose usage text is usage (the
// first line is the synopsis). Flags are printed below it on -h.
func (c *cli) newFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.Init(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(c.stdout, strings.TrimLeft(usage, "\n"))
		if hasFlags(fs) {
			fmt.Fprintln(c.stdout, "\nFlags:")
			fs.SetOutput(c.stdout)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
	if c.onFlags != nil {
		c.onFlags(fs)
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// errHelp is returned by parse after printing the usage for -h.
var errHelp = errors.New("help printed")

// parse parses args, letting flags follow positional arguments
// ("critq show IN --nopl"); everything after a "--" is positional. It
// returns the positional arguments. -h prints the usage to stdout and
// returns errHelp, which the caller returns as is.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	// The flag package calls Usage on every error; print it only for -h,
	// on stdout, and give other errors one line on stderr.
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, errHelp
			}
			return nil, usageErrorf("%s: %v (see critq %s -h)", fs.Name(), err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, tail...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
