package cli

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/critq/critq/internal/testcorpus"
)

// The exact-output corpus: testdata/cases/*.txtar, in the style of gojq's
// cli/test.yaml. A file's comment says what its expectations were checked
// against; then each case NAME is a run of sections:
//
//	-- NAME/args --         one argument a line (required; empty: none)
//	-- NAME/stdin --        standard input
//	-- NAME/env --          KEY=VALUE lines: the whole environment critq sees
//	-- NAME/file:PATH --    a file written to $TMP/PATH before the run
//	-- NAME/stdout --       exact standard output (absent: empty)
//	-- NAME/stderr --       exact standard error (absent: empty)
//	-- NAME/exit --         the exit status
//	-- NAME/tree --         the files under $TMP after the run, one a line
//
// In arguments, stdin and files, $TMP is a fresh folder of the case and
// $CORPUS the full corpus (../shared/corpus); a case that names $CORPUS is
// skipped when the corpus is missing (and fails with CRITQ_REQUIRE_CORPUS).
// Both paths are written back as $TMP and $CORPUS in the outputs, and Go's
// version (critq version prints it) as $GOVERSION. With
// -update the outputs are rewritten from what critq prints; read the diff.

var updateCases = flag.Bool("update", false, "rewrite the expected outputs of testdata/cases/*.txtar")

// archive is a txtar file: a comment and named sections in order.
type archive struct {
	comment string
	files   []archiveFile
}

type archiveFile struct {
	name string
	data string
}

// parseTxtar splits the text of a txtar archive: a line "-- NAME --" starts
// a file, which runs to the next such line or the end.
func parseTxtar(text string) archive {
	var a archive
	cur := &a.comment
	for len(text) > 0 {
		line, rest, _ := strings.Cut(text, "\n")
		if name, ok := txtarMarker(line); ok {
			a.files = append(a.files, archiveFile{name: name})
			cur = &a.files[len(a.files)-1].data
		} else {
			*cur += line + "\n"
			if rest == "" && !strings.HasSuffix(text, "\n") {
				*cur = strings.TrimSuffix(*cur, "\n")
			}
		}
		text = rest
	}
	return a
}

func txtarMarker(line string) (string, bool) {
	if !strings.HasPrefix(line, "-- ") || !strings.HasSuffix(line, " --") || len(line) < 7 {
		return "", false
	}
	return strings.TrimSpace(line[3 : len(line)-3]), true
}

// format is the text of the archive. A file that does not end in a newline
// gets one, as txtar does.
func (a archive) format() string {
	var b strings.Builder
	b.WriteString(a.comment)
	for _, f := range a.files {
		fmt.Fprintf(&b, "-- %s --\n", f.name)
		b.WriteString(f.data)
		if f.data != "" && !strings.HasSuffix(f.data, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// cliCase is one case of a corpus file.
type cliCase struct {
	name     string
	sections map[string]string
	has      map[string]bool
	order    []string // section names in file order
}

func (a archive) cases(t *testing.T) []*cliCase {
	var out []*cliCase
	byName := map[string]*cliCase{}
	for _, f := range a.files {
		name, sec, ok := strings.Cut(f.name, "/")
		if !ok {
			t.Fatalf("section %q: want NAME/SECTION", f.name)
		}
		c := byName[name]
		if c == nil {
			c = &cliCase{name: name, sections: map[string]string{}, has: map[string]bool{}}
			byName[name] = c
			out = append(out, c)
		}
		if c.has[sec] {
			t.Fatalf("case %s: section %s twice", name, sec)
		}
		c.sections[sec], c.has[sec] = f.data, true
		c.order = append(c.order, sec)
	}
	return out
}

// outputSections are what -update rewrites, in this order after the inputs.
var outputSections = []string{"stdout", "stderr", "exit", "tree"}

func isOutput(sec string) bool {
	for _, s := range outputSections {
		if s == sec {
			return true
		}
	}
	return false
}

// result is what one run printed and left behind.
type result struct {
	stdout, stderr, exit, tree string
}

func TestCLICorpus(t *testing.T) {
	paths, err := filepath.Glob("testdata/cases/*.txtar")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	corpus := testcorpus.Root(t)
	total := 0
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a := parseTxtar(string(b))
			if !strings.Contains(a.comment, "Checked against") {
				t.Errorf("%s: the comment does not say what the outputs were checked against", path)
			}
			cases := a.cases(t)
			total += len(cases)
			got := map[string]result{}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					if !c.has["args"] {
						t.Fatal("no args section")
					}
					if !*updateCases && !c.has["exit"] {
						t.Fatal("no exit section (run with -update)")
					}
					uses := strings.Contains(c.sections["args"]+c.sections["stdin"], "$CORPUS")
					if uses && corpus == "" {
						t.Skip("the corpus is missing")
					}
					r := runCase(t, c, corpus)
					got[c.name] = r
					if *updateCases {
						return
					}
					for _, s := range []struct{ name, got string }{
						{"stdout", r.stdout}, {"stderr", r.stderr}, {"exit", r.exit}, {"tree", r.tree},
					} {
						if s.name == "tree" && !c.has["tree"] {
							continue
						}
						if want := c.sections[s.name]; s.got != want {
							t.Errorf("%s differs\n--- got\n%s\n--- want\n%s", s.name, s.got, want)
						}
					}
				})
			}
			if *updateCases {
				if err := os.WriteFile(path, []byte(updated(a, cases, got)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	if total < 150 && !*updateCases {
		t.Errorf("the corpus holds %d cases; it should hold at least 150", total)
	}
}

// updated returns the archive with each case's outputs replaced by what it
// printed; a case that did not run (skipped) keeps its old ones.
func updated(a archive, cases []*cliCase, got map[string]result) string {
	out := archive{comment: a.comment}
	for _, c := range cases {
		for _, sec := range c.order {
			if !isOutput(sec) {
				out.files = append(out.files, archiveFile{c.name + "/" + sec, c.sections[sec]})
			}
		}
		r, ran := got[c.name]
		if !ran {
			for _, sec := range c.order {
				if isOutput(sec) {
					out.files = append(out.files, archiveFile{c.name + "/" + sec, c.sections[sec]})
				}
			}
			continue
		}
		if r.stdout != "" {
			out.files = append(out.files, archiveFile{c.name + "/stdout", r.stdout})
		}
		if r.stderr != "" {
			out.files = append(out.files, archiveFile{c.name + "/stderr", r.stderr})
		}
		out.files = append(out.files, archiveFile{c.name + "/exit", r.exit})
		if c.has["tree"] {
			out.files = append(out.files, archiveFile{c.name + "/tree", r.tree})
		}
	}
	return out.format()
}

// runCase runs critq in process on the case and returns its outputs with
// the paths of the temporary folder and the corpus replaced by $TMP and
// $CORPUS. A stdout or stderr that does not end in a newline gets
// "\n<no newline>\n", so that the txtar form keeps it exact.
func runCase(t *testing.T, c *cliCase, corpus string) result {
	tmp := t.TempDir()
	expand := func(s string) string {
		s = strings.ReplaceAll(s, "$TMP", tmp)
		if corpus != "" {
			s = strings.ReplaceAll(s, "$CORPUS", corpus)
		}
		return s
	}
	normalise := func(s string) string {
		s = strings.ReplaceAll(s, tmp, "$TMP")
		if corpus != "" {
			s = strings.ReplaceAll(s, corpus, "$CORPUS")
		}
		s = strings.ReplaceAll(s, runtime.Version(), "$GOVERSION")
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n<no newline>\n"
		}
		return s
	}
	for _, sec := range c.order {
		if name, ok := strings.CutPrefix(sec, "file:"); ok {
			p := filepath.Join(tmp, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(expand(c.sections[sec])), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var args []string // an empty section: no arguments
	if a := strings.TrimSuffix(c.sections["args"], "\n"); a != "" {
		args = strings.Split(a, "\n")
	}
	for i := range args {
		args[i] = expand(args[i])
	}
	env := map[string]string{}
	for _, line := range strings.Split(c.sections["env"], "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = expand(v)
		}
	}
	var out, errb bytes.Buffer
	cl := &cli{stdin: strings.NewReader(expand(c.sections["stdin"])), stdout: &out, stderr: &errb,
		env: func(k string) string { return env[k] }}
	code := cl.main(args)
	r := result{stdout: normalise(out.String()), stderr: normalise(errb.String()), exit: strconv.Itoa(code) + "\n"}
	if c.has["tree"] {
		r.tree = listTree(t, tmp)
	}
	return r
}

// exportKey is the name of an export manifest, a hash of the dump's
// absolute path, which differs between checkouts.
var exportKey = regexp.MustCompile(`_critq/dumps/[0-9a-f]{16}\.json$`)

// listTree lists the files and folders under dir, one relative path a line
// (folders with a trailing slash, an export manifest as $PATHKEY.json),
// sorted.
func listTree(t *testing.T, dir string) string {
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = exportKey.ReplaceAllString(filepath.ToSlash(rel), "_critq/dumps/$$PATHKEY.json")
		if d.IsDir() {
			rel += "/"
		}
		lines = append(lines, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestParseTxtar(t *testing.T) {
	text := "comment\n-- a/args --\nx\ny\n-- a/stdout --\n-- b/args --\nz"
	a := parseTxtar(text)
	if a.comment != "comment\n" || len(a.files) != 3 {
		t.Fatalf("parsed %+v", a)
	}
	if a.files[0] != (archiveFile{"a/args", "x\ny\n"}) || a.files[1] != (archiveFile{"a/stdout", ""}) || a.files[2] != (archiveFile{"b/args", "z"}) {
		t.Errorf("files %+v", a.files)
	}
	if got := a.format(); got != text+"\n" {
		t.Errorf("format = %q", got)
	}
}
