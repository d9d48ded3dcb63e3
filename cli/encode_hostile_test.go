package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEncodeDuplicateKeysAndOneEntryKinds: encode refuses a document
// whose object repeats a key (the last would win and the first list be
// dropped silently) and a one-entry kind (inventory, core, fs, ...) with
// two entries, which CRIU would read as the first only. The documents are
// the JSON of images of testdata, edited.
func TestEncodeDuplicateKeysAndOneEntryKinds(t *testing.T) {
	const d = "../testdata/dumps/sleep-plain"
	decode := func(img string) string {
		out, errs, code := runCLI(t, nil, "decode", "-i", filepath.Join(d, img))
		if code != 0 {
			t.Fatalf("decode %s: %d %s", img, code, errs)
		}
		return strings.TrimSpace(out)
	}
	inv := decode("inventory.img")
	fs := decode("fs-19635.img")
	ent := func(doc string) string { // the first entry object of doc
		i := strings.Index(doc, `"entries": [`) + len(`"entries": [`)
		return doc[i : len(doc)-2]
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"entries twice", `{"magic": "FS", "entries": [` + ent(fs) + `], "entries": []}`, `duplicate key "entries"`},
		{"magic twice", `{"magic": "FS", "magic": "FS", "entries": [` + ent(fs) + `]}`, `duplicate key "magic"`},
		{"field twice", `{"magic": "FS", "entries": [{"cwd_id": 1, "root_id": 2, "cwd_id": 3}]}`, `duplicate field cwd_id`},
		{"inventory with two entries", `{"magic": "INVENTORY", "entries": [` + ent(inv) + `, ` + ent(inv) + `]}`, "one entry"},
		{"fs with two entries", `{"magic": "FS", "entries": [` + ent(fs) + `, ` + ent(fs) + `]}`, "one entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(t.TempDir(), "in.json")
			out := filepath.Join(filepath.Dir(in), "out.img")
			if err := os.WriteFile(in, []byte(tc.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			_, errs, code := runCLI(t, nil, "encode", "-i", in, "-o", out)
			if code != exitBadImage || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 ||
				!regexp.MustCompile(`line \d+, column \d+`).MatchString(errs) {
				t.Errorf("exit %d, stderr %q: want exit 4 and one line with %q and line/column", code, errs, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s written", out)
			}
		})
	}
	// The documents as decoded encode back: the checks refuse only the edits.
	for _, doc := range []string{inv, fs} {
		in := filepath.Join(t.TempDir(), "in.json")
		os.WriteFile(in, []byte(doc), 0o644)
		if _, errs, code := runCLI(t, nil, "encode", "-i", in, "-o", in+".img"); code != 0 {
			t.Errorf("encode of a decoded image: exit %d %s", code, errs)
		}
	}
}
