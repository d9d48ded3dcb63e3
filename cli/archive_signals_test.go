//go:build linux

package cli

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/bomb"
)

const archiveDump = "../testdata/dumps/sleep-plain"

// pagesBomb writes a zstd checkpoint archive of the images of
// archiveDump whose pages-1.img is pages bytes of zeros.
func pagesBomb(t *testing.T, pages int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bomb.tar.zst")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bomb.New(f, "zst")
	if err != nil {
		t.Fatal(err)
	}
	b.Dir("checkpoint/")
	ents, _ := os.ReadDir(archiveDump)
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == "pages-1.img" || e.Name() == "MANIFEST.txt" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(archiveDump, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b.File("checkpoint/"+e.Name(), data)
	}
	b.ZeroFile("checkpoint/pages-1.img", pages)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// smallArchive writes archiveDump as a gzip checkpoint archive.
func smallArchive(t *testing.T) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := dump.WriteArchive(zw, os.DirFS(archiveDump), map[string][]byte{"config.dump": []byte(`{}`)}, "MANIFEST.txt"); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	p := filepath.Join(t.TempDir(), "small.tar.gz")
	os.WriteFile(p, buf.Bytes(), 0o600)
	return p
}

// TestArchiveBombFlags: through the commands, an archive bomb fails at
// once with exit 4 and a message naming the bound and its flag; the flags
// raise the bounds (and a bad size is a usage error).
func TestArchiveBombFlags(t *testing.T) {
	p := pagesBomb(t, 3<<30)
	t.Setenv("TMPDIR", t.TempDir())
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ps", p}, exitBadImage, "pages-1.img: more than 2 GiB of pages copied to the temporary folder: 3 GiB (a bound against archive bombs; raise it with --max-spool)"},
		{[]string{"x", p, "ps", "--max-archive-bytes", "1G"}, exitBadImage, "more than 1 GiB of decompressed data"},
		{[]string{"ps", p, "--max-spool", "8G", "--max-archive-bytes", "2GiB"}, exitBadImage, "raise it with --max-archive-bytes"},
		{[]string{"query", "tasks.size()", p, "--max-members", "3"}, exitBadImage, "more than 3 members (a bound against archive bombs; raise it with --max-members)"},
		{[]string{"x", p, "ps", "--max-meta", "1K"}, exitBadImage, "more than 1024 bytes of images besides pages"},
		{[]string{"ps", p, "--max-spool", "12Q"}, exitUsage, `bad size "12Q"`},
	} {
		start := time.Now()
		_, errs, code := runCLI(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 || time.Since(start) > 5*time.Second {
			t.Errorf("%v: exit %d after %v, %q: want exit %d and %q", tc.args, code, time.Since(start), errs, tc.code, tc.want)
		}
	}
	// The defaults are back after a run that raised them.
	if _, errs, code := runCLI(t, nil, "ps", p); !strings.Contains(errs, "--max-spool") || code != exitBadImage {
		t.Errorf("ps after a run with --max-spool: %d %q", code, errs)
	}
	small := smallArchive(t)
	if out, errs, code := runCLI(t, nil, "ps", small, "--max-spool", "1M", "--max-members", "100"); code != 0 || !strings.Contains(out, "sleep") {
		t.Errorf("ps of an archive under raised bounds: %d %q %q", code, out, errs)
	}
}

// startHelper starts critq (the test binary as TestCritqHelperProcess)
// with TMPDIR set to tmp.
func startHelper(t *testing.T, tmp string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCritqHelperProcess$")
	cmd.Env = append(os.Environ(), "CRITQ_HELPER_ARGS="+strings.Join(args, "\x1f"), "TMPDIR="+tmp)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stderr
}

// spoolFolders lists the critq-archive-* folders in tmp.
func spoolFolders(tmp string) []string {
	m, _ := filepath.Glob(filepath.Join(tmp, "critq-archive-*"))
	return m
}

// waitSpool waits until cmd has made its spool folder in tmp.
func waitSpool(t *testing.T, cmd *exec.Cmd, tmp string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if len(spoolFolders(tmp)) > 0 {
			return
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatal("no critq-archive-* folder appeared")
}

// hupIgnored is whether the tests started with SIGHUP ignored (under nohup):
// the helper processes inherit that, and critq, which restores a signal's
// disposition before it dies of it, then exits 128+SIGHUP instead.
var hupIgnored = signal.Ignored(syscall.SIGHUP)

// TestSignalsRemoveArchiveTemp: killed by SIGTERM or SIGHUP (or SIGINT,
// in a command that does not handle it) while it spools the pages of a
// compressed archive, critq removes its critq-archive-* folder and dies
// of the signal; a query, which handles SIGINT, stops reading the archive
// and exits 5. Only SIGINT cleaned up.
func TestSignalsRemoveArchiveTemp(t *testing.T) {
	p := pagesBomb(t, 1<<30)
	for _, tc := range []struct {
		sig  syscall.Signal
		args []string
		code int // -1: dies of sig
	}{
		{syscall.SIGTERM, []string{"ps", p}, -1},
		{syscall.SIGHUP, []string{"ps", p}, -1},
		{syscall.SIGINT, []string{"ps", p}, -1},
		{syscall.SIGTERM, []string{"query", "tasks.map(t, t.cmdline)", p}, -1},
		{syscall.SIGINT, []string{"query", "tasks.map(t, t.cmdline)", p}, exitError},
	} {
		tmp := t.TempDir()
		cmd, stderr := startHelper(t, tmp, tc.args...)
		waitSpool(t, cmd, tmp)
		sent := time.Now()
		cmd.Process.Signal(tc.sig)
		err := cmd.Wait()
		took := time.Since(sent)
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		switch {
		case tc.code < 0 && tc.sig == syscall.SIGHUP && hupIgnored && ws.ExitStatus() == 128+int(tc.sig):
			// nohup: the signal stays ignored; what counts is the clean-up below
		case tc.code < 0 && !(ws.Signaled() && ws.Signal() == tc.sig):
			t.Errorf("%v %s: %v, want death by the signal; %s", tc.sig, tc.args[0], err, stderr)
		case tc.code >= 0 && ws.ExitStatus() != tc.code:
			t.Errorf("%v %s: %v, want exit %d; %s", tc.sig, tc.args[0], err, tc.code, stderr)
		}
		if tc.code == exitError && !strings.Contains(stderr.String(), "reading the archive was stopped") {
			t.Errorf("%v %s: stderr %q", tc.sig, tc.args[0], stderr)
		}
		if left := spoolFolders(tmp); len(left) > 0 || took > 2*time.Second {
			t.Errorf("%v %s: ended %v after the signal, left %v", tc.sig, tc.args[0], took, left)
		}
	}
}

// TestStaleArchiveTempRemoved: the folder of a critq killed by SIGKILL
// (which no handler sees) is removed by the next run that spools pages;
// the folder of a live critq is not.
func TestStaleArchiveTempRemoved(t *testing.T) {
	p := pagesBomb(t, 1<<30)
	tmp := t.TempDir()
	killed, _ := startHelper(t, tmp, "ps", p)
	waitSpool(t, killed, tmp)
	killed.Process.Kill()
	killed.Wait()
	stale := spoolFolders(tmp)
	if len(stale) != 1 {
		t.Fatalf("after SIGKILL: %v", stale)
	}
	// A live critq's folder stays: a sleeping process stands for it.
	live := exec.Command("sleep", "30")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { live.Process.Kill(); live.Wait() }()
	liveDir := filepath.Join(tmp, "critq-archive-"+strconv.Itoa(live.Process.Pid)+"-1")
	os.Mkdir(liveDir, 0o700)

	t.Setenv("TMPDIR", tmp)
	if out, errs, code := runCLI(t, nil, "ps", smallArchive(t)); code != 0 || !strings.Contains(out, "sleep") {
		t.Fatalf("ps: %d %q", code, errs)
	}
	if left := spoolFolders(tmp); len(left) != 1 || left[0] != liveDir {
		t.Errorf("left %v, want only the live process's folder", left)
	}
}

// TestArchiveDamagedTrailerCLI: a gzip archive whose CRC is wrong or
// whose trailer is cut off fails with exit 4 naming the archive, though
// the tar inside ends before the damage (ps answered with exit 0).
func TestArchiveDamagedTrailerCLI(t *testing.T) {
	good, err := os.ReadFile(smallArchive(t))
	if err != nil {
		t.Fatal(err)
	}
	crc := append([]byte(nil), good...)
	crc[len(crc)-8] ^= 1 // the CRC-32 of the gzip trailer
	for name, data := range map[string][]byte{"crc": crc, "cut": good[:len(good)-4]} {
		p := filepath.Join(t.TempDir(), name+".tar.gz")
		os.WriteFile(p, data, 0o600)
		for _, args := range [][]string{{"ps", p}, {"query", "tasks.size()", p}} {
			_, errs, code := runCLI(t, nil, args...)
			if code != exitBadImage || !strings.HasPrefix(errs, "critq: "+p+": damaged archive: ") {
				t.Errorf("%s: %v: exit %d %q", name, args, code, errs)
			}
		}
	}
}
