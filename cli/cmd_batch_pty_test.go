//go:build linux

package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/critq/critq/query"
)

// TestBatchProgressTerminal runs a batch with standard output and standard
// error on one terminal, as a user does, the progress line drawn every
// millisecond: every record starts a line, after the line erased, never
// after the progress text.
func TestBatchProgressTerminal(t *testing.T) {
	master, tty, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	scr := readScreen(master)
	dirs, _ := filepath.Glob("../testdata/dumps/*")
	c := &cli{stdin: strings.NewReader(""), stdout: tty, stderr: tty, env: func(string) string { return "" }}
	o := batchOptions{format: "ndjson", jobs: 1, cost: query.DefaultCostLimit, progressAfter: time.Nanosecond, progressEvery: time.Millisecond}
	if err := runBatch(c, "../examples/cookbook.txt", dirs, o); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(tty, "END\n")
	at := scr.expect(t, "batch", "END", 0)
	tty.Close()
	scr.mu.Lock()
	out := scr.buf.String()[:at]
	scr.mu.Unlock()
	if !strings.Contains(out, " dumps, 0 failed, ") {
		t.Fatalf("no progress line on the terminal: %.300q", out)
	}
	records := 0
	for i := 0; ; i++ {
		j := strings.Index(out[i:], `{"dump":`)
		if j < 0 {
			break
		}
		i += j
		records++
		if !strings.HasSuffix(out[:i], "\n") && !strings.HasSuffix(out[:i], "\x1b[K") {
			t.Fatalf("record %d follows %q", records, out[max(0, i-60):i])
		}
	}
	if records == 0 {
		t.Fatalf("no records on the terminal: %.300q", out)
	}
	if strings.Contains(out, "critq: ") && !strings.HasSuffix(strings.TrimSuffix(out, "END"), "\r\x1b[K") {
		t.Errorf("the progress line is not erased at the end: %q", out[max(0, len(out)-100):])
	}
}
