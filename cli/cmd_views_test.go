package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/proto/images"
)

const sleepPlain = "../testdata/dumps/sleep-plain" // one task, 19635: sleep 1000

// rewriteImage rewrites every entry of the image at path with fn.
func rewriteImage(t *testing.T, path string, fn func(proto.Message)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := codec.NewBytesReader(b, codec.ReadOptions{Name: filepath.Base(path)})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := codec.NewWriter(&out, r.Header())
	if err != nil {
		t.Fatal(err)
	}
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := e.Message()
		if err != nil {
			t.Fatal(err)
		}
		fn(m)
		if err := w.WriteMessage(m, e.Extra); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// brokenDump copies sleep-plain to a temporary folder and breaks it with
// fn, given the path of the copy.
func brokenDump(t *testing.T, fn func(dir string)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sleep-plain")
	copyDumpFiles(t, sleepPlain, dir)
	fn(dir)
	return dir
}

func truncateFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// TestViewsBrokenImages checks that an image a view needs that cannot be
// read is one error line and exit 4, and that memory that cannot be read
// for a command line is one warning.
func TestViewsBrokenImages(t *testing.T) {
	emptyFiles := brokenDump(t, func(dir string) { truncateFile(t, filepath.Join(dir, "files.img"), 0) })
	badMM := brokenDump(t, func(dir string) {
		f, err := os.OpenFile(filepath.Join(dir, "mm-19635.img"), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte("XXXX"), 0); err != nil {
			t.Fatal(err)
		}
	})
	shortPages := brokenDump(t, func(dir string) { truncateFile(t, filepath.Join(dir, "pages-1.img"), 4096) })
	for _, c := range []struct {
		args   []string
		code   int
		stderr string // the one line of stderr begins so
	}{
		{[]string{"fds", emptyFiles}, exitBadImage, "critq: files.img: "},
		{[]string{"fds", emptyFiles, "19635"}, exitBadImage, "critq: files.img: "},
		{[]string{"maps", emptyFiles}, exitBadImage, "critq: files.img: "},
		{[]string{"sockets", emptyFiles}, exitBadImage, "critq: files.img: "},
		{[]string{"inspect", emptyFiles}, exitBadImage, "critq: files.img: "},
		{[]string{"x", emptyFiles, "fds"}, exitBadImage, "critq: files.img: "},
		{[]string{"x", emptyFiles, "mems"}, exitBadImage, "critq: files.img: "},
		{[]string{"mem", "search", emptyFiles, "sleep"}, exitBadImage, "critq: files.img: "},
		{[]string{"ps", emptyFiles}, exitOK, ""}, // ps reads no file names
		{[]string{"maps", badMM}, exitBadImage, "critq: mm-19635.img: "},
		{[]string{"x", badMM, "mems"}, exitBadImage, "critq: mm-19635.img: "},
		{[]string{"ps", badMM}, exitOK, "critq: warning: command line of pid 19635 not read, shown as [sleep]: mm-19635.img: "},
		{[]string{"inspect", badMM}, exitOK, "critq: warning: command line of pid 19635 not read, shown as [sleep]: mm-19635.img: "},
		{[]string{"ps", shortPages}, exitOK, "critq: warning: command line of pid 19635 not read, shown as [sleep]: pid 19635: 0x"},
		{[]string{"mem", shortPages, "19635", "0x7ffde770dfa4", "16"}, exitBadImage, "critq: pid 19635: 0x7ffde770dfa4: pages-1.img: "},
		{[]string{"mem", "search", shortPages, "HOME=/root"}, exitBadImage, "critq: pid 19635: "},
	} {
		out, stderr, code := runViews(c.args...)
		lines := strings.Count(stderr, "\n")
		if code != c.code || !strings.HasPrefix(stderr, c.stderr) || (c.stderr == "") != (lines == 0) || lines > 1 {
			t.Errorf("critq %q: exit %d, stderr %q; wanted exit %d and one line %q...", c.args, code, stderr, c.code, c.stderr)
		}
		if c.code == exitOK && c.args[0] == "ps" && strings.Contains(out, "sleep 1000") == (c.stderr != "") {
			t.Errorf("critq %q: command line shown %v, warned %v:\n%s", c.args, strings.Contains(out, "sleep 1000"), c.stderr != "", out)
		}
	}
}

// TestViewsJSON renders every view of a dump whose file names and comm
// hold bytes that are not UTF-8 and & < > as JSON: valid JSON, with & < >
// as they are.
func TestViewsJSON(t *testing.T) {
	const odd = "\xff&<>"
	dir := brokenDump(t, func(dir string) {
		rewriteImage(t, filepath.Join(dir, "files.img"), func(m proto.Message) {
			if r := m.(*images.FileEntry).GetReg(); r != nil {
				r.Name = proto.String(r.GetName() + odd)
			}
		})
		rewriteImage(t, filepath.Join(dir, "core-19635.img"), func(m proto.Message) {
			tc := m.(*images.CoreEntry).GetTc()
			tc.Comm = proto.String(tc.GetComm() + odd)
		})
	})
	for _, args := range [][]string{
		{"ps", dir}, {"maps", dir}, {"maps", dir, "19635"}, {"fds", dir}, {"sockets", dir}, {"inspect", dir},
		{"x", dir, "ps"}, {"x", dir, "fds"}, {"x", dir, "mems"}, {"x", dir, "rss"},
	} {
		out, stderr, code := runViews(append(args, "--format", "json")...)
		if code != exitOK || !json.Valid([]byte(out)) {
			t.Errorf("critq %q --format json: exit %d, stderr %q, valid JSON %v", args, code, stderr, json.Valid([]byte(out)))
		}
		if strings.Contains(out, `\u0026`) || (args[0] != "sockets" && !strings.Contains(out, `\ufffd&<>`)) {
			t.Errorf("critq %q --format json: & < > escaped or the odd name missing:\n%s", args, out)
		}
	}
}

// TestMemSearchJSON checks that every line of mem search --format ndjson is a
// JSON object whose hex fields are the bytes matched and around.
func TestMemSearchJSON(t *testing.T) {
	out, stderr, code := runViews("mem", "search", "--format", "ndjson", "--context", "8", sleepPlain, "HOME=/root")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, l := range lines {
		var h searchHit
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&h); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		match, err := hex.DecodeString(h.MatchHex)
		if err != nil || string(match) != "HOME=/root" || h.Match != "HOME=/root" {
			t.Errorf("match %q, match_hex %q", h.Match, h.MatchHex)
		}
		before, err1 := hex.DecodeString(h.BeforeHex)
		after, err2 := hex.DecodeString(h.AfterHex)
		if errors.Join(err1, err2) != nil || len(before) != 8 || len(after) != 8 || after[0] != 0 {
			t.Errorf("before %x, after %x", before, after)
		}
		if h.PID != 19635 || h.Addr != "0x7ffde770dfa4" || h.VMA != (searchVMA{"0x7ffde76ed000", "0x7ffde770e000", "rw-p", "[stack]"}) {
			t.Errorf("hit %+v", h)
		}
	}
	if len(lines) != 1 {
		t.Errorf("%d matches, wanted 1:\n%s", len(lines), out)
	}
}

// TestViewExitCodes checks the exit codes shared by the views and mem: a
// pid not in the dump is a usage error everywhere, a file that is not a
// dump is a bad image.
func TestViewExitCodes(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage.tar.gz")
	if err := os.WriteFile(garbage, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const noTask = "critq: " + sleepPlain + ": no task 7 (tasks: [19635])\n"
	notDump := "critq: " + garbage + ": not a CRIU dump or checkpoint archive (tar, tar.gz, tar.zst)\n"
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"maps", sleepPlain, "7"}, exitUsage, noTask},
		{[]string{"fds", sleepPlain, "7"}, exitUsage, noTask},
		{[]string{"mem", sleepPlain, "7"}, exitUsage, noTask},
		{[]string{"mem", sleepPlain, "7", "0x1000"}, exitUsage, noTask},
		{[]string{"mem", "search", "-p", "7", sleepPlain, "sleep"}, exitUsage, noTask},
		{[]string{"mem", "search", sleepPlain, "no such bytes"}, exitFalse, ""},
		{[]string{"mem", sleepPlain, "19635", "0x1000", "16"}, exitError, "critq: pid 19635: 0x1000: not in any VMA\n"},
		{[]string{"ps", garbage}, exitBadImage, notDump},
		{[]string{"x", garbage, "ps"}, exitBadImage, notDump},
		{[]string{"mem", "search", garbage, "x"}, exitBadImage, notDump},
		{[]string{"tasks.size()", garbage}, exitBadImage, notDump},
	} {
		_, stderr, code := runViews(c.args...)
		if code != c.code || stderr != c.stderr {
			t.Errorf("critq %q: exit %d, stderr %q; wanted exit %d, stderr %q", c.args, code, stderr, c.code, c.stderr)
		}
	}
	for _, cmd := range []string{"maps", "fds", "mem", "mem search"} {
		out, _, _ := runViews(append(strings.Fields(cmd), "-h")...)
		if !strings.Contains(out, "A PID that is not in the dump is a usage error (exit 2)") {
			t.Errorf("critq %s -h does not say what a pid not in the dump does", cmd)
		}
	}
	if out, _, _ := runViews("mem", "search", "-h"); !strings.Contains(out, "Exit status 1 when nothing matches") {
		t.Errorf("critq mem search -h does not document exit 1")
	}
}

// TestQueryJSONNoHTMLEscapes checks a query's JSON output keeps & < >.
func TestQueryJSONNoHTMLEscapes(t *testing.T) {
	out, stderr, code := runViews(`{"a&b": "<c>"}`, sleepPlain)
	if code != exitOK || out != `{"a&b":"<c>"}`+"\n" {
		t.Errorf("exit %d, stderr %q, stdout %q", code, stderr, out)
	}
}
