package panics_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/critq/critq/internal/panics"
)

func TestCall(t *testing.T) {
	want := errors.New("plain")
	if err := panics.Call(func() error { return want }); err != want {
		t.Errorf("an error is returned as it is: %v", err)
	}
	// A panic in another goroutine comes back as an error of the caller.
	var wg sync.WaitGroup
	var err error
	wg.Go(func() {
		err = panics.Call(func() error {
			entry(3) // an index past the end: the kind of bug a damaged image finds
			return nil
		})
	})
	wg.Wait()
	var pe *panics.Error
	if !errors.As(err, &pe) || pe.ExitCode() != 5 {
		t.Fatalf("got %v, wanted a *panics.Error", err)
	}
	if !strings.Contains(err.Error(), "panic") || !strings.Contains(err.Error(), "please report") {
		t.Errorf("message %q", err)
	}
	if !strings.Contains(string(pe.Stack), "panics_test.TestCall") {
		t.Errorf("stack does not name the panicking function:\n%s", pe.Stack)
	}
}

// entry reads the n-th entry of a list of one.
func entry(n int) int { return []int{1}[n] }
