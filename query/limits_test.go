package query

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/critq/critq/query/internal/synthdump"
)

// exponentialQuery builds a list of 10^levels numbers in nested lists.
func exponentialQuery(levels int) string {
	const l = "[1,2,3,4,5,6,7,8,9,10]"
	vars := "abcdfghijk"
	body := "1"
	for i := levels - 1; i >= 0; i-- {
		body = l + ".map(" + vars[i:i+1] + ", " + body + ")"
	}
	return body
}

const quadraticQuery = `vmas.map(a, vmas.filter(b, b.start > a.start).size())`

func synthVMAs(t *testing.T, n int) *Dump {
	t.Helper()
	dir := t.TempDir()
	if err := synthdump.Write(dir, n); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// evalLimited evaluates src on d and returns the *LimitError that stopped
// it, failing the test when none did within max.
func evalLimited(t *testing.T, d *Dump, src string, max time.Duration, opts ...Option) *LimitError {
	t.Helper()
	q, err := Compile(src, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), max)
	defer cancel()
	start := time.Now()
	_, err = q.Eval(ctx, d)
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("%s: got %v after %v, want a *LimitError within %v", src, err, time.Since(start), max)
	}
	t.Logf("%s: stopped by the %s limit after %v (%d values built)", src, le.Limit, time.Since(start).Round(time.Millisecond), q.Progress())
	return le
}

// TestEvalLimitCostCountsAllocation: the quadratic query over 5,000 VMAs
// stops at the cost limit, with an error that names the limit and the flag
// that raises it; a list concatenation is charged for what it appends.
func TestEvalLimitCostCountsAllocation(t *testing.T) {
	d := synthVMAs(t, 5000)
	le := evalLimited(t, d, quadraticQuery, time.Minute, CostLimit(2_000_000))
	if le.Limit != "cost" || !strings.Contains(le.Error(), "cost limit of 2000000 (raise it with --cost") {
		t.Errorf("error %q", le)
	}
	// Allocation is charged: a map that builds lists of lists costs more
	// than the same iterations that build nothing.
	costOf := func(src string) uint64 {
		q, err := Compile(src, CostLimit(0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.Eval(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		return q.Progress()
	}
	if built := costOf(exponentialQuery(3)); built < 1000 {
		t.Errorf("3 levels of map: %d values built, want at least the 1000 leaves", built)
	}
}

// TestEvalLimitMemory: a query whose result grows without bound stops at
// the memory limit with an error that says how to raise it.
func TestEvalLimitMemory(t *testing.T) {
	d := synthVMAs(t, 10)
	le := evalLimited(t, d, exponentialQuery(7), time.Minute, CostLimit(0), MaxMemory(16<<20))
	if le.Limit != "memory" || !strings.Contains(le.Error(), "16 MiB, the memory limit (raise it with --max-memory") {
		t.Errorf("error %q", le)
	}
}

// TestEvalLimitsDefault: under the default limits the exponential query
// and the quadratic query over 5,000 VMAs both stop. Slow on a loaded
// machine (tens of seconds): CRITQ_LONG=1.
func TestEvalLimitsDefault(t *testing.T) {
	if os.Getenv("CRITQ_LONG") == "" {
		t.Skip("CRITQ_LONG=1 runs it")
	}
	d := synthVMAs(t, 5000)
	evalLimited(t, d, exponentialQuery(7), 5*time.Minute)
	evalLimited(t, d, quadraticQuery, 5*time.Minute)
}
