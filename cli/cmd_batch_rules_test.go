package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/proto/images"
)

// ruleRecord is a record of critq -f.
type ruleRecord struct {
	Dump, Rule, Query string
	Value             json.RawMessage
}

// rulePreview is the value of a rule's record.
type rulePreview struct {
	Kind                               string
	Entries, Matched, Changed, Dropped int
	Changes                            []struct {
		Image    string
		Entry    int
		Field    *string
		Old, New json.RawMessage
	}
}

// goldenFiles returns the entries of crit's JSON of files.img in dir, nil
// when crit has none.
func goldenFiles(t *testing.T, dir string) []map[string]json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "golden", "files.img.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var img struct{ Entries []map[string]json.RawMessage }
	if err := json.Unmarshal(b, &img); err != nil {
		t.Fatalf("%s: golden files.img.json: %v", dir, err)
	}
	return img.Entries
}

// TestBatchRules previews two chained rules over every dump (the testdata
// dumps, and the corpus when it is there) and checks each change against
// crit's JSON of files.img: the first rule renames every regular file, the
// second drops the renamed /dev/null entries, seeing what the first made
// of them. Nothing is written.
func TestBatchRules(t *testing.T) {
	script := filepath.Join(t.TempDir(), "rules.critq")
	const text = "# rename, then drop\n" +
		"rule files: e.type == REG ? e.with({\"reg.name\": \"/x\" + e.reg.name}) : e\n" +
		"n: tasks.size()\n" +
		"rule files: (e.type == REG &&\n    e.reg.name == \"/x/dev/null\") ? drop() : e\n"
	if err := os.WriteFile(script, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	dirs := critDumpDirs(t)
	before, err := os.ReadFile(filepath.Join(dirs[0], "files.img"))
	if err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCLI(t, nil, append([]string{"-f", script, "--format", "json", "-j", "2"}, dirs...)...)
	if code != exitOK || errs != "" {
		t.Fatalf("critq -f %s (%d dumps): code %d, stderr %q", script, len(dirs), code, errs)
	}
	var recs []ruleRecord
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("--format json: %v", err)
	}
	if len(recs) != 3*len(dirs) {
		t.Fatalf("%d records, wanted 3 per dump (%d dumps)", len(recs), len(dirs))
	}
	renamed, dropped := 0, 0
	for i, dir := range dirs {
		q, r1, r2 := recs[3*i], recs[3*i+1], recs[3*i+2]
		if q.Dump != dir || q.Query != "n" || r1.Dump != dir || r1.Rule != script+":2" || r2.Dump != dir || r2.Rule != script+":4" {
			t.Fatalf("records of %s: (%s %s%s) (%s %s) (%s %s), wanted the query n, then rules %s:2 and %s:4",
				dir, q.Dump, q.Query, q.Rule, r1.Dump, r1.Rule, r2.Dump, r2.Rule, script, script)
		}
		ents := goldenFiles(t, dir)
		var wantRename, wantDrop []string
		for j, e := range ents {
			var typ, name string
			var reg struct{ Name string }
			json.Unmarshal(e["type"], &typ)
			json.Unmarshal(e["reg"], &reg)
			if typ != "REG" {
				continue
			}
			name = reg.Name
			wantRename = append(wantRename, change(j, "reg.name", name, "/x"+name))
			if name == "/dev/null" {
				wantDrop = append(wantDrop, change(j, "", "/x/dev/null", ""))
			}
		}
		for _, rc := range []struct {
			rec  ruleRecord
			want []string
		}{{r1, wantRename}, {r2, wantDrop}} {
			var v rulePreview
			if err := json.Unmarshal(rc.rec.Value, &v); err != nil {
				t.Fatalf("%s: %s: %v", dir, rc.rec.Rule, err)
			}
			var got []string
			for _, c := range v.Changes {
				if c.Image != "files.img" {
					t.Errorf("%s: %s: change of %s, wanted files.img", dir, rc.rec.Rule, c.Image)
				}
				field, old := "", string(c.Old)
				if c.Field != nil {
					field = *c.Field
				} else {
					// A drop: old is the whole entry, new null.
					var ent struct{ Reg struct{ Name string } }
					json.Unmarshal(c.Old, &ent)
					old = `"` + ent.Reg.Name + `"`
					if string(c.New) != "null" {
						t.Errorf("%s: %s: dropped entry %d has new %s, wanted null", dir, rc.rec.Rule, c.Entry, c.New)
					}
				}
				got = append(got, change(c.Entry, field, unquote(old), unquote(string(c.New))))
			}
			if strings.Join(got, "\n") != strings.Join(rc.want, "\n") {
				t.Errorf("%s: %s changes:\n%s\nwanted (from crit's files.img.json):\n%s", dir, rc.rec.Rule, strings.Join(got, "\n"), strings.Join(rc.want, "\n"))
			}
			if v.Kind != "FILES" || v.Entries != len(ents) && ents != nil || v.Changed != len(rc.want) {
				t.Errorf("%s: %s: kind %s, %d entries, %d changed; wanted FILES, %d, %d", dir, rc.rec.Rule, v.Kind, v.Entries, v.Changed, len(ents), len(rc.want))
			}
		}
		if !strings.Contains(string(r2.Value), `"dropped":`+strconv.Itoa(len(wantDrop))+",") {
			t.Errorf("%s: %s, wanted %d dropped", dir, r2.Value, len(wantDrop))
		}
		renamed += len(wantRename)
		dropped += len(wantDrop)
	}
	if renamed == 0 || dropped == 0 {
		t.Errorf("the rules renamed %d and dropped %d entries: the test checks nothing", renamed, dropped)
	}
	t.Logf("%d dumps: %d renames and %d drops checked against crit", len(dirs), renamed, dropped)
	after, err := os.ReadFile(filepath.Join(dirs[0], "files.img"))
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("%s/files.img changed by a preview (%v)", dirs[0], err)
	}
}

// change renders a change for comparison.
func change(entry int, field, old, nw string) string {
	return strings.Join([]string{strconv.Itoa(entry), field, old, nw}, " | ")
}

// unquote returns the string of a JSON string, "" for null, any other JSON
// as it is.
func unquote(s string) string {
	var v string
	if json.Unmarshal([]byte(s), &v) == nil {
		return v
	}
	if s == "null" {
		return ""
	}
	return s
}

// TestBatchRuleErrors checks the errors of rules in a script: placed in the
// script with a caret, before any dump is read.
func TestBatchRuleErrors(t *testing.T) {
	const d = "../testdata/dumps/sleep-plain"
	for _, tc := range []struct {
		name, script string
		code         int
		stderr       string
	}{
		{"type error", "n: tasks.size()\nrule files: e.with({\"reg.name\": 1})\n", exitCompile,
			"<stdin>:2:33: with(): reg.name is a string, not int\n | rule files: e.with({\"reg.name\": 1})\n | ................................^\n"},
		{"unknown kind", "rule nope: e\n", exitCompile, "<stdin>:1:1: unknown image kind \"nope\"\n | rule nope: e\n | ^\n"},
		{"wrong type", "rule core: 1\n", exitCompile, "<stdin>:1:12: the rule returns int"},
		{"eval error", "rule files: e.reg.name.size() > 0 ? e.with({\"reg.name\": e.reg.name.substring(100)}) : e\n", exitError,
			"critq: " + d + ": files.img: entry 0 at offset 0x8: <stdin>:1: index out of range: 100\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			c := &cli{stdin: strings.NewReader(tc.script), stdout: &out, stderr: &errb, env: func(string) string { return "" }}
			code := c.main([]string{"-f", "-", d})
			if code != tc.code || !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("critq -f - <<< %q: code %d, stderr %q; wanted %d, %q", tc.script, code, errb.String(), tc.code, tc.stderr)
			}
		})
	}
}

// TestTransformRulesFile checks that one rules file previews with critq -f
// and applies with critq transform -f, with the batch script syntax
// (comments, continuation, a triple-quoted string), and that the preview
// shows what transform writes.
func TestTransformRulesFile(t *testing.T) {
	dir := transformDump(t, "sleep-plain")
	// One line, then the same rule continued inside parentheses.
	const oneLine = "# move the binary\n" +
		"rule files: e.type == REG && e.reg.name == \"/usr/bin/sleep\" ? e.with({\"reg.name\": '''/opt/sleep # not a comment'''}) : e\n"
	const continued = "# move the binary\n" +
		"rule files: (e.type == REG && e.reg.name == \"/usr/bin/sleep\" # the binary\n" +
		"    ? e.with({\"reg.name\": '''/opt/sleep # not a comment'''})\n" +
		"    : e)\n"
	script := filepath.Join(t.TempDir(), "rules.critq")
	cont := filepath.Join(filepath.Dir(script), "cont.critq")
	for name, text := range map[string]string{script: oneLine, cont: continued} {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const want = `"changes":[{"image":"files.img","entry":0,"field":"reg.name","old":"/usr/bin/sleep","new":"/opt/sleep # not a comment"}]`
	for _, s := range []string{script, cont} {
		out, errs, code := runCLI(t, nil, "-f", s, dir)
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("critq -f %s: code %d, stdout %q, stderr %q; wanted %s", s, code, out, errs, want)
		}
		dst := filepath.Join(t.TempDir(), "out")
		if _, errs, code := runCLI(t, nil, "transform", "-f", s, dir, "-o", dst); code != exitOK {
			t.Fatalf("critq transform -f %s: code %d, stderr %q", s, code, errs)
		}
		d, err := dump.Open(dst)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := d.File("files.img").Messages()
		if err != nil {
			t.Fatal(err)
		}
		if got := msgs[0].(*images.FileEntry).GetReg().GetName(); got != "/opt/sleep # not a comment" {
			t.Errorf("critq transform -f %s: entry 0 is %q, wanted the name the preview showed", s, got)
		}
	}
	bad := filepath.Join(filepath.Dir(script), "bad.critq")
	if err := os.WriteFile(bad, []byte("# x\n\nrule files: e.with({\n  \"reg.nam\": 1})\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantErr := "critq: " + bad + ":4:3: with(): reg.nam: no field \"nam\" in critq.images.reg_file_entry"
	wantCaret := " |   \"reg.nam\": 1})\n | ..^\n"
	for _, args := range [][]string{{"transform", "-f", bad, dir, "--dry-run"}, {"-f", bad, dir}} {
		_, errs, code := runCLI(t, nil, args...)
		if code != exitCompile || !strings.HasPrefix(errs, wantErr) || !strings.HasSuffix(errs, wantCaret) {
			t.Errorf("critq %q: code %d, stderr %q; wanted %d, %q ... %q", args, code, errs, exitCompile, wantErr, wantCaret)
		}
	}
}
