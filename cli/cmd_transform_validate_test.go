package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/dump"
)

// validateCase is a rule whose result CRIU could not restore: transform
// refuses it (exit 5, nothing written, the rule and entry named) and
// writes it with --force.
type validateCase struct {
	rule string
	msg  []string // substrings of the error
}

func checkRefusedThenForced(t *testing.T, tc validateCase) {
	t.Helper()
	dir := transformDump(t, "sleep-plain")
	out := filepath.Join(t.TempDir(), "out")
	_, stderr, code := runCLI(t, nil, "transform", tc.rule, dir, "-o", out)
	if code != exitError {
		t.Errorf("transform %q: exit %d, want %d; stderr:\n%s", tc.rule, code, exitError, stderr)
	}
	for _, m := range append(tc.msg, "rule 1", "nothing written", "--force") {
		if !strings.Contains(stderr, m) {
			t.Errorf("transform %q: stderr does not say %q:\n%s", tc.rule, m, stderr)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("transform %q: refused, yet wrote %s", tc.rule, out)
	}
	// --dry-run refuses it the same way, and writes nothing either.
	if _, _, code := runCLI(t, nil, "transform", tc.rule, dir, "--dry-run"); code != exitError {
		t.Errorf("transform --dry-run %q: exit %d, want %d", tc.rule, code, exitError)
	}
	_, stderr, code = runCLI(t, nil, "transform", "--force", tc.rule, dir, "-o", out)
	if code != 0 || !strings.Contains(stderr, "warning: --force") {
		t.Fatalf("transform --force %q: exit %d, stderr:\n%s", tc.rule, code, stderr)
	}
	if _, err := dump.Open(out); err != nil {
		t.Errorf("transform --force %q: the output does not open: %v", tc.rule, err)
	}
}

func TestTransformValidateRequiredFields(t *testing.T) {
	checkRefusedThenForced(t, validateCase{
		rule: `files: e.type == REG ? e.with({"isk.src_port": 1u}) : e`,
		msg:  []string{"files.img: entry 0", "required field"},
	})
}

func TestTransformValidateFileTypeMatchesPart(t *testing.T) {
	checkRefusedThenForced(t, validateCase{
		rule: `files: e.type == REG ? e.with({"type": "UNIXSK"}) : e`,
		msg:  []string{"files.img: entry 0", "UNIXSK file entry without its usk part"},
	})
	checkRefusedThenForced(t, validateCase{
		rule: `files: e.type == REG ? e.with({"pipe": pipe_entry{id: 1u, pipe_id: 2u, flags: 0u, fown: e.reg.fown}}) : e`,
		msg:  []string{"files.img: entry 0", "REG file entry that carries the part of another type (pipe)"},
	})
}

func TestTransformValidateOneEntryKinds(t *testing.T) {
	checkRefusedThenForced(t, validateCase{
		rule: `mm: drop()`,
		msg:  []string{"mm-19635.img: entry 0", "drops the entry of a MM image"},
	})
}

func TestTransformValidateCoreKeptForTask(t *testing.T) {
	checkRefusedThenForced(t, validateCase{
		rule: `core: drop()`,
		msg:  []string{"core-19635.img: entry 0", "drops the core of a task"},
	})
}

func TestTransformValidatePagemapWithinPages(t *testing.T) {
	checkRefusedThenForced(t, validateCase{
		rule: `pagemap: e.with({"nr_pages": 4294967295u})`,
		msg:  []string{"pagemap-19635.img: entry 1", "4294967295 pages at 0x", "beyond the", "pages-1.img"},
	})
}

// TestTransformValidateAcceptsValid checks that validation passes the
// rewrites CRIU restores: a rename, a port change, a pagemap entry made
// smaller.
func TestTransformValidateAcceptsValid(t *testing.T) {
	for _, rule := range []string{
		`files: e.type == REG ? e.with({"reg.name": "/x" + e.reg.name}) : e`,
		`pagemap: e.nr_pages > 1u ? e.with({"nr_pages": e.nr_pages - 1u}) : e`,
	} {
		dir := transformDump(t, "sleep-plain")
		out := filepath.Join(t.TempDir(), "out")
		if _, stderr, code := runCLI(t, nil, "transform", rule, dir, "-o", out); code != 0 {
			t.Errorf("transform %q: exit %d, stderr:\n%s", rule, code, stderr)
		}
	}
}
