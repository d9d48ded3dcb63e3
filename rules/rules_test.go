package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/proto/images"
	"github.com/critq/critq/transform"
)

func mustRules(t testing.TB, o RuleOptions, srcs ...string) []*Rule {
	t.Helper()
	var rs []RuleSource
	for i, s := range srcs {
		r, err := ParseRule(fmt.Sprintf("rule %d", i+1), s)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	rules, err := CompileRules(rs, o)
	if err != nil {
		t.Fatalf("CompileRules(%q): %v", srcs, err)
	}
	return rules
}

func mustOpenRuleDump(t testing.TB, dir string) *dump.Dump {
	t.Helper()
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRuleKind(t *testing.T) {
	cases := []struct{ name, want, err string }{
		{"files", "FILES", ""},
		{"FILES", "FILES", ""},
		{"Core", "CORE", ""},
		{"tcp-stream", "TCP_STREAM", ""},
		{"tcp_stream", "TCP_STREAM", ""},
		{"pipes-data", "PIPES_DATA", ""},
		{"sk-queues", "SK_QUEUES", ""},
		{"fdinfo", "FDINFO", ""},
		{"inotify", "INOTIFY_FILE", ""},
		{"mountpoints", "MNTS", ""},
		{"sigacts", "SIGACT", ""},
		{"pagemap-shmem", "SHMEM_PAGEMAP", ""},
		{"pages", "", "raw data and are never rewritten"},
		{"nope", "", `unknown image kind "nope"`},
	}
	for _, tc := range cases {
		k, err := RuleKind(tc.name)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("RuleKind(%q) error %v, wanted %q", tc.name, err, tc.err)
		case tc.err == "" && (err != nil || k.Name != tc.want):
			t.Errorf("RuleKind(%q) = %v, %v, wanted %s", tc.name, k, err, tc.want)
		}
	}
}

func TestParseRuleFile(t *testing.T) {
	cases := []struct {
		name, text string
		want       []RuleSource
		err        string
	}{
		{"two rules", "rule files: e # keep\nrule core: e.with({\"tc.comm\": \"x#y\"})\n", []RuleSource{
			{Where: "r:1", Kind: "files", Expr: "e"},
			{Where: "r:2", Kind: "core", Expr: `e.with({"tc.comm": "x#y"})`},
		}, ""},
		{"continued", "\nrule files: e.with({\n  \"reg.name\": \"/a\",  # the path\n  \"reg.pos\": 0})\nrule mm: e\n", []RuleSource{
			{Where: "r:2", Kind: "files", Expr: "e.with({\n  \"reg.name\": \"/a\",            \n  \"reg.pos\": 0})"},
			{Where: "r:5", Kind: "mm", Expr: "e"},
		}, ""},
		{"triple-quoted", "rule files: e.with({\"reg.name\": \"\"\"/a\n# b)\"\"\"})\n", []RuleSource{
			{Where: "r:1", Kind: "files", Expr: "e.with({\"reg.name\": \"\"\"/a\n# b)\"\"\"})"},
		}, ""},
		{"dashed kind", "  rule pipes-data: drop()", []RuleSource{{Where: "r:1", Kind: "pipes-data", Expr: "drop()"}}, ""},
		{"empty", "# nothing\n\n", nil, "r:1:1: no rules (rule KIND: EXPR)"},
		{"a query", "rule mm: e\nfiles: e\n", nil, "r:2:1: a rules file holds only rules: files is a named query (critq -f runs it); a rule is rule KIND: EXPR\n | files: e\n | ^"},
		{"a binding", "let x = 1\n", nil, "r:1:1: a rules file holds only rules: bindings"},
		{"no kind", "rule e.with({})\n", nil, "r:1:12: expected ':' after rule e.with"},
		{"open bracket", "rule files: e.with({\n", nil, "r:1:20: '{' left open at the end of the script"},
	}
	for _, tc := range cases {
		got, err := ParseRuleFile("r", tc.text)
		if tc.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("%s: ParseRuleFile error %v, wanted %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%s: ParseRuleFile = %d rules, %v, wanted %d", tc.name, len(got), err, len(tc.want))
			continue
		}
		for i, rs := range got {
			if w := tc.want[i]; rs.Where != w.Where || rs.Kind != w.Kind || rs.Expr != w.Expr {
				t.Errorf("%s: rule %d = %q %q %q, wanted %q %q %q", tc.name, i, rs.Where, rs.Kind, rs.Expr, w.Where, w.Kind, w.Expr)
			}
		}
	}
}

// TestRuleFileErrors checks that the compile errors of a rules file name
// the file, line and column, under the file's own line.
func TestRuleFileErrors(t *testing.T) {
	cases := []struct{ text, want string }{
		{"# rules\nrule files: e.with({\"reg.nam\": 1})\n",
			"r:2:21: with(): reg.nam: no field \"nam\" in critq.images.reg_file_entry (fields: id, flags, pos, fown, name, mnt_id, size, ext, mode, build_id, checksum, checksum_config, checksum_parameter)\n | rule files: e.with({\"reg.nam\": 1})\n | ....................^"},
		{"rule files: e.with({\n    \"reg.name\": 1})\n",
			"r:2:17: with(): reg.name is a string, not int\n |     \"reg.name\": 1})\n | ................^"},
		{"rule files: e)\n", "r:1:14: Syntax error: extraneous input ')' expecting <EOF>\n | rule files: e)\n | .............^"},
		{"rule files: \"e\n", "r:1:13: Syntax error: token recognition error at: '\"e'"},
		{"rule mm: e\n\nrule nope: e\n", "r:3:1: unknown image kind \"nope\"\n | rule nope: e\n | ^"},
		{"rule files: e.with({\"reg.nam\": 1, \"reg.name\": 2})\n", "r:1:21: with(): reg.nam: no field"},
	}
	for _, tc := range cases {
		rs, err := ParseRuleFile("r", tc.text)
		if err == nil {
			_, err = CompileRules(rs, RuleOptions{})
		}
		var re *RuleError
		if !errors.As(err, &re) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("CompileRules(ParseRuleFile(%q)) = %v, wanted a RuleError starting %q", tc.text, err, tc.want)
		}
	}
}

// TestRuleCompileErrors checks errors found when the rule compiles: with a
// caret at the key or value.
func TestRuleCompileErrors(t *testing.T) {
	cases := []struct{ rule, want string }{
		{`files: e.with({"reg.nam": 1})`, "ERROR: <input>:1:9: with(): reg.nam: no field \"nam\" in critq.images.reg_file_entry (fields: id, flags, pos, fown, name, mnt_id, size, ext, mode, build_id, checksum, checksum_config, checksum_parameter)\n | e.with({\"reg.nam\": 1})\n | ........^"},
		{`files: e.with({"reg.name": 1})`, "ERROR: <input>:1:21: with(): reg.name is a string, not int\n | e.with({\"reg.name\": 1})\n | ....................^"},
		{`files: e.type & 1 == 1 ? e.with({"reg.size": "x"}) : e`, "ERROR: <input>:1:39: with(): reg.size is an integer (uint64), not string"},
		{`mm: e.with({"vmas.prot": 1})`, "vmas is repeated: name one element, vmas[N]"},
		{`mm: e.with({"vmas[1].prot": "PROT_READ | PROT_NOPE"})`, "unknown names for prot"},
		{`files: e.with({"reg.name[0]": "x"})`, "name is not a repeated field"},
		{`files: e.with({"reg.fown": e.reg})`, "reg.fown is a critq.images.fown_entry, not critq.images.reg_file_entry"},
		{`files: e.with({"extra": b"x"})`, `no field "extra" in critq.images.file_entry`},
		{`pipes-data: e.with({"extra": 1})`, "extra is bytes, not int"},
		{`core: 1`, "the rule returns int"},
		{`files: 1.with({})`, "with() is a function of messages, not of int"},
	}
	for _, tc := range cases {
		rs, err := ParseRule("rule 1", tc.rule)
		if err == nil {
			_, err = CompileRules([]RuleSource{rs}, RuleOptions{})
		}
		var re *RuleError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CompileRules(%q) = %v, wanted a RuleError with %q", tc.rule, err, tc.want)
		}
	}
}

// TestRuleValues sets fields with every kind of value and reads them back.
func TestRuleValues(t *testing.T) {
	d := mustOpenRuleDump(t, "../testdata/dumps/tcp")
	rules := mustRules(t, RuleOptions{},
		`files: e.isk.ino == 382119u ? e.with({
			"isk.src_addr": "fd00::7", "isk.dst_addr": ["::2"], "isk.state": "CLOSE", "isk.flags": 3u,
			"isk.opts.so_sndbuf": 1 << 15, "isk.tcp_opts": null, "isk.v6only": false, "type": "INETSK"}) : e`)
	res, err := ApplyRules(context.Background(), d, rules)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 1 {
		t.Fatalf("ApplyRules: %d changes, wanted 1", len(res.Changes))
	}
	var got []string
	for _, f := range res.Changes[0].Fields() {
		got = append(got, f.Path+": "+f.Old+" -> "+f.New)
	}
	want := []string{
		`isk.state: "LISTEN" -> "CLOSE"`,
		`isk.flags: "0x2" -> "0x3"`,
		`isk.src_addr[0]: "::1" -> "fd00::7"`,
		`isk.dst_addr[0]: "::" -> "::2"`,
		`isk.opts.so_sndbuf: 16384 -> 32768`,
		`isk.v6only: true -> false`,
		`isk.tcp_opts: {"keepcnt":9,"keepidle":7200,"keepintvl":75} -> (unset)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Fields():\ngot  %q\nwant %q", got, want)
	}
}

// TestRuleChain checks that rules of a kind apply in order and count what
// they did.
func TestRuleChain(t *testing.T) {
	d := mustOpenRuleDump(t, "../testdata/dumps/sleep-plain")
	rules := mustRules(t, RuleOptions{},
		`files: e.type == REG && e.reg.name.startsWith("/usr/lib/locale/") ? e.with({"reg.name": "/L/" + e.reg.name.substring(16)}) : e`,
		`files: e.type == REG && e.reg.name.startsWith("/L/") ? e.with({"reg.name": e.reg.name}) : e`,
		`files: e.type == REG && e.reg.name == "/dev/null" ? drop() : e`,
		`core: e`)
	res, err := ApplyRules(context.Background(), d, rules)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range res.Stats {
		got = append(got, fmt.Sprintf("%d/%d/%d/%d", st.Entries, st.Matched, st.Changed, st.Dropped))
	}
	want := []string{"20/12/12/0", "20/12/0/0", "20/2/2/2", "1/0/0/0"}
	if !slices.Equal(got, want) {
		t.Errorf("stats entries/matched/changed/dropped = %q, wanted %q", got, want)
	}
	if len(res.Changes) != 14 || res.ChangedFiles()[0] != "files.img" {
		t.Errorf("%d changes in %q, wanted 14 in files.img", len(res.Changes), res.ChangedFiles())
	}
	w := res.Warnings(d)
	if len(w) != 3 || w[0] != "fdinfo-2.img: entry 0: fd 0 points at file 17, dropped (files.img entry 16)" {
		t.Errorf("Warnings() = %q, wanted fds 0, 1 and 2 at dropped files", w)
	}
}

// TestRuleExtras rewrites queued data and checks that the length fields
// follow and the image reads back.
func TestRuleExtras(t *testing.T) {
	cases := []struct {
		dump, rule, file string
		check            func(m proto.Message, x codec.ExtraParts) error
	}{
		{"pipes-fifo", `pipes-data: e.with({"extra": extra + b"!"})`, "pipes-data.img", func(m proto.Message, x codec.ExtraParts) error {
			if p := m.(*images.PipeDataEntry); int(p.GetBytes()) != len(x.Data) || !bytes.HasSuffix(x.Data, []byte("!")) {
				return fmt.Errorf("bytes %d, data %q", p.GetBytes(), x.Data)
			}
			return nil
		}},
		{"tcp", `tcp-stream: e.with({"inq": b"abc", "outq": outq + outq})`, "tcp-stream-5d239.img", func(m proto.Message, x codec.ExtraParts) error {
			if s := m.(*images.TcpStreamEntry); s.GetInqLen() != 3 || int(s.GetOutqLen()) != len(x.OutQ) || string(x.InQ) != "abc" {
				return fmt.Errorf("inq_len %d outq_len %d, inq %q outq %d bytes", s.GetInqLen(), s.GetOutqLen(), x.InQ, len(x.OutQ))
			}
			return nil
		}},
	}
	for _, tc := range cases {
		d := mustOpenRuleDump(t, filepath.Join("../testdata/dumps", tc.dump))
		res, err := ApplyRules(context.Background(), d, mustRules(t, RuleOptions{}, tc.rule))
		if err != nil {
			t.Fatalf("%s: %v", tc.rule, err)
		}
		changes := map[int]*transform.Change{}
		for _, c := range res.Changes {
			if c.File == tc.file {
				changes[c.Index] = &transform.Change{Payload: c.Payload, Extra: c.Extra}
			}
		}
		img, err := d.File(tc.file).Image()
		if err != nil || len(changes) == 0 {
			t.Fatalf("%s: %d changes in %s (%v)", tc.rule, len(changes), tc.file, err)
		}
		b, err := transform.RewriteImage(tc.file, img, changes)
		if err != nil {
			t.Fatal(err)
		}
		r, err := codec.NewBytesReader(b, codec.ReadOptions{Name: tc.file})
		if err != nil {
			t.Fatal(err)
		}
		ents, err := r.ReadAll()
		if err != nil {
			t.Fatalf("%s: new image does not read back: %v", tc.rule, err)
		}
		for _, ent := range ents {
			m, err := ent.Message()
			if err != nil {
				t.Fatal(err)
			}
			x, err := codec.SplitExtra(img.Header.Kind, img.Header.Order, ent)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.check(m, x); err != nil {
				t.Errorf("%s: entry %d: %v", tc.rule, ent.Index, err)
			}
		}
	}
}

func TestRuleLimits(t *testing.T) {
	d := mustOpenRuleDump(t, "../testdata/dumps/sleep-plain")
	cases := []struct {
		o    RuleOptions
		rule string
		want string
	}{
		{RuleOptions{MaxRepeated: 3}, `files: e.type == REG && size(e.reg.build_id) > 0 ? e.with({"reg.build_id": [1u, 2u, 3u, 4u]}) : e`, "4 elements: more than the limit of 3"},
		{RuleOptions{MaxRepeated: 5}, `files: e.type == REG && size(e.reg.build_id) > 0 ? e.with({"reg.build_id[5]": 1u}) : e`, "more than the limit of 5 elements"},
		{RuleOptions{CostLimit: 100}, `files: [1,2,3,4,5,6,7,8,9].all(a, [1,2,3,4,5,6,7,8,9].all(b, a + b > 0)) ? e : e`, "cost limit"},
	}
	for _, tc := range cases {
		_, err := ApplyRules(context.Background(), d, mustRules(t, tc.o, tc.rule))
		var ee *RuleEvalError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ApplyRules(%q) = %v, wanted a RuleEvalError with %q", tc.rule, err, tc.want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	rules := mustRules(t, RuleOptions{CostLimit: 1 << 62}, `files: `+strings.Repeat("[1,2,3,4,5,6,7,8,9,10].all(a, ", 9)+"true"+strings.Repeat(")", 9)+" ? e : e")
	if _, err := ApplyRules(ctx, d, rules); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ApplyRules with a 20ms timeout = %v, wanted DeadlineExceeded", err)
	}
}

// writeFilesDump writes a dump holding one files.img of n regular files
// (about 103 bytes each) to dir.
func writeFilesDump(t testing.TB, dir string, n int) {
	t.Helper()
	k, _ := magic.ByName("FILES")
	var buf bytes.Buffer
	w, err := codec.NewWriter(&buf, codec.HeaderFor(k))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		id := uint32(i + 1)
		fe := &images.FileEntry{Type: images.FdTypes_REG.Enum(), Id: proto.Uint32(id), Reg: &images.RegFileEntry{
			Id: proto.Uint32(id), Flags: proto.Uint32(0x8000), Pos: proto.Uint64(0),
			Fown: &images.FownEntry{Uid: proto.Uint32(0), Euid: proto.Uint32(0), Signum: proto.Uint32(0), PidType: proto.Uint32(0), Pid: proto.Uint32(0)},
			Name: proto.String(fmt.Sprintf("/usr/lib/x86_64-linux-gnu/critq-synthetic/lib%06d.so", i)),
			Size: proto.Uint64(uint64(4096 * i)), Mode: proto.Uint32(0o100644), MntId: proto.Int32(22),
		}}
		if err := w.WriteMessage(fe, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "files.img"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRuleParallel runs rules over an image large enough to be split
// between goroutines, and checks the counts and that changes come in entry
// order.
func TestRuleParallel(t *testing.T) {
	dir := t.TempDir()
	n := 3*parallelMin + 7
	writeFilesDump(t, dir, n)
	d := mustOpenRuleDump(t, dir)
	rules := mustRules(t, RuleOptions{},
		`files: e.id % 1000u == 1u ? e.with({"reg.name": "/x/" + string(e.id)}) : e`,
		`files: e.id % 3000u == 1u ? drop() : e`)
	res, err := ApplyRules(context.Background(), d, rules)
	if err != nil {
		t.Fatal(err)
	}
	want := (n + 999) / 1000
	if st := res.Stats[0]; st.Entries != n || st.Changed != want {
		t.Errorf("rule 1 counts %+v, wanted %d entries, %d changed", st, n, want)
	}
	if st := res.Stats[1]; st.Entries != n || st.Dropped != (n+2999)/3000 {
		t.Errorf("rule 2 counts %+v, wanted %d entries, %d dropped", st, n, (n+2999)/3000)
	}
	for i, c := range res.Changes {
		if c.Index != i*1000 || c.Drop != (i%3 == 0) {
			t.Fatalf("change %d is entry %d (drop %v), wanted entry %d", i, c.Index, c.Drop, i*1000)
		}
	}
}

// The rule and the predicate of the speed requirement: rewriting one entry
// of a 10 MB files image against evaluating its predicate over the image.
const (
	benchPred = `e.type == REG && e.reg.name == "/usr/lib/x86_64-linux-gnu/critq-synthetic/lib054321.so"`
	benchRule = `files: ` + benchPred + ` ? e.with({"reg.name": "/opt/lib054321.so"}) : e`
	// benchQuery evaluates the predicate as a query, over the entries of
	// the files view.
	benchQuery = `files.filter(f, f.entry.type == REG && f.entry.reg.name == "/usr/lib/x86_64-linux-gnu/critq-synthetic/lib054321.so").size()`
)

func BenchmarkRules(b *testing.B) {
	dir := b.TempDir()
	writeFilesDump(b, dir, 100_000)
	st, _ := os.Stat(filepath.Join(dir, "files.img"))
	b.Logf("files.img: %d bytes", st.Size())
	b.Run("query", func(b *testing.B) {
		// The baseline of the requirement: critq evaluating the predicate
		// over the image, as a query.
		q := mustCompile(b, benchQuery)
		b.ReportAllocs()
		for b.Loop() {
			if v := mustEval(b, q, mustOpen(b, dir)); v.Value() != int64(1) {
				b.Fatalf("query = %v, wanted 1", v)
			}
		}
	})
	b.Run("predicate", func(b *testing.B) {
		// Reading, unmarshalling and evaluating the predicate of every entry.
		rules := mustRules(b, RuleOptions{}, "files: "+benchPred+" ? e : e")
		b.ReportAllocs()
		for b.Loop() {
			d := mustOpenRuleDump(b, dir)
			if _, err := ApplyRules(context.Background(), d, rules); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rewrite-one", func(b *testing.B) {
		// The same, plus the with() of one entry and the new image.
		rules := mustRules(b, RuleOptions{}, benchRule)
		b.ReportAllocs()
		for b.Loop() {
			d := mustOpenRuleDump(b, dir)
			res, err := ApplyRules(context.Background(), d, rules)
			if err != nil || len(res.Changes) != 1 {
				b.Fatal(err, len(res.Changes))
			}
			img, err := d.File("files.img").Image()
			if err != nil {
				b.Fatal(err)
			}
			c := res.Changes[0]
			if _, err := transform.RewriteImage("files.img", img, map[int]*transform.Change{c.Index: {Payload: c.Payload}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestRulesCorpus applies e.with({}) to every kind of every corpus dump:
// each entry is matched, none changed, nothing is lost on the way through
// CEL and back.
func TestRulesCorpus(t *testing.T) {
	root := filepath.Join("..", "..", "shared", "corpus")
	ents, err := os.ReadDir(root)
	if err != nil {
		if os.Getenv("CRITQ_REQUIRE_CORPUS") == "1" {
			t.Fatal(err)
		}
		t.Skip("corpus absent")
	}
	dumps, entries := 0, 0
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "inventory.img")); err != nil {
			continue
		}
		d := mustOpenRuleDump(t, dir)
		var srcs []RuleSource
		seen := map[string]bool{}
		for _, f := range d.Files() {
			if f.Kind == nil || f.Kind.Raw || f.Kind.Entry == nil || seen[f.Kind.Name] {
				continue
			}
			seen[f.Kind.Name] = true
			names := []string{f.Kind.Name}
			switch {
			case f.Kind.Extra == magic.ExtraGhostFile:
				names = []string{"ghost-file", "ghost-chunk"}
			case f.Kind.First != nil:
				names = append(names, f.Kind.Name+"_HEAD")
			}
			for _, n := range names {
				srcs = append(srcs, RuleSource{Where: n, Kind: n, Expr: "e.with({})"})
			}
		}
		rules, err := CompileRules(srcs, RuleOptions{})
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		res, err := ApplyRules(context.Background(), d, rules)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		for _, st := range res.Stats {
			if st.Matched != st.Entries || st.Changed != 0 {
				t.Errorf("%s: %s: %+v, wanted every entry matched and none changed", e.Name(), st.Rule.Source.Where, st)
			}
			entries += st.Entries
		}
		if len(res.Changes) != 0 {
			t.Errorf("%s: %d changes, wanted none", e.Name(), len(res.Changes))
		}
		dumps++
	}
	t.Logf("%d dumps, %d entries", dumps, entries)
}

// ExampleCompileRules renames a file of a dump and prints what changes.
func ExampleCompileRules() {
	rs, err := ParseRule("rule 1", `files: e.reg.name == "/usr/bin/sleep" ? e.with({"reg.name": "/opt/sleep"}) : e`)
	if err != nil {
		fmt.Println(err)
		return
	}
	rules, err := CompileRules([]RuleSource{rs}, RuleOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := dump.Open("../testdata/dumps/sleep-plain")
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := ApplyRules(context.Background(), d, rules)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range res.Changes {
		for _, f := range c.Fields() {
			fmt.Printf("%s entry %d: %s: %s -> %s\n", c.File, c.Index, f.Path, f.Old, f.New)
		}
	}
	// Output: files.img entry 0: reg.name: "/usr/bin/sleep" -> "/opt/sleep"
}

// FuzzParseRuleFile checks that rule files never make the parser panic.
func FuzzParseRuleFile(f *testing.F) {
	f.Add("rule files: e.with({\n  \"reg.name\": \"/a\" # c\n})\n")
	f.Add("rule core: e\n# x\nrule mm: e.with({\"vmas[0].prot\": 1})")
	f.Add("rule files: \"unterminated\n")
	f.Fuzz(func(t *testing.T, text string) {
		rs, err := ParseRuleFile("f", text)
		if err == nil {
			for _, r := range rs {
				if r.Kind == "" {
					t.Errorf("rule without a kind: %q", r.Where)
				}
			}
		}
	})
}

// FuzzRuleEntry evaluates fixed rules on hostile file entries, seeded from
// the entries of a real files.img: no panic, and what is produced decodes.
func FuzzRuleEntry(f *testing.F) {
	d := mustOpenRuleDump(f, "../testdata/dumps/tcp")
	img, err := d.File("files.img").Image()
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range img.Entries {
		f.Add(e.Payload)
	}
	rules := mustRules(f, RuleOptions{},
		`files: e.type == REG ? e.with({"reg.name": e.reg.name + "/x", "reg.build_id[0]": 7u}) : e`,
		`files: has(e.isk) ? e.with({"isk.src_addr": "10.0.0.1", "isk.src_port": 1}) : e`,
		`files: e.id % 7u == 0u ? drop() : e`)
	k, _ := magic.ByName("FILES")
	f.Fuzz(func(t *testing.T, payload []byte) {
		var buf bytes.Buffer
		w, err := codec.NewWriter(&buf, codec.HeaderFor(k))
		if err != nil {
			t.Fatal(err)
		}
		if w.WriteEntry(payload, nil) != nil || w.Flush() != nil {
			return
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "files.img"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := ApplyRules(ctx, mustOpenRuleDump(t, dir), rules)
		if err != nil {
			return
		}
		for _, c := range res.Changes {
			if !c.Drop {
				m := c.Old.ProtoReflect().New().Interface()
				if err := proto.Unmarshal(c.Payload, m); err != nil {
					t.Errorf("new entry does not decode: %v", err)
				}
				_ = c.Fields()
			}
		}
	})
}

// TestRuleMessageValues sets message fields to messages built in the rule
// (dynamic messages of cel-go) and checks what the entries become.
func TestRuleMessageValues(t *testing.T) {
	cases := []struct {
		name, rule string
		check      func(c *EntryChange) error
	}{
		{"struct literal in a sub-message", `files: e.type == REG && e.reg.name == "/dev/null" ? e.with({"reg.fown": fown_entry{uid: 5u, euid: 6u, signum: 0u, pid_type: 0u, pid: 0u}}) : e`,
			func(c *EntryChange) error {
				if f := c.New.(*images.FileEntry).GetReg().GetFown(); f.GetUid() != 5 || f.GetEuid() != 6 {
					return fmt.Errorf("fown %v", f)
				}
				return nil
			}},
		{"whole part of another entry type", `files: e.type == PIPE ? e.with({"pipe": pipe_entry{id: e.id, pipe_id: 7u, flags: 0u, fown: e.pipe.fown}}) : e`,
			func(c *EntryChange) error {
				if p := c.New.(*images.FileEntry).GetPipe(); p.GetPipeId() != 7 || p.GetFown() == nil {
					return fmt.Errorf("pipe %v", p)
				}
				return nil
			}},
		{"the entry as a literal", `files: e.type == PIPE ? file_entry{id: e.id, type: e.type, pipe: e.pipe.with({"pipe_id": 8u})}.with({"id": e.id}) : e`,
			func(c *EntryChange) error {
				if p := c.New.(*images.FileEntry).GetPipe(); p.GetPipeId() != 8 {
					return fmt.Errorf("pipe %v", p)
				}
				return nil
			}},
	}
	d := mustOpenRuleDump(t, "../testdata/dumps/pipes-fifo")
	for _, tc := range cases {
		res, err := ApplyRules(context.Background(), d, mustRules(t, RuleOptions{}, tc.rule))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if len(res.Changes) == 0 {
			t.Errorf("%s: no changes", tc.name)
		}
		for _, c := range res.Changes {
			if err := tc.check(c); err != nil {
				t.Errorf("%s: %s entry %d: %v", tc.name, c.File, c.Index, err)
			}
			var back images.FileEntry
			if err := proto.Unmarshal(c.Payload, &back); err != nil || !proto.Equal(&back, c.New) {
				t.Errorf("%s: entry %d: payload does not read back as the new entry (%v)", tc.name, c.Index, err)
			}
		}
	}
}

// TestRuleEvalErrors checks the errors of rules that compile but fail on an
// entry.
func TestRuleEvalErrors(t *testing.T) {
	cases := []struct{ dump, rule, want string }{
		{"pipes-fifo", `files: e.type == PIPE ? e.with({"reg.name": "/x"}) : e`,
			"files.img: entry 5 at offset 0x19b: rule 1: the PIPE entry has no reg part: with() created one, and its required field reg.id is not set"},
		{"pipes-fifo", `files: e.type == PIPE ? e.with({"reg": e.reg}) : e`,
			"entry 5 at offset 0x19b: rule 1: the PIPE entry has no reg part"},
		{"pipes-fifo", `files: e.type == REG ? e.with({"reg.fown": fown_entry{uid: 5u}}) : e`,
			"entry 0 at offset 0x8: rule 1: the new entry cannot be written: reg.fown.euid of the REG entry is required but not set"},
		{"zdtm-ghost_holes00", `pagemap-head: drop()`, "pagemap-71.img: entry 0 at offset 0x8: rule 1: PAGEMAP_HEAD: the head entry of an image cannot be dropped"},
		{"zdtm-ghost_holes00", `ghost-file: e.with({"extra": b"x"})`, "the contents of this file are in its chunks: rewrite them with a ghost-chunk rule"},
	}
	for _, tc := range cases {
		d := mustOpenRuleDump(t, filepath.Join("../testdata/dumps", tc.dump))
		_, err := ApplyRules(context.Background(), d, mustRules(t, RuleOptions{}, tc.rule))
		var ee *RuleEvalError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ApplyRules error %v, wanted a RuleEvalError with %q", tc.rule, err, tc.want)
		}
	}
}

// TestRuleHeads rewrites the head entries of pagemap and ghost-file images
// and their other entries apart.
func TestRuleHeads(t *testing.T) {
	cases := []struct {
		rule, target, msg string
		entries           int   // entries the rule ran on
		changed           []int // indexes changed
	}{
		{`pagemap-head: e.with({"pages_id": 3u})`, "PAGEMAP_HEAD", "critq.images.pagemap_head", 1, []int{0}},
		{`pagemap: e.with({"nr_pages": e.nr_pages + 1u})`, "PAGEMAP", "critq.images.pagemap_entry", 14, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}},
		{`pagemap-shmem-head: e.with({"pages_id": 9u})`, "SHMEM_PAGEMAP_HEAD", "critq.images.pagemap_head", 1, []int{0}},
		{`ghost-file: e.with({"uid": 5u})`, "GHOST_FILE", "critq.images.ghost_file_entry", 1, []int{0}},
		{`ghost_chunk: e.off == 8192u ? e.with({"extra": extra + b"!"}) : e`, "GHOST_CHUNK", "critq.images.ghost_chunk_entry", 2, []int{2}},
	}
	d := mustOpenRuleDump(t, "../testdata/dumps/zdtm-ghost_holes00")
	for _, tc := range cases {
		rules := mustRules(t, RuleOptions{}, tc.rule)
		if got := rules[0].Target(); got != tc.target || string(rules[0].Message().FullName()) != tc.msg {
			t.Errorf("%s: Target() %s, Message() %s, wanted %s, %s", tc.rule, got, rules[0].Message().FullName(), tc.target, tc.msg)
		}
		kind, _, _ := strings.Cut(tc.rule, ":")
		if md, err := RuleMessage(kind); err != nil || string(md.FullName()) != tc.msg {
			t.Errorf("RuleMessage(%q) = %v, %v, wanted %s", kind, md, err, tc.msg)
		}
		res, err := ApplyRules(context.Background(), d, rules)
		if err != nil {
			t.Errorf("%s: %v", tc.rule, err)
			continue
		}
		var got []int
		for _, c := range res.Changes {
			got = append(got, c.Index)
			if c.New.ProtoReflect().Descriptor().FullName() != rules[0].Message().FullName() {
				t.Errorf("%s: entry %d is a %s", tc.rule, c.Index, c.New.ProtoReflect().Descriptor().FullName())
			}
			img, err := d.File(c.File).Image()
			if err != nil {
				t.Fatal(err)
			}
			b, err := transform.RewriteImage(c.File, img, map[int]*transform.Change{c.Index: {Payload: c.Payload, Extra: c.Extra}})
			if err != nil {
				t.Errorf("%s: entry %d: %v", tc.rule, c.Index, err)
				continue
			}
			if _, err := codec.NewBytesReader(b, codec.ReadOptions{Name: c.File}); err != nil {
				t.Errorf("%s: %v", tc.rule, err)
			}
		}
		if st := res.Stats[0]; st.Entries != tc.entries || !slices.Equal(got, tc.changed) {
			t.Errorf("%s: %d entries, changed %v, wanted %d, %v", tc.rule, st.Entries, got, tc.entries, tc.changed)
		}
	}
	for _, name := range []string{"files-head", "pages-head"} {
		if _, err := RuleKind(name); err == nil {
			t.Errorf("RuleKind(%q) succeeded", name)
		}
	}
}

func TestMentions(t *testing.T) {
	addrs := []struct {
		text, addr string
		want       bool
	}{
		{"-A INPUT -s 10.0.0.1/32 -j ACCEPT", "10.0.0.1", true},
		{"-A INPUT -s 10.0.0.10/32 -j ACCEPT", "10.0.0.1", false},
		{"-A INPUT -s 110.0.0.1 -j ACCEPT", "10.0.0.1", false},
		{"ip daddr 10.0.0.1:80", "10.0.0.1", true},
		{"10.0.0.1", "10.0.0.1", true},
		{"ip6 saddr fd00::10 accept", "fd00::1", false},
		{"ip6 saddr fd00::1/64 accept", "fd00::1", true},
	}
	for _, tc := range addrs {
		if got := mentionsAddr([]byte(tc.text), netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("mentionsAddr(%q, %s) = %v, wanted %v", tc.text, tc.addr, got, tc.want)
		}
	}
	ports := []struct {
		text string
		port uint32
		want bool
	}{
		{"-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT", 8080, true},
		{"-A INPUT -p tcp -m tcp --dport 80800 -j ACCEPT", 8080, false},
		{"-A INPUT -p tcp -m tcp --sport 1000:2000 -j DROP", 1500, true},
		{"-A INPUT -p tcp -m multiport --dports 22,80,443 -j ACCEPT", 80, true},
		{"-A INPUT -p tcp -m multiport --dports 22,80,443 -j ACCEPT", 8080, false},
		{"-A INPUT -s 10.0.0.1/8080 -j ACCEPT", 8080, false},
		{"tcp dport 8080 accept", 8080, true},
		{"tcp dport { 22, 8080 } accept", 8080, true},
		{"tcp dport { 22, 8000-8100 } accept", 8080, true},
		{"tcp dport { 22, 443 } accept", 8080, false},
		{"udp sport 53 counter", 53, true},
		{"tcp dport", 53, false},
	}
	for _, tc := range ports {
		if got := mentionsPort([]byte(tc.text), tc.port); got != tc.want {
			t.Errorf("mentionsPort(%q, %d) = %v, wanted %v", tc.text, tc.port, got, tc.want)
		}
	}
}

// TestRuleWarnings checks the warnings of pid and address changes, with
// synthetic iptables-save and nftables images beside a real dump.
func TestRuleWarnings(t *testing.T) {
	tcp := t.TempDir()
	src := "../testdata/dumps/tcp"
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tcp, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	raw := map[string]string{
		"iptables-9.img": "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 127.0.0.10/32 -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 47310 -j ACCEPT\nCOMMIT\n",
		"nftables-9.img": "table inet filter {\n\tchain input {\n\t\tip saddr 127.0.0.1 tcp dport { 80, 47300-47320 } accept\n\t}\n}\n",
	}
	for name, text := range raw {
		if err := os.WriteFile(filepath.Join(tcp, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, dump, rule string
		want             []string // each a warning's prefix
	}{
		{"listener moved", tcp, `files: e.isk.ino == 382118u ? e.with({"isk.src_addr": "10.0.0.5", "isk.src_port": 47400}) : e`, []string{
			"iptables-9.img still matches port 47310 (changed in files.img entry 5)",
			"nftables-9.img still mentions 127.0.0.1 (changed in files.img entry 5)",
			"nftables-9.img still matches port 47310 (changed in files.img entry 5)",
		}},
		{"port only", tcp, `files: e.isk.ino == 382118u ? e.with({"isk.src_port": 47400}) : e`, []string{
			"iptables-9.img still matches port 47310",
			"nftables-9.img still matches port 47310",
		}},
		{"pstree pid", "../testdata/dumps/sleep-plain", `pstree: e.with({"pid": 4242})`, []string{
			"pstree.img: entry 0: pid 19635 is now 4242, but core-19635.img, fs-19635.img, ids-19635.img, mm-19635.img, pagemap-19635.img, pstree.img entry 0 (pgid), pstree.img entry 0 (sid), pstree.img entry 0 (threads[0]) still name it",
		}},
		{"thread dropped", "../testdata/dumps/sleep-plain", `pstree: e.with({"threads": []})`, []string{
			"pstree.img: entry 0: threads[0] 19635 is unset, but core-19635.img",
		}},
	}
	for _, tc := range cases {
		d := mustOpenRuleDump(t, tc.dump)
		res, err := ApplyRules(context.Background(), d, mustRules(t, RuleOptions{}, tc.rule))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := res.Warnings(d)
		var socketless []string
		for _, w := range got {
			if !strings.Contains(w, "still names") { // the peers of tcp's sockets
				socketless = append(socketless, w)
			}
		}
		if len(socketless) != len(tc.want) {
			t.Errorf("%s: warnings\n%q\nwanted\n%q", tc.name, socketless, tc.want)
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(socketless[i], w) {
				t.Errorf("%s: warning %d\n%q\nwanted\n%q", tc.name, i, socketless[i], w)
			}
		}
	}
}

// FuzzMentions feeds firewall text to the address and port matchers: they
// must not panic, and a mention found is in the text.
func FuzzMentions(f *testing.F) {
	f.Add("-A INPUT -p tcp -m multiport --dports 22,80:90 -s 10.0.0.1/32 -j ACCEPT\n", uint16(80))
	f.Add("table inet t {\n\tchain c {\n\t\ttcp dport { 22, 8000-8100 } ip saddr 10.0.0.1 accept\n\t}\n}\n", uint16(8080))
	f.Add("tcp dport { 1, 2", uint16(2))
	f.Fuzz(func(t *testing.T, text string, port uint16) {
		a := netip.MustParseAddr("10.0.0.1")
		if mentionsAddr([]byte(text), a) && !strings.Contains(text, a.String()) {
			t.Errorf("mentionsAddr(%q) without the address", text)
		}
		if mentionsPort([]byte(text), uint32(port)) && !strings.Contains(text, "port") {
			t.Errorf("mentionsPort(%q, %d) without a port match", text, port)
		}
	})
}

// TestRulePrefilter checks which rules skip entries by their payload, and
// that skipping changes no result.
func TestRulePrefilter(t *testing.T) {
	cases := []struct{ rule, needle string }{
		{`files: e.type == REG && e.reg.name == "/usr/bin/sleep" ? e.with({"reg.pos": 1u}) : e`, "/usr/bin/sleep"},
		{`files: "/usr/bin/sleep" == e.reg.name && e.reg.name == "/usr" ? e.with({"reg.pos": 1u}) : e`, "/usr/bin/sleep"},
		{`files: e.reg.name == "/usr/lib/locale/C.utf8/LC_CTYPE" || e.type == PIPE ? e.with({"reg.pos": 1u}) : e`, ""},
		{`files: e.reg.name != "/usr/bin/sleep" ? e.with({"reg.pos": 1u}) : e`, ""},
		{`files: e.reg.name == "" ? e.with({"reg.pos": 1u}) : e`, ""},
		{`files: e.reg.name == "/usr/bin/sleep" ? e : e.with({"reg.pos": 1u})`, ""},
		{`files: has(e.reg.name) && e.reg.name.startsWith("/usr") ? e.with({"reg.pos": 1u}) : e`, ""},
		{`files: e.reg.build_id == [1u] ? e.with({"reg.pos": 1u}) : e`, ""},
		{`core: e.tc.comm == "sleep" ? e.with({"tc.comm": "nap"}) : e`, "sleep"},
	}
	d := mustOpenRuleDump(t, "../testdata/dumps/sleep-plain")
	for _, tc := range cases {
		rules := mustRules(t, RuleOptions{}, tc.rule)
		if got := string(rules[0].needle); got != tc.needle {
			t.Errorf("%s: needle %q, wanted %q", tc.rule, got, tc.needle)
		}
		with, err := ApplyRules(context.Background(), d, rules)
		if err != nil {
			t.Fatal(err)
		}
		rules[0].needle = nil
		without, err := ApplyRules(context.Background(), d, rules)
		if err != nil {
			t.Fatal(err)
		}
		if with.Stats[0].String() != without.Stats[0].String() || len(with.Changes) != len(without.Changes) {
			t.Errorf("%s: %s, %d changes with the prefilter; %s, %d without", tc.rule, with.Stats[0], len(with.Changes), without.Stats[0], len(without.Changes))
		}
	}
}

// TestRuleSpeed measures the requirement of the issue: rewriting one entry
// of a 10 MB files image takes at most 1.5 times the time of the query of
// its predicate. It runs with CRITQ_SPEED=1 (timings need a quiet machine).
func TestRuleSpeed(t *testing.T) {
	if os.Getenv("CRITQ_SPEED") != "1" {
		t.Skip("set CRITQ_SPEED=1 to measure")
	}
	dir := t.TempDir()
	writeFilesDump(t, dir, 100_000)
	q := mustCompile(t, benchQuery)
	rules := mustRules(t, RuleOptions{}, benchRule)
	query := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			mustEval(b, q, mustOpen(b, dir))
		}
	})
	rewrite := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			res, err := ApplyRules(context.Background(), mustOpenRuleDump(b, dir), rules)
			if err != nil || len(res.Changes) != 1 {
				b.Fatal(err)
			}
		}
	})
	ratio := float64(rewrite.NsPerOp()) / float64(query.NsPerOp())
	t.Logf("query %v, rewrite %v: %.2fx", time.Duration(query.NsPerOp()), time.Duration(rewrite.NsPerOp()), ratio)
	if ratio > 1.5 {
		t.Errorf("rewriting one entry takes %.2fx the query", ratio)
	}
}
