//go:build linux

package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestCritqHelperProcess is not a test: TestReplPTY runs the test binary
// with CRITQ_HELPER_ARGS set, and then this runs critq's main with those
// arguments on the process's own standard streams.
func TestCritqHelperProcess(t *testing.T) {
	args := os.Getenv("CRITQ_HELPER_ARGS")
	if args == "" {
		return
	}
	os.Exit(run(strings.Split(args, "\x1f"), os.Stdin, os.Stdout, os.Stderr))
}

// openPTY opens a pseudo-terminal pair with an 80x24 window.
func openPTY() (master, tty *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	ioctl := func(req uintptr, arg unsafe.Pointer) error {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), req, uintptr(arg)); e != 0 {
			return e
		}
		return nil
	}
	var unlock int32
	var n uint32
	ws := [4]uint16{24, 80, 0, 0}
	if err = ioctl(syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err == nil {
		if err = ioctl(syscall.TIOCGPTN, unsafe.Pointer(&n)); err == nil {
			err = ioctl(syscall.TIOCSWINSZ, unsafe.Pointer(&ws))
		}
	}
	if err == nil {
		tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	}
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, tty, nil
}

// screen collects what the program writes to the terminal.
type screen struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

// readScreen collects what the terminal of master shows until it fails
// (the last program on it exits), then closes done.
func readScreen(master *os.File) *screen {
	scr := &screen{done: make(chan struct{})}
	go func() {
		defer close(scr.done)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			scr.mu.Lock()
			scr.buf.Write(b[:n])
			scr.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return scr
}

// expect waits until the terminal shows want after offset from, and
// returns the offset after it.
func (s *screen) expect(t *testing.T, step, want string, from int) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		out := s.buf.String()
		s.mu.Unlock()
		if i := strings.Index(out[from:], want); i >= 0 {
			return from + i + len(want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Fatalf("%s: the terminal never showed %q; it shows:\n%q", step, want, s.buf.String()[from:])
	return 0
}

// TestReplPTY drives the real program through a pseudo-terminal: typing,
// Tab completion, Ctrl-C at the prompt and during an evaluation, :quit, and
// the history file.
func TestReplPTY(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	master, tty, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	state := t.TempDir()
	dumpDir, _ := filepath.Abs("../testdata/dumps/sleep-plain")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCritqHelperProcess$")
	cmd.Env = append(os.Environ(), "CRITQ_HELPER_ARGS=repl\x1f--cost\x1f0\x1f"+dumpDir,
		"XDG_STATE_HOME="+state, "TERM=xterm", "NO_COLOR=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	scr := readScreen(master)
	at := scr.expect(t, "start", "sleep-plain> ", 0)
	for _, step := range []struct {
		what  string
		typed string
		pause time.Duration // before typing Ctrl-C
		shows []string      // in this order
	}{
		{"an expression", "size(vmas)\r", 0, []string{"36 : int", "sleep-plain> "}},
		{"one candidate: Tab completes the word in place", "tasks[0].core.tc.task_s\t", 0, []string{"task_state"}},
		{"the completed line runs", "\r", 0, []string{"1 : uint"}},
		{"several: the second Tab lists them", "tasks[0].co\t\t", 0, []string{"comm", "core"}},
		{"Ctrl-C at the prompt drops the line", "\x03", 0, []string{"sleep-plain> "}},
		{"an error with a caret", "tasks[0].pdi\r", 0, []string{"did you mean 'pid'?", "........^"}},
		{"a multi-line entry", "tasks.map(t,\r", 0, []string{"... "}},
		{"its second line", "t.comm)\r", 0, []string{`"sleep"`, "] : list(string)"}},
		{"Ctrl-C stops a long evaluation", "vmas.map(a, vmas.map(b, vmas.map(c, vmas.map(d, vmas.map(e, vmas.map(f, a.start)))))).size()\r",
			500 * time.Millisecond, []string{"interrupted"}},
		{"and keeps the session", "tasks.size()\r", 0, []string{"1 : int"}},
	} {
		if _, err := master.WriteString(step.typed); err != nil {
			t.Fatal(err)
		}
		if step.pause > 0 {
			time.Sleep(step.pause)
			if _, err := master.WriteString("\x03"); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range step.shows {
			at = scr.expect(t, step.what, want, at)
		}
	}
	if _, err := master.WriteString(":quit\r"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("critq repl exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("critq repl did not exit after :quit")
	}
	hist, err := os.ReadFile(filepath.Join(state, "critq", "history"))
	if err != nil || !strings.Contains(string(hist), "size(vmas)\n") || !strings.Contains(string(hist), "tasks.map(t, t.comm)\n") {
		t.Errorf("history file: %q, %v; want size(vmas) and the multi-line entry on one line", hist, err)
	}
}
