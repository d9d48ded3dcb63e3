//go:build linux

package cli

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const outImage = "../testdata/dumps/sleep-plain/inventory.img"

// decodedInventory is the JSON of decode of outImage, written to stdout.
func decodedInventory(t *testing.T) string {
	out, errs, code := runCLI(t, nil, "decode", "-i", outImage)
	if code != 0 {
		t.Fatalf("decode: %d %s", code, errs)
	}
	return strings.TrimSuffix(out, "\n")
}

// TestOutputToDeviceIsWrittenInPlace: -o /dev/null of decode and encode
// writes to the device and leaves it a device (it was replaced by a
// regular file).
func TestOutputToDeviceIsWrittenInPlace(t *testing.T) {
	json := filepath.Join(t.TempDir(), "inv.json")
	os.WriteFile(json, []byte(decodedInventory(t)), 0o644)
	for _, args := range [][]string{
		{"decode", "-i", outImage, "-o", "/dev/null"},
		{"decode", "--pretty", "-i", outImage, "-o", "/dev/null"},
		{"encode", "-i", json, "-o", "/dev/null"},
	} {
		_, errs, code := runCLI(t, nil, args...)
		st, err := os.Stat("/dev/null")
		if code != 0 || err != nil || st.Mode()&os.ModeCharDevice == 0 {
			t.Fatalf("%v: exit %d %s; /dev/null is now %v", args, code, errs, st.Mode())
		}
	}
}

// TestOutputToFIFOAndProcFdIsWrittenInPlace: a FIFO, a pipe named by
// /proc/self/fd/N and a regular file opened as /proc/self/fd/N are
// written, not replaced; a socket is refused with its error.
func TestOutputToFIFOAndProcFdIsWrittenInPlace(t *testing.T) {
	want := decodedInventory(t)
	dir := t.TempDir()

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		got <- string(b)
	}()
	if _, errs, code := runCLI(t, nil, "decode", "-i", outImage, "-o", fifo); code != 0 {
		t.Fatalf("decode -o FIFO: %d %s", code, errs)
	}
	if g := <-got; g != want {
		t.Errorf("FIFO read %q", g)
	}
	if st, _ := os.Lstat(fifo); st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("FIFO replaced by %v", st.Mode())
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runCLI(t, nil, "decode", "-i", outImage, "-o", "/proc/self/fd/"+strconv.Itoa(int(w.Fd()))); code != 0 {
		t.Fatalf("decode -o /proc/self/fd/N: %d %s", code, errs)
	}
	w.Close()
	if b, _ := io.ReadAll(r); string(b) != want {
		t.Errorf("pipe read %q", b)
	}

	reg := filepath.Join(dir, "reg")
	f, err := os.Create(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before, _ := f.Stat()
	if _, errs, code := runCLI(t, nil, "decode", "-i", outImage, "-o", "/proc/self/fd/"+strconv.Itoa(int(f.Fd()))); code != 0 {
		t.Fatalf("decode -o /proc/self/fd/N of a file: %d %s", code, errs)
	}
	after, _ := os.Stat(reg)
	if b, _ := os.ReadFile(reg); string(b) != want || !os.SameFile(before, after) {
		t.Errorf("file behind the fd: %q, same file %v", b, os.SameFile(before, after))
	}

	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, errs, code := runCLI(t, nil, "decode", "-i", outImage, "-o", sock)
	if st, _ := os.Lstat(sock); code != exitError || st.Mode()&os.ModeSocket == 0 || !strings.Contains(errs, sock) {
		t.Errorf("decode -o SOCKET: exit %d %q; the socket is now %v", code, errs, st.Mode())
	}
}

// TestOutputThroughSymlink: -o of a link writes its target and keeps the
// link; a dangling link creates its target; one whose target's folder is
// missing is an error naming the path (it was "mkdir ln: file exists" for
// transform). A failed write leaves the target as it was and no
// temporary file.
func TestOutputThroughSymlink(t *testing.T) {
	want := decodedInventory(t)
	dir := t.TempDir()
	target, link := filepath.Join(dir, "target.json"), filepath.Join(dir, "ln")
	os.WriteFile(target, []byte("old"), 0o600)
	os.Symlink("target.json", link)
	check := func(what string) {
		t.Helper()
		if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s: the link was replaced", what)
		}
		if b, _ := os.ReadFile(target); string(b) != want {
			t.Errorf("%s: target holds %q", what, b)
		}
	}
	if _, errs, code := runCLI(t, nil, "decode", "-i", outImage, "-o", link); code != 0 {
		t.Fatalf("decode -o LINK: %d %s", code, errs)
	}
	check("link")
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o600 {
		t.Errorf("target mode %v, want the old 0600", st.Mode().Perm())
	}
	os.Remove(target)
	if _, errs, code := runCLI(t, nil, "decode", "-i", outImage, "-o", link); code != 0 {
		t.Fatalf("decode -o DANGLING: %d %s", code, errs)
	}
	check("dangling link")

	os.Symlink("missing/x.json", filepath.Join(dir, "ln2"))
	_, errs, code := runCLI(t, nil, "decode", "-i", outImage, "-o", filepath.Join(dir, "ln2"))
	if code != exitError || !strings.Contains(errs, "ln2: cannot create: no such file or directory") {
		t.Errorf("decode -o LINK-TO-MISSING-FOLDER: exit %d %q", code, errs)
	}

	// A failed decode: the target is kept, no temporary file is left.
	bad := filepath.Join(dir, "bad.img")
	os.WriteFile(bad, []byte("\x01\x02\x03\x04garbage"), 0o644)
	if _, _, code := runCLI(t, nil, "decode", "-i", bad, "-o", link); code != exitBadImage {
		t.Errorf("decode of a bad image: exit %d", code)
	}
	check("failed decode")
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "bad.img ln ln2 target.json" {
		t.Errorf("folder holds %s", got)
	}
}

// TestTransformOutputLinkAndInsideDump: transform -o of a dangling link
// makes the folder it names; -o inside the input dump is a usage error
// that writes nothing.
func TestTransformOutputLinkAndInsideDump(t *testing.T) {
	src := filepath.Join(t.TempDir(), "dump")
	copyDumpFiles(t, "../testdata/dumps/sleep-plain", src)
	rule := "fs: e.with({\"umask\": 63u})"
	dir := t.TempDir()
	link := filepath.Join(dir, "ln")
	os.Symlink("new-dump", link)
	if _, errs, code := runCLI(t, nil, "transform", rule, src, "-o", link); code != 0 {
		t.Fatalf("transform -o DANGLING-LINK: %d %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "new-dump", "inventory.img")); err != nil {
		t.Errorf("new dump not written through the link: %v", err)
	}
	before := listDir(t, src)
	for _, out := range []string{filepath.Join(src, "sub"), src + "/./x/y"} {
		_, errs, code := runCLI(t, nil, "transform", rule, src, "-o", out)
		if code != exitUsage || !strings.Contains(errs, "inside the dump") {
			t.Errorf("transform -o %s: exit %d %q", out, code, errs)
		}
	}
	inLink := filepath.Join(dir, "in")
	os.Symlink(src, inLink)
	if _, errs, code := runCLI(t, nil, "transform", rule, src, "-o", filepath.Join(inLink, "z")); code != exitUsage {
		t.Errorf("transform -o LINK-TO-DUMP/z: exit %d %q", code, errs)
	}
	if after := listDir(t, src); after != before {
		t.Errorf("dump changed: %s, was %s", after, before)
	}
}
