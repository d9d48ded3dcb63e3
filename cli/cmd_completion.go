package cli

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/explore"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/query"
	"github.com/critq/critq/rules"
)

// completeCommand is the hidden command the completion scripts run:
// critq __complete WORD... CUR prints the candidates for CUR, one a line
// ("candidate<TAB>description"), then one directive line: ":dumps" (the
// shell adds folders and .tar, .tar.gz, .tar.zst archives), ":files",
// ":dirs" or ":" (nothing more).
const completeCommand = "__complete"

func init() {
	register(&command{name: "completion", summary: "print a bash, zsh or fish completion script", run: runCompletion})
}

const completionUsage = `usage: critq completion bash|zsh|fish

Prints a completion script for the shell. It completes commands, flags,
--format names, dumps (folders and .tar, .tar.gz, .tar.zst archives), and
asks critq for what depends on the dump already typed: the pids of
critq maps|fds|mem DUMP PID and mem search -p, the image kinds of
transform --kind, and the view and variable names at the start of an
expression.

  bash:  source <(critq completion bash)       (or save it as
         /usr/share/bash-completion/completions/critq)
  zsh:   source <(critq completion zsh)        (or save it as _critq in $fpath)
  fish:  critq completion fish | source        (or save it as
         ~/.config/fish/completions/critq.fish)
`

// completionScripts are the scripts by shell. Each asks critq __complete
// for the candidates, so commands and flags come from the commands
// themselves.
var completionScripts = map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}

func runCompletion(c *cli, args []string) error {
	fs := c.newFlags("completion", completionUsage)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || completionScripts[pos[0]] == "" {
		return usageErrorf("completion: %s", firstLine(completionUsage))
	}
	_, err = fmt.Fprint(c.stdout, completionScripts[pos[0]])
	return err
}

// argKind is what a positional argument or a flag value is.
type argKind int

const (
	argNone    argKind = iota // free text: nothing to offer
	argDump                   // a dump: a folder or an archive
	argFile                   // any file
	argDir                    // a directory
	argPID                    // a pid of the dump on the line
	argExpr                   // a CEL expression: the names at its start
	argImgKind                // an image kind (of the dump on the line)
	argHelp                   // a command or a help topic
	argWords                  // one of words
)

type argSpec struct {
	kind  argKind
	words []string
}

// positionals are the positional arguments of each command path; the
// last one repeats when rest is set. TestCompletionCoversCommands checks
// that every command has an entry.
var positionals = map[string]struct {
	args []argSpec
	rest bool
}{
	"query":      {[]argSpec{{kind: argExpr}, {kind: argDump}}, true},
	"batch":      {[]argSpec{{kind: argFile}, {kind: argDump}}, true},
	"repl":       {[]argSpec{{kind: argDump}}, true},
	"transform":  {[]argSpec{{kind: argNone}, {kind: argDump}}, false}, // without -f, --rule, --kind: RULE DUMP
	"decode":     {},
	"encode":     {},
	"info":       {[]argSpec{{kind: argFile}}, false},
	"show":       {[]argSpec{{kind: argFile}}, false},
	"mem":        {[]argSpec{{kind: argDump, words: []string{"search"}}, {kind: argPID}}, false},
	"mem search": {[]argSpec{{kind: argDump}}, false},
	"ps":         {[]argSpec{{kind: argDump}}, false},
	"sockets":    {[]argSpec{{kind: argDump}}, false},
	"inspect":    {[]argSpec{{kind: argDump}}, false},
	"maps":       {[]argSpec{{kind: argDump}, {kind: argPID}}, false},
	"fds":        {[]argSpec{{kind: argDump}, {kind: argPID}}, false},
	"x":          {[]argSpec{{kind: argDump}, {kind: argWords, words: []string{"ps", "fds", "mems", "rss"}}}, false},
	"version":    {},
	"completion": {[]argSpec{{kind: argWords, words: []string{"bash", "zsh", "fish"}}}, false},
	"man":        {[]argSpec{{kind: argDir}}, false},
	"help":       {[]argSpec{{kind: argHelp}}, false},
	"check":      {[]argSpec{{kind: argDump}}, true},
	"core":       {[]argSpec{{kind: argDump}, {kind: argPID}}, true},
	"diff":       {[]argSpec{{kind: argDump}, {kind: argDump}, {kind: argExpr}}, false},
	"export":     {[]argSpec{{kind: argDump}}, true},
	"list":       {[]argSpec{{kind: argDir}}, true},
	"rootfs":     {[]argSpec{{kind: argDump}, {kind: argNone}}, false},
}

// flagValue says what the value of a flag is, by "command -flag" or, for
// every command, by "-flag"; other flags take free text.
var flagValue = map[string]argKind{
	"-f":           argFile,
	"-i":           argFile,
	"-o":           argFile,
	"transform -o": argDir,
	"--recover":    argDump,
	"-p":           argPID,
	"--kind":       argImgKind,
}

// candidate is one completion with a few words about it.
type candidate struct{ word, desc string }

// complete is critq __complete: words are the arguments after critq, the
// last one the word being completed. It prints nothing but candidates:
// a dump that cannot be read gives none.
func (c *cli) complete(words []string) error {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	cands, directive := completeWords(before, cur)
	var b strings.Builder
	for _, k := range cands {
		if !strings.HasPrefix(k.word, cur) {
			continue
		}
		b.WriteString(k.word)
		if k.desc != "" {
			b.WriteString("\t" + strings.ReplaceAll(k.desc, "\n", " "))
		}
		b.WriteByte('\n')
	}
	b.WriteString(":" + directive + "\n")
	_, err := fmt.Fprint(c.stdout, b.String())
	return err
}

// completeWords returns the candidates for cur after the words before
// it, and the directive for the shell.
func completeWords(before []string, cur string) ([]candidate, string) {
	if len(before) == 0 {
		if strings.HasPrefix(cur, "-") {
			return flagCandidates("query", append(flagNames(describe("query").flags), "--version", "--help")), ""
		}
		var cands []candidate
		for _, p := range commandPaths() {
			if !strings.Contains(p, " ") {
				cands = append(cands, candidate{p, commands[p].summary})
			}
		}
		return append(cands, exprCandidates(cur)...), ""
	}
	path, rest := before[0], before[1:]
	if _, ok := commands[path]; !ok {
		path, rest = "query", before // the default command: EXPR DUMP...
	}
	if len(rest) > 0 && contains(subcommands[path], rest[0]) {
		path, rest = path+" "+rest[0], rest[1:]
	}
	fs := describe(path).flags
	var pos []string
	values := map[string]string{}
	dashdash := false
	for i := 0; i < len(rest); i++ {
		w := rest[i]
		if dashdash || w == "-" || !strings.HasPrefix(w, "-") {
			pos = append(pos, w)
			continue
		}
		if w == "--" {
			dashdash = true
			continue
		}
		name, v, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
		f := lookupFlag(fs, name)
		switch {
		case f == nil:
		case isBoolFlag(f) || hasValue:
			values[name] = v
		case i+1 < len(rest):
			values[name] = rest[i+1]
			i++
		default: // cur is the value of this flag
			return valueCandidates(path, name, cur, "", pos, values)
		}
	}
	if !dashdash && strings.HasPrefix(cur, "-") {
		if name, v, ok := strings.Cut(cur, "="); ok {
			flagName := strings.TrimLeft(name, "-")
			if f := lookupFlag(fs, flagName); f != nil && !isBoolFlag(f) {
				return valueCandidates(path, flagName, v, name+"=", pos, values)
			}
			return nil, ""
		}
		return flagCandidates(path, flagNames(fs)), ""
	}
	spec := positionals[path]
	args := spec.args
	if path == "transform" && (values["f"] != "" || values["rule"] != "" || values["kind"] != "") {
		args = args[1:] // the rules are in flags: DUMP
	}
	if len(args) == 0 {
		return nil, ""
	}
	i := len(pos)
	if i >= len(args) {
		if !spec.rest {
			return nil, ""
		}
		i = len(args) - 1
	}
	return argCandidates(args[i], path, cur, "", pos, args, values)
}

func lookupFlag(fs *flag.FlagSet, name string) *flag.Flag {
	if fs == nil {
		return nil
	}
	return fs.Lookup(name)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// flagCandidates describes the flags names of command path.
func flagCandidates(path string, names []string) []candidate {
	fs := describe(path).flags
	var cands []candidate
	for _, n := range names {
		desc := ""
		if f := lookupFlag(fs, strings.TrimLeft(n, "-")); f != nil {
			desc = f.Usage
		}
		cands = append(cands, candidate{n, desc})
	}
	return cands
}

// valueCandidates completes the value of flag name of command path;
// prefix ("--format=") goes before each candidate.
func valueCandidates(path, name, cur, prefix string, pos []string, values map[string]string) ([]candidate, string) {
	if name == "format" {
		var cands []candidate
		for _, f := range formatsOf(path) {
			cands = append(cands, candidate{prefix + f, ""})
		}
		return cands, ""
	}
	kind, ok := flagValue[path+" "+dashed(name)]
	if !ok {
		kind = flagValue[dashed(name)]
	}
	return argCandidates(argSpec{kind: kind}, path, cur, prefix, pos, positionals[path].args, values)
}

// argCandidates completes one argument of kind spec; pos are the
// positional arguments before it, args the command's positional specs
// (to find the dump on the line).
func argCandidates(spec argSpec, path, cur, prefix string, pos []string, args []argSpec, values map[string]string) ([]candidate, string) {
	var cands []candidate
	for _, w := range spec.words {
		cands = append(cands, candidate{prefix + w, ""})
	}
	dumpPath := func() string {
		if d := values["recover"]; d != "" {
			return d
		}
		if path == "transform" && len(pos) > 0 {
			return pos[len(pos)-1] // the dump is the last positional
		}
		for i, a := range args {
			if a.kind == argDump && i < len(pos) {
				return pos[i]
			}
		}
		return ""
	}
	switch spec.kind {
	case argDump:
		return cands, "dumps"
	case argFile:
		return cands, "files"
	case argDir:
		return cands, "dirs"
	case argPID:
		return append(cands, pidCandidates(dumpPath())...), ""
	case argImgKind:
		return append(cands, kindCandidates(dumpPath())...), ""
	case argExpr:
		return append(cands, exprCandidates(cur)...), ""
	case argHelp:
		for _, p := range commandPaths() {
			if !strings.Contains(p, " ") {
				cands = append(cands, candidate{p, commands[p].summary})
			}
		}
		addViewTopics()
		topics := make([]string, 0, len(helpTopics))
		for t := range helpTopics {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		for _, t := range topics {
			cands = append(cands, candidate{t, "help topic"})
		}
	}
	return cands, ""
}

// exprCandidates are the views and variables an expression can begin
// with, when cur is the start of a name.
func exprCandidates(cur string) []candidate {
	for _, r := range cur {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return nil
		}
	}
	var cands []candidate
	for _, v := range query.Vars() {
		cands = append(cands, candidate{v.Name, v.Doc})
	}
	return cands
}

// openTyped opens the dump typed on the command line, nil when there is
// none or it cannot be read.
func openTyped(p string) *dump.Dump {
	if p == "" {
		return nil
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, rest)
		}
	}
	d, err := dump.OpenAny(p, dump.ArchiveOptions{})
	if err != nil {
		return nil
	}
	return d
}

// pidCandidates are the pids of the tasks of the dump at p.
func pidCandidates(p string) []candidate {
	d := openTyped(p)
	if d == nil {
		return nil
	}
	defer d.Close()
	tasks, err := explore.New(d, nil).Tasks()
	if err != nil {
		return nil
	}
	var cands []candidate
	for _, t := range tasks {
		cands = append(cands, candidate{strconv.FormatUint(uint64(t.PID), 10), t.Comm()})
	}
	return cands
}

// kindCandidates are the kinds a transform rule can name: of the images
// of the dump at p, or every kind when there is no dump on the line.
func kindCandidates(p string) []candidate {
	kinds := magic.Kinds()
	if d := openTyped(p); d != nil {
		defer d.Close()
		seen := map[*magic.Kind]bool{}
		kinds = nil
		for _, f := range d.Files() {
			if f.Kind != nil && !seen[f.Kind] {
				seen[f.Kind] = true
				kinds = append(kinds, f.Kind)
			}
		}
	}
	var cands []candidate
	for _, k := range kinds {
		for _, name := range ruleNames(k) {
			cands = append(cands, candidate{name, k.What})
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].word < cands[j].word })
	return cands
}

// ruleNames are the names transform takes for the entries of kind k: its
// name in lower case with dashes, and the head entry apart (see
// rules.RuleKind); none for a kind rules cannot rewrite.
func ruleNames(k *magic.Kind) []string {
	name := strings.ToLower(strings.ReplaceAll(k.Name, "_", "-"))
	var names []string
	for _, n := range []string{name, name + "-head", "ghost-chunk"} {
		rk, err := rules.RuleKind(n)
		if err == nil && rk == k && (n != "ghost-chunk" || k.Extra == magic.ExtraGhostFile) {
			names = append(names, n)
		}
	}
	return names
}
