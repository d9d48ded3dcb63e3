package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestFormatVocabulary: every command with --format accepts each name it
// lists and refuses any other with a usage error that lists them.
func TestFormatVocabulary(t *testing.T) {
	known := map[string]bool{}
	for _, f := range formatHelp {
		known[f.name] = true
	}
	for cmd, names := range commandFormats {
		args := strings.Fields(cmd)
		if _, ok := commands[args[0]]; !ok {
			t.Errorf("%s: no such command", cmd)
		}
		for _, n := range names {
			if !known[n] {
				t.Errorf("%s: format %q is not in critq help formats", cmd, n)
			}
		}
		args = append(args, "--format", "yaml", sleepPlain)
		switch cmd {
		case "query":
			args = append(args[:1], "--format", "yaml", "1", sleepPlain)
		case "version", "repl":
			args = args[:3]
		case "x":
			args = append(args, "ps")
		case "mem search":
			args = append(args, "x")
		case "batch":
			args = append(args[:3], "script", sleepPlain)
		}
		_, stderr, code := runCLI(t, nil, args...)
		want := "unknown format \"yaml\" (supported: " + strings.Join(names, ", ")
		if code != exitUsage || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", args, code, stderr, want)
		}
	}
}

// TestMemSearchJSONArray: --format json is one document, the array of the
// objects --format ndjson prints a line each.
func TestMemSearchJSONArray(t *testing.T) {
	lines, _, code := runCLI(t, nil, "mem", "search", "--format", "ndjson", sleepPlain, "HOME=")
	if code != exitOK {
		t.Fatalf("ndjson: exit %d", code)
	}
	arr, _, code := runCLI(t, nil, "mem", "search", "--format", "json", sleepPlain, "HOME=")
	if code != exitOK {
		t.Fatalf("json: exit %d", code)
	}
	var hits []json.RawMessage
	if err := json.Unmarshal([]byte(arr), &hits); err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSuffix(lines, "\n"), "\n")
	if len(hits) != len(want) || len(hits) == 0 {
		t.Fatalf("%d array elements, %d lines", len(hits), len(want))
	}
	for i := range hits {
		if string(hits[i]) != want[i] {
			t.Errorf("element %d: %s, line %s", i, hits[i], want[i])
		}
	}
}

// TestIsTerminal: /dev/null is a character device but no terminal, so it
// gets no color and no pretty default.
func TestIsTerminal(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Errorf("%s is a terminal", os.DevNull)
	}
	c := &cli{env: func(string) string { return "" }}
	if c.colorOn(f) {
		t.Errorf("color on %s", os.DevNull)
	}
}
