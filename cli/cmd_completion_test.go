package cli

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/rules"
)

// critqOnPath returns the environment of a shell whose PATH has a
// "critq" that runs this test binary as critq (TestCritqHelperProcess).
func critqOnPath(t *testing.T) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	script := "#!/bin/sh\nIFS=$(printf '\\037')\nCRITQ_HELPER_ARGS=\"$*\" exec '" + exe + "' -test.run='^TestCritqHelperProcess$'\n"
	if err := os.WriteFile(filepath.Join(bin, "critq"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+t.TempDir())
}

// shellComplete runs shell on a script that loads critq's completion and
// asks for the completion of line (the cursor at its end); it returns the
// candidates, one a line.
func shellComplete(t *testing.T, shell, line string) []string {
	t.Helper()
	path, err := exec.LookPath(shell)
	if err != nil {
		t.Skipf("no %s", shell)
	}
	dir := t.TempDir()
	scriptFile := filepath.Join(dir, "critq."+shell)
	if err := os.WriteFile(scriptFile, []byte(completionScripts[shell]), 0o644); err != nil {
		t.Fatal(err)
	}
	words := strings.Fields(line)
	if strings.HasSuffix(line, " ") {
		words = append(words, "")
	}
	var prog string
	switch shell {
	case "bash":
		// COMP_* as readline sets them, then the function complete -F names;
		// with bash-completion's helpers when it is installed.
		prog = "[ -f /usr/share/bash-completion/bash_completion ] && source /usr/share/bash-completion/bash_completion\n" +
			"source " + scriptFile + "\n" +
			"COMP_LINE=" + shQuote(line) + "; COMP_POINT=${#COMP_LINE}\n" +
			"COMP_WORDS=(" + shWords(words) + "); COMP_CWORD=" + itoa(len(words)-1) + "\n" +
			"$(complete -p critq | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p')\n" +
			"printf '%s\\n' \"${COMPREPLY[@]}\"\n"
	case "zsh":
		// The completion system's words and CURRENT, compadd printing what
		// it is given (it can only run inside a completion widget).
		prog = "compdef() { :; }\n" + // compinit is slow; the test calls _critq itself
			"compadd() { while [[ $1 == -* && $1 != -- ]]; do shift; done; [[ $1 == -- ]] && shift; print -l -- \"$@\"; }\n" +
			"source " + scriptFile + "\n" +
			"words=(" + shWords(words) + "); CURRENT=" + itoa(len(words)) + "\n" +
			"_critq\n"
	case "fish":
		prog = "source " + scriptFile + "\ncomplete -C " + shQuote(line) + "\n"
	}
	cmd := exec.Command(path, "-c", prog)
	if shell == "zsh" {
		cmd = exec.Command(path, "-f", "-c", prog)
	}
	cmd.Env = critqOnPath(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", shell, err, out)
	}
	var cands []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			cands = append(cands, strings.SplitN(l, "\t", 2)[0])
		}
	}
	t.Logf("%s: %s<TAB>\n%s", shell, line, out)
	return cands
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func shWords(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shQuote(w)
	}
	return strings.Join(q, " ")
}

func itoa(n int) string { return strconv.Itoa(n) }

// dumpKinds are the rule names of the kinds of the images of the dump in
// dir, read by package dump: the oracle of the kinds completed.
func dumpKinds(t *testing.T, dir string) []string {
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range d.Files() {
		if f.Kind == nil {
			continue
		}
		if _, err := rules.RuleKind(f.Kind.Name); err == nil {
			names = append(names, strings.ToLower(strings.ReplaceAll(f.Kind.Name, "_", "-")))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// TestShellCompletion runs bash, zsh and fish on the completion script and
// completes a pid and a kind from a real dump, a command, a --format name
// and a variable. The pid is the one of the dump's MANIFEST (sleep-plain:
// 19635), the kinds those of its images.
func TestShellCompletion(t *testing.T) {
	kinds := dumpKinds(t, sleepPlain)
	if !slices.Contains(kinds, "core") || !slices.Contains(kinds, "files") {
		t.Fatalf("kinds of %s: %v", sleepPlain, kinds)
	}
	// Dumps are folders and archives: a.tar, b.tar.gz, c.tar.zst and sub/,
	// not notes.txt.
	files := t.TempDir()
	for _, f := range []string{"a.tar", "b.tar.gz", "c.tar.zst", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(files, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(files, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	dumpFiles := map[string][]string{}
	for _, f := range []string{"a.tar", "b.tar.gz", "c.tar.zst", "sub"} {
		dumpFiles["bash"] = append(dumpFiles["bash"], filepath.Join(files, f))
		if f == "sub" {
			f += "/"
		}
		dumpFiles["fish"] = append(dumpFiles["fish"], files+"/"+f)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			for _, tc := range []struct {
				line string
				want []string // exactly, in any order
				has  []string // at least
			}{
				{line: "critq maps " + sleepPlain + " ", want: []string{"19635"}},
				{line: "critq mem " + sleepPlain + " ", want: []string{"19635"}},
				{line: "critq transform " + sleepPlain + " --kind ", has: kinds},
				{line: "critq transform " + sleepPlain + " --kind fi", want: []string{"files"}},
				{line: "critq ver", want: []string{"version"}},
				{line: "critq ps --format ", want: []string{"text", "json"}},
				{line: "critq tas", want: []string{"tasks"}},
				{line: "critq mem search --reg", want: []string{"--regex"}},
				{line: "critq ps --format=j", want: []string{"--format=json"}},
				{line: "critq ps " + files + "/", want: dumpFiles[shell]},
			} {
				if tc.want == nil && tc.has == nil {
					continue // zsh's _files runs only inside the completion widget
				}
				got := shellComplete(t, shell, tc.line)
				if shell == "bash" {
					// readline replaces only what follows the = of --format=
					for i, w := range got {
						if strings.HasPrefix(tc.line[strings.LastIndex(tc.line, " ")+1:], "--format=") {
							got[i] = "--format=" + w
						}
					}
				}
				if tc.want != nil && !sameSet(got, tc.want) {
					t.Errorf("%s<TAB>: %q, want %q", tc.line, got, tc.want)
				}
				for _, w := range tc.has {
					if !slices.Contains(got, w) {
						t.Errorf("%s<TAB>: %q lacks %q", tc.line, got, w)
					}
				}
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestCompletionCoversCommands: every command has its positional
// arguments described, every --format flag its names in commandFormats,
// and every flag named in flagValue exists.
func TestCompletionCoversCommands(t *testing.T) {
	flags := map[string]bool{}
	for _, p := range commandPaths() {
		if _, ok := positionals[p]; !ok {
			t.Errorf("%s: no entry in positionals", p)
		}
		info := describe(p)
		if info.help == "" {
			t.Errorf("%s: no help", p)
		}
		if info.flags == nil {
			continue
		}
		info.flags.VisitAll(func(f *flag.Flag) {
			flags[dashed(f.Name)] = true
			flags[p+" "+dashed(f.Name)] = true
			if f.Name == "format" && formatsOf(p) == nil {
				t.Errorf("%s: --format but no entry in commandFormats", p)
			}
		})
	}
	for k := range flagValue {
		if !flags[k] {
			t.Errorf("flagValue[%q]: no such flag", k)
		}
	}
}
