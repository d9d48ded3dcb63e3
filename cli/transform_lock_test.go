//go:build linux

package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/critq/critq/transform"
)

// TestTransformInPlaceLock: while another writer holds the dump's lock,
// transform --in-place (and --recover) with --no-wait or a short
// --lock-wait fails with exit 5 and a message that says why, writing
// nothing; by default it waits, says so, and runs when the lock is
// released. (Two in-place runs at once left mixed dumps.)
func TestTransformInPlaceLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dump")
	copyDumpFiles(t, "../testdata/dumps/sleep-plain", dir)
	before := listDir(t, dir)
	rule := `fs: e.with({"umask": 63u})`
	l, err := transform.LockDump(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"transform", rule, dir, "--in-place", "--no-wait"},
		{"transform", rule, dir, "--in-place", "--lock-wait", "50ms"},
		{"transform", "--recover", dir, "--no-wait"},
	} {
		_, errs, code := runCLI(t, nil, args...)
		if code != exitError || !strings.Contains(errs, "another critq transform is writing this dump") || strings.Count(errs, "\n") > 2 {
			t.Errorf("%v: exit %d %q", args[2:], code, errs)
		}
	}
	if after := listDir(t, dir); after != before {
		t.Errorf("the dump changed under the lock: %s", after)
	}
	time.AfterFunc(200*time.Millisecond, func() { l.Unlock() })
	_, errs, code := runCLI(t, nil, "transform", rule, dir, "--in-place")
	if code != 0 || !strings.Contains(errs, "waiting for another transform") || !strings.Contains(errs, "1 image(s) rewritten") {
		t.Errorf("after the release: exit %d %q", code, errs)
	}
}
