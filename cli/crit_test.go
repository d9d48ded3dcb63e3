package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/magic"
)

// stdinReader hides every method but Read: stdin is never seekable.
type stdinReader struct{ r io.Reader }

func (s stdinReader) Read(p []byte) (int, error) { return s.r.Read(p) }

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// runCrit runs critq in process with stdin as a non-seekable reader.
func runCrit(stdin []byte, args ...string) (stdout []byte, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(args, stdinReader{bytes.NewReader(stdin)}, &out, &errb)
	return out.Bytes(), errb.String(), code
}

const tcpDump = "../testdata/dumps/tcp"

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCritCommands(t *testing.T) {
	core := mustRead(t, tcpDump+"/core-19347.img")
	tests := []struct {
		name   string
		args   []string
		stdin  []byte
		stdout []byte // exact, when set
		out    string // substring of stdout
		err    string // substring of the one-line stderr
		code   int
	}{
		{name: "decode file", args: []string{"decode", "-i", tcpDump + "/pstree.img"}, stdout: mustRead(t, tcpDump+"/golden/pstree.img.json")},
		{name: "decode --pretty from stdin", args: []string{"decode", "--pretty"}, stdin: core, out: `"task_state": "ALIVE"`},
		{name: "decode plain from stdin", args: []string{"decode"}, stdin: mustRead(t, tcpDump+"/fs-19347.img"), stdout: mustRead(t, tcpDump+"/golden/fs-19347.img.json")},
		{name: "decode -i -", args: []string{"decode", "-i", "-", "--pretty"}, stdin: mustRead(t, tcpDump+"/fs-19347.img"), stdout: mustRead(t, tcpDump+"/golden/fs-19347.img.pretty.json")},
		{name: "show", args: []string{"show", tcpDump + "/pagemap-19347.img"}, stdout: mustRead(t, tcpDump+"/golden/pagemap-19347.img.pretty.json")},
		{name: "show --nopl after the image", args: []string{"show", tcpDump + "/tcp-stream-5d4a8.img", "--nopl"}, out: `"extra": "... <112.0KB>"`},
		{name: "info", args: []string{"info", tcpDump + "/files.img"}, stdout: mustRead(t, tcpDump+"/golden/files.img.info.json")},
		{name: "info pagemap counts no head", args: []string{"info", tcpDump + "/pagemap-19347.img"}, stdout: mustRead(t, tcpDump+"/golden/pagemap-19347.img.info.json")},
		{name: "encode from stdin", args: []string{"encode"}, stdin: mustRead(t, tcpDump+"/golden/core-19347.img.pretty.json"), stdout: core},
		{name: "raw pages image", args: []string{"decode", "-i", tcpDump + "/pages-1.img"}, err: "raw image (PAGES", code: exitBadImage},
		{name: "raw image info", args: []string{"info", tcpDump + "/pages-1.img"}, err: "critq mem", code: exitBadImage},
		{name: "unknown magic", args: []string{"decode"}, stdin: []byte("not an image at all"), err: "<stdin>: magic at offset 0: unknown magic", code: exitBadImage},
		{name: "empty stdin", args: []string{"decode"}, err: "<stdin>: magic at offset 0: empty file", code: exitBadImage},
		{name: "truncated image", args: []string{"decode"}, stdin: core[:len(core)-3], err: "<stdin>: CORE entry 0 at offset 8:", code: exitBadImage},
		{name: "missing file", args: []string{"info", tcpDump + "/nope.img"}, err: "no such file", code: exitBadImage},
		{name: "encode wrong type", args: []string{"encode"}, stdin: []byte(`{"magic": "PSTREE", "entries": [{"pid": "x"}]}`), err: `<stdin>: entries[0].pid (line 1, column 41): invalid value "x" for pid`, code: exitBadImage},
		{name: "encode unknown field", args: []string{"encode"}, stdin: []byte(`{"magic": "PSTREE", "entries": [{"pid": 1, "pidd": 2}]}`), err: "entries[0].pidd (line 1, column 44): unknown field of pstree_entry", code: exitBadImage},
		{name: "encode bad syntax", args: []string{"encode"}, stdin: []byte("{\"magic\": \"PSTREE\",\n \"entries\": [}"), err: "<stdin>: line 2, column 14: unexpected '}'", code: exitBadImage},
		{name: "encode of an image", args: []string{"encode"}, stdin: core, err: "not JSON", code: exitBadImage},
		{name: "encode extra mismatch", args: []string{"encode"}, stdin: []byte(`{"magic": "PIPES_DATA", "entries": [{"pipe_id": 1, "bytes": 3, "extra": "YQ==\n"}]}`), err: "entries[0]: extra does not match the entry", code: exitBadImage},
		{name: "encode nopl output", args: []string{"encode"}, stdin: []byte(`{"magic": "PIPES_DATA", "entries": [{"pipe_id": 1, "bytes": 3, "extra": "... <3B>"}]}`), err: "show --nopl", code: exitBadImage},
		{name: "decode positional", args: []string{"decode", "x.img"}, err: "use -i", code: exitUsage},
		{name: "show without image", args: []string{"show"}, err: "expected one image", code: exitUsage},
		{name: "unknown flag", args: []string{"info", "--bogus", "x"}, err: "flag provided but not defined", code: exitUsage},
		{name: "decode -h", args: []string{"decode", "-h"}, out: "usage: critq decode [-i IN] [-o OUT] [--pretty]"},
		{name: "encode -h", args: []string{"encode", "-h"}, out: "usage: critq encode"},
		{name: "info -h", args: []string{"info", "-h"}, out: "usage: critq info IN"},
		{name: "show -h", args: []string{"show", "-h"}, out: "--nopl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCrit(tc.stdin, tc.args...)
			if code != tc.code {
				t.Fatalf("critq %v: exit %d, want %d; stderr %q", tc.args, code, tc.code, stderr)
			}
			if len(tc.stdout) > 0 && !bytes.Equal(stdout, tc.stdout) {
				t.Errorf("critq %v: stdout\n%s\nwant\n%s", tc.args, stdout, tc.stdout)
			}
			if !bytes.Contains(stdout, []byte(tc.out)) {
				t.Errorf("critq %v: stdout lacks %q:\n%s", tc.args, tc.out, stdout)
			}
			if tc.err == "" {
				if stderr != "" {
					t.Errorf("critq %v: stderr %q, want none", tc.args, stderr)
				}
				return
			}
			if !strings.HasPrefix(stderr, "critq: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
				t.Errorf("critq %v: stderr %q is not one line", tc.args, stderr)
			}
			if !strings.Contains(stderr, tc.err) {
				t.Errorf("critq %v: stderr %q lacks %q", tc.args, stderr, tc.err)
			}
		})
	}
}

// TestCritOutputFile checks -o: the file gets the document without a
// trailing newline (as crit writes it), replaces an old file only once
// complete, and leaves no temporary file behind.
func TestCritOutputFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "pstree.json")
	if err := os.WriteFile(out, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCrit(nil, "decode", "-i", tcpDump+"/pstree.img", "-o", out)
	if code != 0 {
		t.Fatalf("decode -o: exit %d: %s", code, stderr)
	}
	want := bytes.TrimSuffix(mustRead(t, tcpDump+"/golden/pstree.img.json"), []byte("\n"))
	if got := mustRead(t, out); !bytes.Equal(got, want) {
		t.Errorf("decode -o wrote %q, want %q", got, want)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o640 {
		t.Errorf("decode -o changed the mode to %v", st.Mode().Perm())
	}
	// A failed decode leaves the old output alone.
	core := mustRead(t, tcpDump+"/core-19347.img")
	bad := filepath.Join(dir, "bad.img")
	if err := os.WriteFile(bad, core[:len(core)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, code := runCrit(nil, "decode", "-i", bad, "-o", out); code != exitBadImage {
		t.Errorf("decode of a truncated image: exit %d, want %d", code, exitBadImage)
	}
	if got := mustRead(t, out); !bytes.Equal(got, want) {
		t.Errorf("a failed decode changed the output file to %q", got)
	}
	// encode -o gives the image back.
	img := filepath.Join(dir, "pstree.img")
	if _, stderr, code := runCrit(nil, "encode", "-i", out, "-o", img); code != 0 {
		t.Fatalf("encode -o: exit %d: %s", code, stderr)
	}
	if !bytes.Equal(mustRead(t, img), mustRead(t, tcpDump+"/pstree.img")) {
		t.Error("encode -o did not give the original image")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("files left in the output directory: %v", ents)
	}
	// Write failures exit with exitError.
	if _, _, code := runCrit(nil, "decode", "-i", tcpDump+"/pstree.img", "-o", filepath.Join(dir, "no", "such", "dir")); code != exitError {
		t.Errorf("decode -o into a missing directory: exit %d, want %d", code, exitError)
	}
	var errb bytes.Buffer
	if code := run([]string{"decode", "-i", tcpDump + "/pstree.img"}, stdinReader{bytes.NewReader(nil)}, failWriter{}, &errb); code != exitError {
		t.Errorf("decode to a failing stdout: exit %d, want %d (%s)", code, exitError, errb.String())
	}
}

// TestCritInfoGolden compares info with crit 4.2's over every dump. Where
// crit miscounts kinds with extras (bug B4) or fails on ghost files (bug
// B3), critq must count the entries of the image's JSON instead.
func TestCritInfoGolden(t *testing.T) {
	n := 0
	for _, dir := range critDumpDirs(t) {
		goldens, _ := filepath.Glob(filepath.Join(dir, "golden", "*.info.json"))
		for _, g := range goldens {
			base := strings.TrimSuffix(filepath.Base(g), ".info.json")
			path := filepath.Join(dir, base)
			stdout, stderr, code := runCrit(nil, "info", path)
			want := mustRead(t, g)
			var doc struct {
				Entries []json.RawMessage `json:"entries"`
			}
			if err := json.Unmarshal(mustRead(t, filepath.Join(dir, "golden", base+".json")), &doc); err != nil {
				t.Fatalf("%s: %v", base, err)
			}
			k, _, _ := magic.ForFile(base)
			entries := len(doc.Entries)
			if k != nil && k.First != nil && k.Extra == magic.ExtraNone {
				entries-- // crit's info does not count the pagemap head
			}
			if code != 0 {
				t.Errorf("critq info %s: exit %d: %s", path, code, stderr)
				continue
			}
			var got struct {
				Magic string
				Count int
			}
			if err := json.Unmarshal(stdout, &got); err != nil {
				t.Fatalf("info %s: %v", path, err)
			}
			switch {
			case len(want) == 0: // crit failed (B3, B4): critq counts right
				if got.Count != entries {
					t.Errorf("critq info %s: count %d, want %d entries (crit failed: bug B3/B4)", path, got.Count, entries)
				}
			case !bytes.Equal(stdout, want):
				if k == nil || k.Extra == magic.ExtraNone || got.Count != entries {
					t.Errorf("critq info %s = %s, want %s", path, stdout, want)
				}
				// else crit miscounted a kind with extras (bug B4)
			}
			n++
		}
	}
	t.Logf("%d images counted", n)
}

// TestCritRoundTripCLI runs decode and encode through files and through
// stdin and stdout for every image of the test dumps.
func TestCritRoundTripCLI(t *testing.T) {
	paths, _ := filepath.Glob("../testdata/dumps/*/*.img")
	dir := t.TempDir()
	for _, path := range paths {
		if k, _, ok := magic.ForFile(filepath.Base(path)); ok && k.Raw {
			continue
		}
		orig := mustRead(t, path)
		doc, stderr, code := runCrit(orig, "decode", "--pretty")
		if code != 0 {
			t.Fatalf("decode --pretty < %s: %s", path, stderr)
		}
		img, stderr, code := runCrit(doc, "encode")
		if code != 0 || !bytes.Equal(img, orig) {
			t.Errorf("encode(decode --pretty %s): exit %d, %s; same bytes %v", path, code, stderr, bytes.Equal(img, orig))
		}
		jsonPath, imgPath := filepath.Join(dir, "x.json"), filepath.Join(dir, "x.img")
		if _, stderr, code := runCrit(nil, "decode", "-i", path, "-o", jsonPath); code != 0 {
			t.Fatalf("decode -i %s: %s", path, stderr)
		}
		if _, stderr, code := runCrit(nil, "encode", "-i", jsonPath, "-o", imgPath); code != 0 || !bytes.Equal(mustRead(t, imgPath), orig) {
			t.Errorf("encode -i (decode -i %s): exit %d, %s", path, code, stderr)
		}
	}
}

// critDumpDirs lists the test dumps and, when present, the corpus dumps
// (pre-dump steps included); CRITQ_REQUIRE_CORPUS=1 makes the corpus
// mandatory.
func critDumpDirs(t *testing.T) []string {
	dirs, _ := filepath.Glob("../testdata/dumps/*")
	corpus := "../../shared/corpus"
	if _, err := os.Stat(corpus); err != nil {
		if os.Getenv("CRITQ_REQUIRE_CORPUS") == "1" {
			t.Fatalf("CRITQ_REQUIRE_CORPUS=1 but %s is absent", corpus)
		}
		return dirs
	}
	more, _ := filepath.Glob(corpus + "/*/golden")
	steps, _ := filepath.Glob(corpus + "/*/*/golden")
	for _, g := range append(more, steps...) {
		dirs = append(dirs, filepath.Dir(g))
	}
	return dirs
}
