// Package testkill runs the kill tests of in-place writers: the test
// binary runs one of its tests as a child process, which kills itself
// with SIGKILL before a chosen step of the run, and the parent checks what
// the child left.
package testkill

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Start starts the test binary running only the test named test, with
// env added to its environment.
func Start(t testing.TB, test string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := command(t, test, env)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func command(t testing.TB, test string, env []string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// Run runs the test named test as a child (see Start) and reports
// whether it died of SIGKILL; a child that fails otherwise fails t.
func Run(t testing.TB, test string, env ...string) (killed bool) {
	t.Helper()
	out, err := command(t, test, env).CombinedOutput()
	switch Exit(err) {
	case "0":
		return false
	case "killed":
		return true
	}
	t.Fatalf("child %s: %v\n%s", test, err, out)
	return false
}

// Exit describes how a child ended, from the error of its Wait: "0",
// "killed" (by SIGKILL), or "failed".
func Exit(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "0"
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return "killed"
		}
	}
	return "failed"
}

// At returns a step function (transform.InPlaceOptions.Step) that kills
// the process with SIGKILL before its step number at, counted from 0; a
// negative at never kills.
func At(at int) func(string) {
	n := 0
	return func(string) {
		if n == at {
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				p.Kill() // SIGKILL on Unix
			}
			time.Sleep(time.Minute) // the signal is on its way
		}
		n++
	}
}
