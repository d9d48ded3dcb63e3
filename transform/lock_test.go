//go:build linux

package transform_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testkill"
	"github.com/critq/critq/proto/images"
	"github.com/critq/critq/transform"
)

// writerPlan is the change of writer w ("A" or "B") to the dump as it is
// now: both rewrite pstree's sid and fs's umask, each its own way, so
// that old, A, B, A then B and B then A are five different dumps and any
// mix of two of them is none of them.
func writerPlan(t testing.TB, dir, w string) *transform.Plan {
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	digit, bit := uint32(1), uint32(0o007)
	if w == "B" {
		digit, bit = 2, 0o070
	}
	p := &transform.Plan{Images: map[string][]byte{}}
	for _, name := range []string{"pstree.img", "fs-19635.img"} {
		img, err := d.File(name).Image()
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Entries[0].Message()
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *images.PstreeEntry:
			m.Sid = proto.Uint32(m.GetSid()*10 + digit)
		case *images.FsEntry:
			m.Umask = proto.Uint32(m.GetUmask() ^ bit)
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if p.Images[name], err = transform.RewriteImage(name, img, map[int]*transform.Change{0: {Payload: b}}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// sidUmask reads the two fields the writers change.
func sidUmask(t *testing.T, dir string) string {
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sid, umask uint32
	for _, name := range []string{"pstree.img", "fs-19635.img"} {
		img, err := d.File(name).Image()
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Entries[0].Message()
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *images.PstreeEntry:
			sid = m.GetSid()
		case *images.FsEntry:
			umask = m.GetUmask()
		}
	}
	return fmt.Sprintf("sid %d umask %#o", sid, umask)
}

// TestInPlaceKilledTwoWriters extends TestInPlaceKilled to two concurrent
// writers: two child processes lock the dump, plan their change from
// what they read and apply it in place, each killed (SIGKILL) at some
// step or not at all. After Recover the dump is old, A, B, A then B or B
// then A, never a mix; a writer that exited 0 has its change in it.
// Without the lock 8 of 18 runs of the cli left a mix.
func TestInPlaceKilledTwoWriters(t *testing.T) {
	if os.Getenv("CRITQ_WRITER") != "" {
		return
	}
	base := copyDump(t, "sleep-plain")
	old := sidUmask(t, base)
	states := map[string]string{"old": old}
	for _, seq := range []string{"A", "B", "AB", "BA"} {
		dir := copyDump(t, "sleep-plain")
		for _, w := range seq {
			if err := transform.ApplyInPlace(dir, writerPlan(t, dir, string(w)), transform.InPlaceOptions{NoBackup: true}); err != nil {
				t.Fatal(err)
			}
		}
		states[seq] = sidUmask(t, dir)
	}
	byState := map[string]string{}
	for name, s := range states {
		if byState[s] != "" {
			t.Fatalf("%s and %s are the same dump", name, byState[s])
		}
		byState[s] = name
	}
	trials := 0
	for _, killA := range []int{-1, 0, 3, 5} {
		for _, killB := range []int{-1, 1, 4} {
			trials++
			dir := copyDump(t, "sleep-plain")
			start := func(w string, kill int) *exec.Cmd {
				return testkill.Start(t, "TestWriterChild", "CRITQ_WRITER="+w, "CRITQ_KILL_DIR="+dir, "CRITQ_KILL_AT="+strconv.Itoa(kill))
			}
			a, b := start("A", killA), start("B", killB)
			exitA, exitB := testkill.Exit(a.Wait()), testkill.Exit(b.Wait())
			if _, err := transform.Recover(dir); err != nil {
				t.Fatalf("kill A at %d, B at %d: Recover: %v", killA, killB, err)
			}
			got := byState[sidUmask(t, dir)]
			t.Logf("kill A at %d (%s), B at %d (%s): %s", killA, exitA, killB, exitB, got)
			if got == "" {
				t.Fatalf("kill A at %d, B at %d: the dump is a mix: %s", killA, killB, sidUmask(t, dir))
			}
			for w, exit := range map[string]string{"A": exitA, "B": exitB} {
				if exit == "0" && !containsRune(got, w) {
					t.Errorf("kill A at %d, B at %d: %s exited 0 but the dump is %s", killA, killB, w, got)
				}
			}
		}
	}
	t.Logf("%d trials", trials)
}

func containsRune(s, r string) bool {
	for _, c := range s {
		if string(c) == r {
			return true
		}
	}
	return false
}

// TestWriterChild is a writer of TestInPlaceKilledTwoWriters.
func TestWriterChild(t *testing.T) {
	w := os.Getenv("CRITQ_WRITER")
	if w == "" {
		t.Skip("run by TestInPlaceKilledTwoWriters")
	}
	dir := os.Getenv("CRITQ_KILL_DIR")
	kill, _ := strconv.Atoi(os.Getenv("CRITQ_KILL_AT"))
	l, err := transform.LockDump(dir, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if st, _ := transform.Status(dir); st == transform.Interrupted {
		t.Fatal("the other writer was killed past its commit point")
	}
	if _, err := transform.RecoverWith(dir, transform.InPlaceOptions{Lock: l}); err != nil {
		t.Fatal(err)
	}
	p := writerPlan(t, dir, w)
	err = transform.ApplyInPlace(dir, p, transform.InPlaceOptions{Lock: l, Step: testkill.At(kill)})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLockDumpWaits: a second LockDump waits for the first to be
// released, fails at once with wait 0 and after the wait given.
func TestLockDumpWaits(t *testing.T) {
	dir := t.TempDir()
	l, err := transform.LockDump(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transform.LockDump(dir, 0, nil); !errors.Is(err, transform.ErrLocked) {
		t.Errorf("second lock without waiting: %v", err)
	}
	start := time.Now()
	if _, err := transform.LockDump(dir, 100*time.Millisecond, nil); !errors.Is(err, transform.ErrLocked) || time.Since(start) < 100*time.Millisecond {
		t.Errorf("second lock waiting 100ms: %v after %v", err, time.Since(start))
	}
	time.AfterFunc(100*time.Millisecond, func() { l.Unlock() })
	waited := false
	l2, err := transform.LockDump(dir, 10*time.Second, func() { waited = true })
	if err != nil || !waited {
		t.Fatalf("second lock after release: %v (waited %v)", err, waited)
	}
	l2.Unlock()
}
