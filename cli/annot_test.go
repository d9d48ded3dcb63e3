package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestAnnotTransformPrettyForms: a rule accepts every annotated value in
// the form decode --pretty prints it (one parser, package annot): a device
// "major:minor" (the rules' converter had no device branch, so this failed
// with exit 3 although critq encode accepted it), a task state by name and
// a socket state by its crit name. The result is checked both in decode
// --pretty's form and as the number the kernel's MKDEV(8, 1) = 8<<20 | 1
// gives.
func TestAnnotTransformPrettyForms(t *testing.T) {
	const d = "../testdata/dumps/zdtm-msgque-ns"
	for _, tc := range []struct {
		name, rule, image, pretty, plain string
	}{
		{"dev", `mnts: e.with({"root_dev": "8:1"})`, "mountpoints-14.img", `"root_dev": "8:1"`, `"root_dev": 8388609`},
		{"task state", `core: e.with({"tc.task_state": "STOPPED"})`, "core-5.img", `"task_state": "STOPPED"`, `"task_state": 3`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			if _, errs, code := runCLI(t, nil, "transform", tc.rule, d, "-o", out); code != exitOK {
				t.Fatalf("transform %s: exit %d: %s", tc.rule, code, errs)
			}
			img := filepath.Join(out, tc.image)
			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"decode", "--pretty", "-i", img}, tc.pretty},
				{[]string{"decode", "-i", img}, tc.plain},
			} {
				got, errs, code := runCLI(t, nil, c.args...)
				if code != exitOK || !strings.Contains(got, c.want) {
					t.Errorf("%q: exit %d, %s; want %s", c.args, code, errs, c.want)
				}
			}
		})
	}
	// A malformed device is an error naming the field, at compile time
	// when the value is a literal.
	if _, errs, code := runCLI(t, nil, "transform", `mnts: e.with({"root_dev": "8:x"})`, d, "--dry-run"); code == exitOK || !strings.Contains(errs, "root_dev") {
		t.Errorf("bad dev: exit %d, %s", code, errs)
	}
}
