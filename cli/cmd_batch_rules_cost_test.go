package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBatchRulesHonourCost checks that --cost bounds the rules of a batch
// script as it bounds its queries.
func TestBatchRulesHonourCost(t *testing.T) {
	script := filepath.Join(t.TempDir(), "r.critq")
	rule := "rule files: [1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, true))) ? e : e\n"
	if err := os.WriteFile(script, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	const d = "../testdata/dumps/sleep-plain"
	if _, stderr, code := runCLI(t, nil, "batch", "--cost", "1000", script, d); code != exitError || !strings.Contains(stderr, "cost limit") {
		t.Errorf("batch --cost 1000: exit %d, stderr %q; want %d and a cost limit error", code, stderr, exitError)
	}
	if _, stderr, code := runCLI(t, nil, "batch", script, d); code != 0 {
		t.Errorf("batch without --cost: exit %d, stderr %q", code, stderr)
	}
}
