package cli

import (
	"bytes"
	"flag"
	"sort"
	"strings"
)

// subcommands are the words that make a command of their own after a
// command ("critq mem search"), with their own flags and help.
var subcommands = map[string][]string{"mem": {"search"}}

// commandPaths returns every command and subcommand ("mem search"),
// sorted: what completion and the man pages describe.
func commandPaths() []string {
	var paths []string
	for name := range commands {
		paths = append(paths, name)
		for _, sub := range subcommands[name] {
			paths = append(paths, name+" "+sub)
		}
	}
	sort.Strings(paths)
	return paths
}

// commandInfo is what a command says about itself: the help text of -h
// and its flags.
type commandInfo struct {
	help  string
	flags *flag.FlagSet // nil for a command without flags
}

// describe runs the command (path: "maps", "mem search") with -h on a
// private cli to read its help text and its flag set. The commands are
// the one source of both.
func describe(path string) commandInfo {
	words := strings.Fields(path)
	cmd, ok := commands[words[0]]
	if !ok {
		return commandInfo{}
	}
	var out bytes.Buffer
	var info commandInfo
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &bytes.Buffer{}, env: func(string) string { return "" },
		onFlags: func(fs *flag.FlagSet) { info.flags = fs }}
	_ = cmd.run(c, append(words[1:], "-h"))
	info.help = out.String()
	return info
}

// flagNames returns the flags of fs as they are typed: --name, or -n for
// a one-letter name.
func flagNames(fs *flag.FlagSet) []string {
	var names []string
	if fs == nil {
		return nil
	}
	fs.VisitAll(func(f *flag.Flag) { names = append(names, dashed(f.Name)) })
	return names
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// isBoolFlag reports whether f takes no value.
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
