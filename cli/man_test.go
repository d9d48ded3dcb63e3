package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestManPages writes the man pages with critq man, renders each with
// man -l (warnings on) and checks that it renders without a warning and
// shows every line of the help text it comes from.
func TestManPages(t *testing.T) {
	manCmd, err := exec.LookPath("man")
	if err != nil {
		t.Skip("no man")
	}
	dir := t.TempDir()
	if _, stderr, code := runCLI(t, nil, "man", dir); code != exitOK {
		t.Fatalf("critq man: exit %d: %s", code, stderr)
	}
	helps := map[string]string{"critq.1": ""}
	for _, p := range commandPaths() {
		out, _, _ := runCLI(t, nil, append(strings.Fields(p), "-h")...)
		helps["critq-"+strings.ReplaceAll(p, " ", "-")+".1"] = out
	}
	usage, _, _ := runCLI(t, nil, "help")
	helps["critq.1"] = usage + formatsTopic()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(helps) {
		t.Errorf("%d pages, want %d", len(ents), len(helps))
	}
	// One man run for every page (each run takes a second or so): the
	// pages follow each other, each starting with its header line.
	var names []string
	for name := range helps {
		names = append(names, name)
	}
	sort.Strings(names)
	args := []string{"--warnings", "-l"}
	for _, name := range names {
		args = append(args, filepath.Join(dir, name))
	}
	cmd := exec.Command(manCmd, args...)
	cmd.Env = append(os.Environ(), "MANPAGER=cat", "PAGER=cat", "MANWIDTH=200", "LC_ALL=C", "MAN_KEEP_FORMATTING=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("man -l: %v: %s", err, stderr.String())
	}
	pages := map[string]string{}
	name := ""
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasSuffix(f[0], "(1)") && strings.HasSuffix(l, f[0]) {
			name = strings.ToLower(strings.TrimSuffix(f[0], "(1)")) + ".1"
		}
		pages[name] += l + "\n"
	}
	for _, name := range names {
		page := squeezeSpace(pages[name])
		if page == "" {
			t.Errorf("man -l rendered no %s", name)
		}
		for _, l := range strings.Split(helps[name], "\n") {
			l = squeezeSpace(strings.TrimPrefix(strings.TrimSpace(l), "usage: "))
			if l != "" && l != "Flags:" && !strings.Contains(page, l) {
				t.Errorf("%s lacks the help line %q", name, l)
			}
		}
	}
}

func squeezeSpace(s string) string { return strings.Join(strings.Fields(s), " ") }
