//go:build linux

package cli

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testkill"
	"github.com/critq/critq/transform"
)

// TestCritqKillChild is not a test: TestTransformArchiveKilled runs the
// test binary with CRITQ_KILL_ARGS set, and this runs critq with those
// arguments, killing itself with SIGKILL before step CRITQ_KILL_AT of
// the in-place run.
func TestCritqKillChild(t *testing.T) {
	args := os.Getenv("CRITQ_KILL_ARGS")
	if args == "" {
		t.Skip("run by TestTransformArchiveKilled")
	}
	at, _ := strconv.Atoi(os.Getenv("CRITQ_KILL_AT"))
	c := &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, env: os.Getenv, step: testkill.At(at)}
	os.Exit(c.main(strings.Split(args, "\x1f")))
}

// TestTransformArchiveKilled: critq transform --in-place on a checkpoint
// archive, killed by SIGKILL before each step of its run (with and
// without a backup), and at 10 moments over 2.5 times a run on an archive with 12 MiB of
// pages (while it reads and writes it): the archive is at every moment the
// old or the new one, byte for byte, never a torn one; critq transform
// --recover leaves it old (killed before the commit point) or new with
// its backup (after), and nothing else beside it.
func TestTransformArchiveKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for _, tc := range []struct {
		dump   string
		backup bool
		timed  bool // killed at moments spread over a run, else before each step
	}{
		{"../testdata/dumps/tcp", true, false},
		{"../testdata/dumps/tcp", false, false},
		{"big", true, true},
	} {
		dir := tc.dump
		if dir == "big" {
			dir = bigPagesDump(t)
		}
		src := containerArchiveOf(t, dir, "podman", dump.Gzip)
		old, _ := os.ReadFile(src)
		rule := portRule
		args := []string{"transform", rule, "", "--in-place"}
		if !tc.backup {
			args = append(args, "--no-backup")
		}
		// The new archive, from a run that is not killed.
		fresh := func() string {
			p := filepath.Join(t.TempDir(), "ck.tar.gz")
			if err := os.WriteFile(p, old, 0o600); err != nil {
				t.Fatal(err)
			}
			args[2] = p
			return p
		}
		p := fresh()
		start := time.Now()
		if _, errs, code := runCLI(t, nil, args...); code != exitOK {
			t.Fatalf("%v: %d %s", args, code, errs)
		}
		took := time.Since(start)
		newer, _ := os.ReadFile(p)
		if bytes.Equal(newer, old) {
			t.Fatal("the run changed nothing")
		}
		check := func(what string, p string, killed bool) {
			t.Helper()
			now, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(now, old) && !bytes.Equal(now, newer) {
				t.Fatalf("%s: the archive is neither the old nor the new one (%v)", what, err)
			}
			st, err := transform.Status(p)
			if err != nil {
				t.Fatal(err)
			}
			stdout, errs, code := runCLI(t, nil, "transform", "--recover", p)
			if code != exitOK {
				t.Fatalf("%s: --recover: %d %s%s", what, code, stdout, errs)
			}
			now, _ = os.ReadFile(p)
			isNew := bytes.Equal(now, newer)
			switch {
			case st == transform.Interrupted && !isNew:
				t.Fatalf("%s: killed past the commit point, --recover left the old archive", what)
			case !killed && !isNew:
				t.Fatalf("%s: a run that ended left the old archive", what)
			case !isNew && !bytes.Equal(now, old):
				t.Fatalf("%s: after --recover the archive is neither old nor new", what)
			}
			want := filepath.Base(p)
			if isNew && tc.backup {
				want += " " + filepath.Base(p) + ".orig"
				if b, _ := os.ReadFile(p + ".orig"); !bytes.Equal(b, old) {
					t.Errorf("%s: the backup is not the old archive", what)
				}
			}
			if got := ls(t, filepath.Dir(p)); got != want {
				t.Errorf("%s: after --recover the folder holds %s, want %s", what, got, want)
			}
			if st, _ := transform.Status(p); st != transform.Clean {
				t.Errorf("%s: after --recover the state is %v", what, st)
			}
		}
		env := func(at int) []string {
			return []string{"CRITQ_KILL_ARGS=" + strings.Join(args, "\x1f"), "CRITQ_KILL_AT=" + strconv.Itoa(at)}
		}
		if !tc.timed {
			for n := 0; ; n++ {
				p := fresh()
				killed := testkill.Run(t, "TestCritqKillChild", env(n)...)
				check("killed at step "+strconv.Itoa(n), p, killed)
				if !killed {
					t.Logf("%s, backup %v: killed before each of %d steps", tc.dump, tc.backup, n)
					break
				}
			}
			continue
		}
		states := map[transform.State]int{}
		for i := 1; i <= 10; i++ {
			p := fresh()
			cmd := testkill.Start(t, "TestCritqKillChild", env(-1)...)
			d := took * time.Duration(i) / 4
			time.Sleep(d)
			cmd.Process.Kill()
			killed := testkill.Exit(cmd.Wait()) == "killed"
			st, _ := transform.Status(p)
			if now, _ := os.ReadFile(p); killed && st == transform.Clean && bytes.Equal(now, newer) {
				st = -1 // done
			}
			states[st]++
			check("killed after "+d.String(), p, killed)
		}
		t.Logf("a run of %v killed at 10 moments: %d before it wrote, %d while it wrote (temporary files), %d past the commit point, %d after it ended",
			took, states[transform.Clean], states[transform.Leftovers], states[transform.Interrupted], states[-1])
	}
}

// bigPagesDump is a copy of the tcp dump whose pages-1.img is 12 MiB
// longer, of bytes gzip cannot shrink: a run on its archive writes for a
// while.
func bigPagesDump(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "big")
	copyDumpFiles(t, "../testdata/dumps/tcp", dir)
	f, err := os.OpenFile(filepath.Join(dir, "pages-1.img"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	for range 12 {
		for i := 0; i < len(buf); i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], r.Uint64())
		}
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
