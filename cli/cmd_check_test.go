package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/internal/testimg"
	"github.com/critq/critq/proto/images"
)

// TestCheckCommand runs critq check against a root folder made by the
// test: empty, the sleep-plain dump's files are missing (exit 1, each named
// with its task, image and entry); with its working directory and
// executable in place, only the libraries it maps are missing.
func TestCheckCommand(t *testing.T) {
	const d = "../testdata/dumps/sleep-plain"
	root := t.TempDir()
	out, stderr, code := runCLI(t, nil, "check", "--root", root, d)
	if code != exitFalse || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"task 19635:\n",
		"FAIL cwd: the working directory /srv/critq-cases/run/sleep-plain does not exist [fs-19635.img working id 0x13]",
		"FAIL files: /usr/bin/sleep does not exist (used by 19635) [files.img reg id",
		"restore with: criu restore -D " + d + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "srv/critq-cases/run/sleep-plain"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, _, _ = runCLI(t, nil, "check", "--root", root, "--format", "json", d)
	var rep struct {
		Problems []struct {
			Check, Message string
			PID            uint32
			Blocking       bool
		}
		Options []string
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, p := range rep.Problems {
		if p.Check == "cwd" {
			t.Errorf("cwd still reported: %+v", p)
		}
	}
	if _, _, code := runCLI(t, nil, "check", "--format", "yaml", d); code != exitUsage {
		t.Errorf("bad format: exit %d", code)
	}
	if _, _, code := runCLI(t, nil, "check", "/nonexistent"); code != exitBadImage {
		t.Errorf("missing dump: exit %d", code)
	}
	// An image only the checks read (cgroup.img), cut short: a bad image
	// (exit 4) that names the file and entry, not an evaluation failure.
	dir := t.TempDir()
	testcorpus.CopyFiles(t, d, dir)
	b := testimg.Bytes(t, "CGROUP", &images.CgroupEntry{Controllers: []*images.CgControllerEntry{{Cnames: []string{"cpu"}}}})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.img"), b[:len(b)-2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLI(t, nil, "check", dir); code != exitBadImage || !strings.Contains(stderr, "cgroup.img: CGROUP entry 0") {
		t.Errorf("damaged cgroup.img: exit %d, %s", code, stderr)
	}
}
