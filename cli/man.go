package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func init() {
	register(&command{name: "man", summary: "write the man pages critq(1) and critq-COMMAND(1) to a folder", run: runMan})
}

const manUsage = `usage: critq man DIR

Writes critq's man pages into DIR (made if missing): critq.1, and
critq-COMMAND.1 for every command (critq-mem-search.1 for mem search).
They are the help texts critq help and critq COMMAND -h print, set in
roff. Read one with man -l DIR/critq-maps.1, or install them in
/usr/share/man/man1.
`

func runMan(c *cli, args []string) error {
	fs := c.newFlags("man", manUsage)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("man: %s", firstLine(manUsage))
	}
	dir := pos[0]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return withCode(exitError, err)
	}
	for name, page := range manPages() {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(page), 0o644); err != nil {
			return withCode(exitError, err)
		}
	}
	return nil
}

// manPages returns every page by file name.
func manPages() map[string]string {
	pages := map[string]string{}
	var main strings.Builder
	(&cli{}).usage(&main)
	var seeAlso []string
	for _, p := range commandPaths() {
		page := "critq-" + strings.ReplaceAll(p, " ", "-")
		seeAlso = append(seeAlso, page)
		summary := ""
		if cmd := commands[p]; cmd != nil {
			summary = cmd.summary
		}
		pages[page+".1"] = manPage(page, summary, describe(p).help, []string{"critq"})
	}
	body := main.String() + "\n" + formatsTopic()
	pages["critq.1"] = manPage("critq", "read, query and rewrite CRIU checkpoint images", body, seeAlso)
	return pages
}

// manPage sets a help text in roff: the usage lines are the SYNOPSIS, the
// rest the DESCRIPTION and the "Flags:" part the OPTIONS, each as the
// help prints it (no fill), so the page says what -h says.
func manPage(name, summary, help string, seeAlso []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s 1 \"\" \"critq\" \"critq manual\"\n", strings.ToUpper(name))
	b.WriteString(".SH NAME\n" + roffText(name) + " \\- " + roffText(summary) + "\n")
	lines := strings.Split(strings.TrimRight(help, "\n"), "\n")
	section := func(title string, ls []string) {
		for len(ls) > 0 && strings.TrimSpace(ls[0]) == "" {
			ls = ls[1:]
		}
		if len(ls) == 0 {
			return
		}
		b.WriteString(".SH " + title + "\n.nf\n")
		for _, l := range ls {
			b.WriteString(roffLine(l) + "\n")
		}
		b.WriteString(".fi\n")
	}
	// SYNOPSIS: the first paragraph when it is the usage lines.
	i := 0
	for i < len(lines) && strings.TrimSpace(lines[i]) != "" {
		i++
	}
	var synopsis []string
	if strings.HasPrefix(strings.TrimSpace(lines[0]), "usage:") {
		synopsis, lines = lines[:i], lines[i:]
	}
	for j, l := range synopsis {
		synopsis[j] = strings.TrimPrefix(strings.TrimPrefix(l, "usage: "), "       ")
	}
	section("SYNOPSIS", synopsis)
	var desc, opts []string
	desc = lines
	for j, l := range lines {
		if l == "Flags:" {
			desc, opts = lines[:j], lines[j+1:]
			break
		}
	}
	section("DESCRIPTION", desc)
	section("OPTIONS", opts)
	if len(seeAlso) > 0 {
		b.WriteString(".SH SEE ALSO\n")
		for j, s := range seeAlso {
			sep := ","
			if j == len(seeAlso)-1 {
				sep = ""
			}
			fmt.Fprintf(&b, ".BR %s (1)%s\n", roffText(s), sep)
		}
	}
	return b.String()
}

// roffText escapes the backslashes and dashes of a word of text.
func roffText(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\e`), "-", `\-`)
}

// roffLine escapes one line of no-fill text: a line that begins with . or
// ' would be a request, an empty one would be dropped.
func roffLine(s string) string {
	s = roffText(strings.ReplaceAll(s, "\t", "        "))
	if s == "" || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
