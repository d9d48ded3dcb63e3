package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/dump"
)

// ctlDiff is the part of checkpointctl diff --format json (v1.6.0) that
// critq's diff is compared with.
type ctlDiff struct {
	ProcessChanges struct {
		Added, Removed, Modified []struct {
			PID     uint32 `json:"pid"`
			Command string `json:"command"`
		}
	} `json:"process_changes"`
	FileChanges struct {
		Added, Removed []ctlFile
	} `json:"file_changes"`
	SocketChanges struct {
		Added, Removed []ctlSocket
	} `json:"socket_changes"`
	MemoryChanges struct {
		SizeChangeBytes int64 `json:"size_change_bytes"`
	} `json:"memory_changes"`
}

type ctlFile struct {
	Path string `json:"path"`
	Type string `json:"type"`
	PID  uint32 `json:"pid"`
	FD   string `json:"fd"` // "REG 12", "INETSK 13", "cwd", "root"
}

type ctlSocket struct {
	PID     uint32 `json:"pid"`
	State   string `json:"state"`
	Source  string `json:"source"`
	SrcPort uint32 `json:"src_port"`
	Dest    string `json:"dest"`
	DstPort uint32 `json:"dst_port"`
}

type qChange struct {
	Section, Key, Path, Op, Old, New string
	PID                              uint32 `json:"pid"`
}

// TestDiffCheckpointctl runs checkpointctl diff (v1.6.0; CRITQ_CHECKPOINTCTL
// or checkpointctl in PATH) and critq diff on podman checkpoint archives of
// evolve-pair's dump1 and dump, and accounts for every change checkpointctl
// reports in the sections it covers (process tree, fds, sockets, memory
// size): the same change in critq's output, or a known reason why critq
// reports it otherwise (the note of issue 11 lists them).
func TestDiffCheckpointctl(t *testing.T) {
	bin := os.Getenv("CRITQ_CHECKPOINTCTL")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("checkpointctl"); err != nil {
			t.Skip("no checkpointctl in PATH (go install github.com/checkpoint-restore/checkpointctl@v1.6.0)")
		}
	}
	_, da, db := evolvePair(t)
	a, b := containerArchiveOf(t, da, "podman", dump.Gzip), containerArchiveOf(t, db, "podman", dump.Gzip)
	out, err := exec.Command(bin, "diff", "--format", "json", "--files", "--sockets", a, b).Output()
	if err != nil {
		t.Fatalf("checkpointctl diff: %v", err)
	}
	var ctl ctlDiff
	if err := json.Unmarshal(out, &ctl); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, nil, "diff", "--format", "json", a, b)
	if code != exitFalse {
		t.Fatalf("critq diff: exit %d %s", code, stderr)
	}
	var q struct{ Changes []qChange }
	if err := json.Unmarshal([]byte(stdout), &q); err != nil {
		t.Fatal(err)
	}
	find := func(section string, pid uint32, key, path, op string) *qChange {
		for i := range q.Changes {
			c := &q.Changes[i]
			if c.Section == section && c.PID == pid && (key == "" || c.Key == key) && c.Path == path && c.Op == op {
				return c
			}
		}
		return nil
	}
	addedPIDs := map[uint32]bool{}
	for _, p := range ctl.ProcessChanges.Added {
		addedPIDs[p.PID] = true
		if c := find("processes", p.PID, fmt.Sprint(p.PID), "", "added"); c == nil || !strings.HasPrefix(c.New, p.Command+" ") {
			t.Errorf("checkpointctl: process %d %s added; critq: %v", p.PID, p.Command, c)
		}
	}
	for _, p := range ctl.ProcessChanges.Removed {
		if find("processes", p.PID, fmt.Sprint(p.PID), "", "removed") == nil {
			t.Errorf("checkpointctl: process %d removed; critq does not say so", p.PID)
		}
	}
	for _, p := range ctl.ProcessChanges.Modified {
		if find("processes", p.PID, fmt.Sprint(p.PID), "", "changed") == nil && find("processes", p.PID, "", "comm", "changed") == nil {
			t.Errorf("checkpointctl: process %d modified; critq does not say so", p.PID)
		}
	}
	// fds: checkpointctl keys a socket fd by "INETSK.<file id>", a number
	// CRIU gives each dump anew: the listener (fd 11, socket:[310979] in
	// both dumps, MANIFEST) shows as removed and added. critq keys fds by
	// pid and number and compares the socket's inode: no change.
	key := func(f ctlFile) string { return fmt.Sprint(f.PID, " ", f.FD) }
	removed := map[string]ctlFile{}
	for _, f := range ctl.FileChanges.Removed {
		removed[key(f)] = f
	}
	renamed := map[string]bool{}
	for _, f := range ctl.FileChanges.Added {
		if r, ok := removed[key(f)]; ok && f.Type == "INETSK" && r.Type == "INETSK" {
			renamed[key(f)] = true
		}
	}
	checkFD := func(f ctlFile, op string) {
		kind, num, isFD := strings.Cut(f.FD, " ")
		switch {
		case renamed[key(f)]:
			if c := find("fds", f.PID, num, "", "changed"); c != nil {
				t.Errorf("checkpointctl renamed %s (file id); critq reports %v", f.FD, c)
			}
		case addedPIDs[f.PID]:
			// the fds, cwd and root of an added task: critq reports the
			// task added (processes), not its fds one by one
		case !isFD && op == "added":
			// cwd or root: critq's processes section, old -> new
			if c := find("processes", f.PID, "", kind, "changed"); c == nil || c.New != f.Path {
				t.Errorf("checkpointctl: %d %s -> %s; critq: %v", f.PID, kind, f.Path, c)
			}
		case !isFD:
			if c := find("processes", f.PID, "", kind, "changed"); c == nil || c.Old != f.Path {
				t.Errorf("checkpointctl: %d %s was %s; critq: %v", f.PID, kind, f.Path, c)
			}
		default:
			c := find("fds", f.PID, num, "", op)
			if c == nil || !strings.HasPrefix(c.Old+c.New, kind+" ") {
				t.Errorf("checkpointctl: %s %+v; critq: %v", op, f, c)
			}
		}
	}
	for _, f := range ctl.FileChanges.Added {
		checkFD(f, "added")
	}
	for _, f := range ctl.FileChanges.Removed {
		checkFD(f, "removed")
	}
	// sockets: by the 4-tuple.
	checkSocket := func(s ctlSocket, op string) {
		tuple := fmt.Sprintf(" %s %s:%d -> %s:%d", s.State, s.Source, s.SrcPort, s.Dest, s.DstPort)
		for _, c := range q.Changes {
			if c.Section == "sockets" && c.Op == op && strings.HasSuffix(c.New+c.Old, tuple) {
				return
			}
		}
		t.Errorf("checkpointctl: socket %s %+v; critq does not say so", op, s)
	}
	for _, s := range ctl.SocketChanges.Added {
		checkSocket(s, "added")
	}
	for _, s := range ctl.SocketChanges.Removed {
		checkSocket(s, "removed")
	}
	// memory: checkpointctl subtracts the sizes of the pages files; critq's
	// memory total counts the pages each dump holds (the same for dumps
	// without a parent).
	total := find("memory", 0, "total", "pages", "changed")
	var na, nb, ba, bb int64
	if total != nil {
		fmt.Sscanf(total.Old, "%d pages (%d bytes)", &na, &ba)
		fmt.Sscanf(total.New, "%d pages (%d bytes)", &nb, &bb)
	}
	if total == nil || bb-ba != ctl.MemoryChanges.SizeChangeBytes {
		t.Errorf("checkpointctl: memory %+d bytes; critq: %v", ctl.MemoryChanges.SizeChangeBytes, total)
	}
}

// TestWriteDiffArchives writes podman checkpoint archives of evolve-pair's
// dump1 and dump to $CRITQ_DIFF_ARCHIVES (a.tar.gz, b.tar.gz), for running
// checkpointctl diff on them by hand.
func TestWriteDiffArchives(t *testing.T) {
	out := os.Getenv("CRITQ_DIFF_ARCHIVES")
	if out == "" {
		t.Skip("CRITQ_DIFF_ARCHIVES not set")
	}
	_, a, b := evolvePair(t)
	for name, dir := range map[string]string{"a.tar.gz": a, "b.tar.gz": b} {
		data, err := os.ReadFile(containerArchiveOf(t, dir, "podman", dump.Gzip))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
