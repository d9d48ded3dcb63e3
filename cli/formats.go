package cli

import (
	"sort"
	"strings"
)

// formatHelp is the one --format vocabulary of every command: a name means
// the same thing wherever it is accepted.
var formatHelp = []struct{ name, means string }{
	{"text", "the command's own layout for people (views, mem, version)"},
	{"pretty", "indented JSON, colored on a terminal unless NO_COLOR is set"},
	{"json", "one JSON document (compact; views indent it)"},
	{"ndjson", "one JSON value a line (JSON Lines)"},
	{"table", "columns, one row a result or list element"},
	{"raw", "strings without quotes, other values as json"},
	{"tree", "a tree of sections: inspect's text, as checkpointctl names it; diff's changes by section and pid with + - ~ marks"},
	{"parquet", "Apache Parquet files (export)"},
}

// commandFormats lists the --format names each command accepts, its
// default first when it has one. Commands without --format are absent.
var commandFormats = map[string][]string{
	"query":      {"pretty", "json", "ndjson", "table", "raw"},
	"repl":       {"pretty", "json", "ndjson", "table"},
	"batch":      {"ndjson", "json", "table"},
	"ps":         {"text", "json"},
	"maps":       {"text", "json"},
	"fds":        {"text", "json"},
	"sockets":    {"text", "json"},
	"inspect":    {"text", "tree", "json"},
	"x":          {"text", "json"},
	"mem search": {"text", "ndjson", "json"},
	"version":    {"text", "json"},
	"check":      {"text", "json"},
	"diff":       {"tree", "json", "ndjson", "table"},
	"export":     {"parquet", "ndjson"},
	"list":       {"table", "json", "ndjson"},
	"rootfs":     {"text", "json"},
}

// formatsOf returns the --format names cmd accepts.
func formatsOf(cmd string) []string { return commandFormats[cmd] }

// checkFormat returns a usage error naming the formats cmd accepts when
// format is not one of them ("" is the command's default and always
// accepted).
func checkFormat(cmd, format string) error {
	names := formatsOf(cmd)
	if format == "" {
		return nil
	}
	for _, n := range names {
		if n == format {
			return nil
		}
	}
	return usageErrorf("%s: unknown format %q (supported: %s; see critq help formats)", cmd, format, strings.Join(names, ", "))
}

func init() {
	helpTopics["formats"] = formatsTopic
}

// formatsTopic is critq help formats.
func formatsTopic() string {
	var b strings.Builder
	b.WriteString("The --format names, the same in every command that takes them:\n\n")
	for _, f := range formatHelp {
		b.WriteString("  " + pad(f.name, 8) + f.means + "\n")
	}
	b.WriteString("\nWhich command takes which (its default first):\n\n")
	cmds := make([]string, 0, len(commandFormats))
	for c := range commandFormats {
		cmds = append(cmds, c)
	}
	sort.Strings(cmds)
	for _, c := range cmds {
		b.WriteString("  " + pad(c, 12) + strings.Join(commandFormats[c], ", ") + "\n")
	}
	b.WriteString("\nAny other name is a usage error (exit 2) that lists the supported ones.\n")
	return b.String()
}

func pad(s string, n int) string {
	if len(s) >= n {
		return s + " "
	}
	return s + strings.Repeat(" ", n-len(s))
}
