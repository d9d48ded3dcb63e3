package cli

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/codec/critjson"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/rules"
	"github.com/critq/critq/transform"
)

// transformDump returns the directory of a test dump: a copy of
// testdata/dumps/NAME, or of the corpus dump NAME (skipped when the corpus
// is absent, unless CRITQ_REQUIRE_CORPUS=1).
func transformDump(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("..", "testdata", "dumps", name)
	if _, err := os.Stat(src); err != nil {
		src = filepath.Join("..", "..", "shared", "corpus", name)
		if _, err := os.Stat(src); err != nil {
			if os.Getenv("CRITQ_REQUIRE_CORPUS") == "1" {
				t.Fatalf("corpus dump %s: %v", name, err)
			}
			t.Skipf("corpus dump %s absent", name)
		}
	}
	dst := filepath.Join(t.TempDir(), name)
	copyDumpFiles(t, src, dst)
	return dst
}

// copyDumpFiles copies the regular files of src (the images, not golden/
// or proc/) to dst.
func copyDumpFiles(t *testing.T, src, dst string) {
	t.Helper()
	testcorpus.CopyFiles(t, src, dst)
}

// goldenDir returns the golden/ folder of the original of a test dump.
func goldenDir(name string) string {
	g := filepath.Join("..", "testdata", "dumps", name, "golden")
	if _, err := os.Stat(g); err == nil {
		return g
	}
	return filepath.Join("..", "..", "shared", "corpus", name, "golden")
}

// imageJSON is critq's plain crit JSON of an image file.
func imageJSON(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := codec.NewBytesReader(b, codec.ReadOptions{Name: filepath.Base(path)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := critjson.Encode(&buf, r, critjson.Options{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// changedPaths diffs crit 4.2's golden JSON of an image against critq's JSON
// of a file.
func changedPaths(t *testing.T, golden, path string) []string {
	t.Helper()
	g, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	diff, err := rules.DiffJSON(g, imageJSON(t, path))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range diff {
		out = append(out, d.Path+": "+d.Old+" -> "+d.New)
	}
	return out
}

// TestTransformCorpus runs the transforms of the issue on corpus dumps and
// checks, against crit 4.2's golden JSON of the original images, that
// exactly the intended fields changed, and that every other file is
// byte-identical.
func TestTransformCorpus(t *testing.T) {
	cases := []struct {
		name string
		dump string
		args []string
		// want maps each changed image to the changes of its crit JSON
		// against the golden JSON of the original.
		want map[string][]string
		// warn holds strings the warnings must contain.
		warn []string
	}{{
		name: "rename regular file",
		dump: "sleep-plain",
		args: []string{`files: e.type == REG && e.reg.name.startsWith("/srv/critq-cases/") ? e.with({"reg.name": e.reg.name.replace("/srv/critq-cases/", "/opt/cases/")}) : e`},
		want: map[string][]string{"files.img": {
			`entries[18].reg.name: "/srv/critq-cases/run/sleep-plain" -> "/opt/cases/run/sleep-plain"`,
		}},
	}, {
		name: "rename with sugar",
		dump: "sleep-plain",
		args: []string{"--kind", "files", "--where", `e.reg.name == "/usr/bin/sleep"`, "--set", `reg.name="/opt/bin/sleep"`},
		want: map[string][]string{"files.img": {
			`entries[0].reg.name: "/usr/bin/sleep" -> "/opt/bin/sleep"`,
		}},
	}, {
		name: "tcp listening and established socket address and port",
		dump: "tcp",
		args: []string{
			"--rule", `files: e.isk.ino == 382118u ? e.with({"isk.src_addr": "10.0.0.5", "isk.src_port": 47400}) : e`,
			"--rule", `files: e.isk.ino == 382120u ? e.with({"isk.src_addr[0]": "10.0.0.6", "isk.src_port": 51000}) : e`,
		},
		want: map[string][]string{"files.img": {
			// 10.0.0.5 is 0x0500000a read little-endian.
			`entries[5].isk.src_port: 47310 -> 47400`,
			`entries[5].isk.src_addr[0]: 16777343 -> 83886090`,
			`entries[7].isk.src_port: 51264 -> 51000`,
			`entries[7].isk.src_addr[0]: 16777343 -> 100663306`,
		}},
		warn: []string{"files.img entry 8 (socket 382121, 127.0.0.1:47310 -> 127.0.0.1:51264) still names 127.0.0.1:51264"},
	}, {
		name: "core rlimit and register",
		dump: "sleep-plain",
		args: []string{`core: e.with({"tc.rlimits.rlimits[7].cur": 1024, "thread_info.gpregs.r15": 0x1234})`},
		want: map[string][]string{"core-19635.img": {
			`entries[0].thread_info.gpregs.r15: 140728486386136 -> 4660`,
			`entries[0].tc.rlimits.rlimits[7].cur: 20000 -> 1024`,
		}},
	}, {
		name: "drop one inotify watch",
		dump: "fds-zoo",
		args: []string{`files: e.type == INOTIFY ? e.with({"ify.wd": e.ify.wd.filter(w, w.wd != 2)}) : e`},
		want: map[string][]string{"files.img": {
			`entries[20].ify.wd[0]: {"id":0,"i_ino":860812,"mask":14,"ignored_mask":0,"s_dev":266338304,"wd":2,"f_handle":{"bytes":8,"type":1,"handle":[11354735856549962380,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"path":"/srv/critq-cases/run/fds-zoo/watched.txt"}} -> (unset)`,
		}},
	}, {
		name: "drop one inotify watch, zdtm",
		dump: "zdtm-inotify00",
		args: []string{"--kind", "files", "--where", "e.type == INOTIFY", "--set", "ify.wd=e.ify.wd.filter(w, w.wd != 1)"},
		want: map[string][]string{"files.img": {
			`entries[7].ify.wd[1]: {"id":0,"i_ino":852047,"mask":1800,"ignored_mask":0,"s_dev":266338304,"wd":1,"f_handle":{"bytes":8,"type":1,"handle":[3696744146272059471,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"path":"/opt/criu/test/zdtm/static/inotify00.test"}} -> (unset)`,
		}},
	}, {
		name: "ghost file owner and contents",
		dump: "fds-zoo",
		args: []string{`ghost-file: e.ino == 860813u ? e.with({"uid": 1000u, "extra": extra + b"!"}) : e`},
		// The contents are "this file was deleted while open\n", then "!".
		want: map[string][]string{"ghost-file-2.img": {
			`entries[0].uid: 0 -> 1000`,
			`entries[0].extra: "dGhpcyBmaWxlIHdhcyBkZWxldGVkIHdoaWxlIG9wZW4K\n" -> "dGhpcyBmaWxlIHdhcyBkZWxldGVkIHdoaWxlIG9wZW4KIQ==\n"`,
		}},
	}, {
		name: "ghost chunk contents",
		dump: "zdtm-ghost_holes00",
		args: []string{`ghost-chunk: e.off == 8192u ? e.with({"extra": b"hole"}) : e`},
		// The chunk's len follows its data; "…" elides the old 4096 bytes.
		want: map[string][]string{"ghost-file-1.img": {
			`entries[2].len: 4096 -> 4`,
			`entries[2].extra: "APpM7Ec1y+d5pWl3…" -> "aG9sZQ==\n"`,
		}},
	}, {
		name: "pagemap head and an entry",
		dump: "zdtm-ghost_holes00",
		// There is no pages-7.img: validation refuses the result unless
		// --force (TestTransformValidatePagemapWithinPages).
		args: []string{"--force", "--rule", `pagemap-head: e.with({"pages_id": 7u})`, "--rule", `pagemap: e.vaddr == 93873603608576u ? e.with({"flags": "PE_PRESENT"}) : e`},
		want: map[string][]string{"pagemap-71.img": {
			`entries[0].pages_id: 2 -> 7`,
			`entries[3].flags: 6 -> 4`, // PE_LAZY | PE_PRESENT -> PE_PRESENT
		}},
	}, {
		name: "sub-message built in the rule",
		dump: "sleep-plain",
		args: []string{`files: e.type == REG && e.reg.name == "/usr/bin/sleep" ? e.with({"reg.fown": fown_entry{uid: 5u, euid: 6u, signum: 0u, pid_type: 0u, pid: 0u}}) : e`},
		want: map[string][]string{"files.img": {
			`entries[0].reg.fown.uid: 0 -> 5`,
			`entries[0].reg.fown.euid: 0 -> 6`,
		}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := transformDump(t, tc.dump)
			out := filepath.Join(t.TempDir(), "out")
			args := append(append([]string{"transform"}, tc.args...), dir, "-o", out)
			stdout, stderr, code := runCLI(t, nil, args...)
			if code != exitOK {
				t.Fatalf("critq %q: exit %d, stderr:\n%s", args, code, stderr)
			}
			if stdout != "" {
				t.Errorf("critq %q: stdout %q, want nothing", args, stdout)
			}
			for _, w := range tc.warn {
				if !strings.Contains(stderr, w) {
					t.Errorf("critq %q: stderr lacks warning %q:\n%s", args, w, stderr)
				}
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				name := e.Name()
				want, changed := tc.want[name]
				if !changed {
					a, _ := os.ReadFile(filepath.Join(dir, name))
					b, err := os.ReadFile(filepath.Join(out, name))
					if err != nil || !bytes.Equal(a, b) {
						t.Errorf("%s: not byte-identical to the original (err %v)", name, err)
					}
					continue
				}
				golden := filepath.Join(goldenDir(tc.dump), name+".json")
				if base := changedPaths(t, golden, filepath.Join(dir, name)); len(base) != 0 {
					t.Fatalf("%s: critq's JSON of the original differs from crit's golden JSON: %q", name, base)
				}
				got := changedPaths(t, golden, filepath.Join(out, name))
				if !slices.EqualFunc(got, want, elidedMatch) {
					t.Errorf("%s: golden JSON against the result:\ngot  %q\nwant %q", name, got, want)
				}
			}
		})
	}
}

// elidedMatch reports whether got is want, where a "…" in want stands for
// any text.
func elidedMatch(got, want string) bool {
	head, tail, ok := strings.Cut(want, "…")
	if !ok {
		return got == want
	}
	return len(got) >= len(head)+len(tail) && strings.HasPrefix(got, head) && strings.HasSuffix(got, tail)
}

// TestTransformHostile checks that bad rules fail with their exit code and a
// clear message, and that nothing is written.
func TestTransformHostile(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no such field", []string{`files: e.with({"reg.nam": "/x"})`}, exitCompile, `no field "nam" in critq.images.reg_file_entry`},
		{"wrong value type", []string{`files: e.with({"reg.name": 42})`}, exitCompile, "reg.name is a string, not int"},
		{"wrong result type", []string{`files: e.reg`}, exitCompile, "the rule returns critq.images.reg_file_entry"},
		{"another kind's message", []string{`core: drop() == e ? e : e.with({"tc.comm": 1})`}, exitCompile, "tc.comm is a string, not int"},
		{"type error", []string{`files: e.type + "x" == 1 ? e : e`}, exitCompile, "no matching overload"},
		{"unknown kind", []string{`filez: e`}, exitCompile, `unknown image kind "filez"`},
		{"pages", []string{`pages: e`}, exitCompile, "raw data and are never rewritten"},
		{"no kind", []string{`e.with({})`}, exitCompile, "a rule is KIND: EXPR"},
		{"path not literal", []string{`files: e.with({e.reg.name: 1})`}, exitCompile, "a field path must be a string literal"},
		{"map not literal", []string{`files: cel.bind(m, {"reg.name": "x"}, e.with(m))`}, exitCompile, "with() takes a map literal"},
		{"out of range", []string{`files: e.with({"isk.src_port": -1})`}, exitCompile, "-1 is out of range for uint32"},
		{"bad enum name", []string{`files: e.with({"type": "REGULAR"})`}, exitCompile, `"REGULAR" is not a value of critq.images.fd_types`},
		{"bad address", []string{`files: e.with({"isk.src_addr": "10.0.0.300"})`}, exitCompile, "is not an IP address"},
		{"bad flags", []string{`files: e.with({"reg.flags": "O_RDWR | O_NOPE"})`}, exitCompile, "unknown names"},
		{"runtime range", []string{`files: e.type == REG ? e.with({"reg.pos": int(e.reg.pos) - 1000000}) : e`}, exitError, "out of range for uint64"},
		{"runtime index", []string{`files: e.type == REG ? e.with({"reg.build_id[9]": 1}) : e`}, exitError, "no [9]"},
		{"incomplete message", []string{`files: e.type == REG ? e.with({"isk.src_port": 1}) : e`}, exitError, "required field"},
		{"part of another type", []string{`files: e.reg.name == "/usr/bin/sleep" ? e.with({"pipe.pipe_id": 1u}) : e`}, exitError, "files.img: entry 0 at offset 0x8: rule 1: the REG entry has no pipe part: with() created one, and its required field pipe.id is not set"},
		{"huge repeated field", []string{`files: e.type == REG ? e.with({"reg.build_id": ` + doubled(22) + `}) : e`}, exitError, "4194304 elements: more than the limit of 1048576"},
		{"never terminates", []string{"--cost", "1000000", `files: [1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(f, [1,2,3,4,5,6,7,8,9,10].all(g, [1,2,3,4,5,6,7,8,9,10].all(h, true))))))) ? e : e`}, exitError, "cost limit"},
		{"timeout", []string{"--timeout", "50ms", "--cost", "0", `files: [1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(f, [1,2,3,4,5,6,7,8,9,10].all(g, [1,2,3,4,5,6,7,8,9,10].all(h, [1,2,3,4,5,6,7,8,9,10].all(i, true)))))))) ? e : e`}, exitError, "rules stopped after 50ms"},
		{"changes nothing", []string{`files: e.type == REG && e.reg.name == "/nowhere" ? drop() : e`}, exitError, "rule 1 changed nothing"},
		{"no output", []string{`files: e`}, exitUsage, "give one of -o OUT, --in-place and --dry-run"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := transformDump(t, "sleep-plain")
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"transform"}, tc.args...)
			args = append(args, dir)
			if tc.code != exitUsage {
				args = append(args, "-o", out)
			}
			_, stderr, code := runCLI(t, nil, args...)
			if code != tc.code || !strings.Contains(stderr, tc.msg) {
				t.Errorf("critq %q: exit %d, stderr:\n%s\nwant exit %d and %q", args, code, stderr, tc.code, tc.msg)
			}
			if strings.Count(stderr, "critq: ERROR") > 1 || !strings.HasSuffix(stderr, "\n") || strings.HasSuffix(stderr, "\n\n") {
				t.Errorf("critq %q: stderr not one error ending in one newline: %q", args, stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("critq %q: wrote %s", args, out)
			}
		})
	}
}

// TestTransformOutputNotEmpty checks that a non-empty -o is a usage error
// found before the dump is read (the rule would fail on it).
func TestTransformOutputNotEmpty(t *testing.T) {
	dir := transformDump(t, "sleep-plain")
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"transform", `files: e.type != REG ? e.with({"reg.name": "/x"}) : e`, filepath.Join(dir, "nowhere"), "-o", out}
	_, stderr, code := runCLI(t, nil, args...)
	if want := "critq: transform: " + out + ": output directory is not empty\n"; code != exitUsage || stderr != want {
		t.Errorf("critq %q: exit %d, stderr %q, want exit %d and %q", args, code, stderr, exitUsage, want)
	}
}

// TestTransformDryRun checks the diff of --dry-run and that it writes
// nothing.
func TestTransformDryRun(t *testing.T) {
	dir := transformDump(t, "tcp")
	before := snapshot(t, dir)
	stdout, stderr, code := runCLI(t, nil, "transform", "--dry-run",
		`files: e.isk.ino == 382118u ? e.with({"isk.src_addr": "10.0.0.5", "isk.src_port": 47400, "isk.state": "CLOSE"}) : e`, dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := "files.img: entry 5\n" +
		"    isk.state: \"LISTEN\" -> \"CLOSE\"\n" +
		"    isk.src_port: 47310 -> 47400\n" +
		"    isk.src_addr[0]: \"127.0.0.1\" -> \"10.0.0.5\"\n"
	if stdout != want {
		t.Errorf("dry run printed\n%s\nwant\n%s", stdout, want)
	}
	if !strings.Contains(stderr, "critq: rule 1: FILES: 16 entries, 1 matched, 1 changed\n") {
		t.Errorf("dry run stderr lacks the counts:\n%s", stderr)
	}
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Errorf("dry run changed the dump")
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = string(b)
	}
	return out
}

// TestTransformInPlace rewrites a dump in place, then recovers an
// interrupted run.
func TestTransformInPlace(t *testing.T) {
	dir := transformDump(t, "sleep-plain")
	orig, _ := os.ReadFile(filepath.Join(dir, "files.img"))
	_, stderr, code := runCLI(t, nil, "transform", "--in-place", `files: e.reg.name == "/usr/bin/sleep" ? e.with({"reg.name": "/bin/sleep"}) : e`, dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "files.img.orig")); !bytes.Equal(b, orig) {
		t.Errorf("files.img.orig is not the old image")
	}
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := d.File("files.img").Messages()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(critjson.AppendMessage(nil, msgs[0].ProtoReflect(), critjson.Options{})); !strings.Contains(got, `"name": "/bin/sleep"`) {
		t.Errorf("after --in-place entry 0 is %s", got)
	}

	// An interrupted run: the journal is written, the rename is not done.
	plan := &transform.Plan{Images: map[string][]byte{"files.img": orig}}
	func() {
		defer func() { _ = recover() }()
		_ = transform.ApplyInPlace(dir, plan, transform.InPlaceOptions{NoBackup: true, Step: func(s string) {
			if strings.HasPrefix(s, "rename") {
				panic("interrupted")
			}
		}})
	}()
	if _, stderr, code := runCLI(t, nil, "transform", "--dry-run", "files: e", dir); code != exitBadImage || !strings.Contains(stderr, "--recover") {
		t.Errorf("transform on an interrupted dump: exit %d, %s", code, stderr)
	}
	for _, args := range [][]string{{"decode", "-i"}, {"show"}, {"info"}} {
		args = append(args, filepath.Join(dir, "core-19635.img"))
		if _, stderr, code := runCLI(t, nil, args...); code != exitBadImage || !strings.Contains(stderr, dump.ErrInterrupted.Error()) {
			t.Errorf("critq %q on an interrupted dump: exit %d, %s", args, code, stderr)
		}
	}
	stdout, stderr, code := runCLI(t, nil, "transform", "--recover", dir)
	if code != exitOK || !strings.Contains(stdout, "finished") {
		t.Errorf("--recover: exit %d, %s%s", code, stdout, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "files.img")); !bytes.Equal(b, orig) {
		t.Errorf("after --recover files.img is not the new image")
	}
}

// doubled returns a CEL list of 2^n elements built by doubling.
func doubled(n int) string {
	s := fmt.Sprintf("l%d", n)
	for i := n; i > 0; i-- {
		s = fmt.Sprintf("cel.bind(l%d, l%d + l%d, %s)", i, i-1, i-1, s)
	}
	return "cel.bind(l0, [1u], " + s + ")"
}
