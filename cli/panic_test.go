package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/critq/critq/internal/testcorpus"
)

// TestPanicIsInternalError: a panic in a command (here forced at a step of
// an in-place transform) is reported as an internal error, exit 5, with a
// request to report it and no stack; CRITQ_DEBUG=1 adds the stack. The
// panics of the goroutines that read dumps come back the same way
// (internal/panics, batch.TestRunPanic).
func TestPanicIsInternalError(t *testing.T) {
	for _, debug := range []string{"", "1"} {
		dir := t.TempDir()
		testcorpus.CopyFiles(t, sleepPlain, dir)
		var out, errb bytes.Buffer
		c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
			env:  func(k string) string { return map[string]string{"CRITQ_DEBUG": debug}[k] },
			step: func(string) { panic("boom") }}
		code := c.main([]string{"transform", "--in-place", "--kind", "fs", "--set", "umask=0", dir})
		stderr := errb.String()
		if code != exitError || !strings.Contains(stderr, "critq: internal error (a panic): boom; please report it") {
			t.Errorf("CRITQ_DEBUG=%q: exit %d, stderr:\n%s", debug, code, stderr)
		}
		if hasStack := strings.Contains(stderr, "goroutine "); hasStack != (debug == "1") {
			t.Errorf("CRITQ_DEBUG=%q: stack printed: %v\n%s", debug, hasStack, stderr)
		}
	}
}
