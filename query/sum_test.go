package query

import (
	"context"
	"fmt"
	"strconv"
	"testing"
)

func TestSum(t *testing.T) {
	d, err := Open("../testdata/dumps/sleep-plain")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ expr, want string }{
		{"sum([1, 2, 3])", "6"},
		{"[1u, 2u].sum()", "3"},
		{"sum([0.5, 0.25])", "0.75"},
		{"sum([])", "0"},
		// The bytes mapped by the task: the sum of its VMA sizes.
		{"vmas.map(v, v.size).sum() == vmas.map(v, v.end - v.start).sum()", "true"},
	}
	for _, tt := range tests {
		q, err := Compile(tt.expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.expr, err)
		}
		v, err := q.Eval(context.Background(), d)
		if err != nil {
			t.Fatalf("Eval(%q): %v", tt.expr, err)
		}
		if got := toText(v.Value()); got != tt.want {
			t.Errorf("Eval(%q) = %s, want %s", tt.expr, got, tt.want)
		}
	}
	// A list that mixes int and uint has no total: an error, as 1 + 2u is.
	q, err := Compile(`sum([1, 2u])`)
	if err == nil {
		if v, err := q.Eval(context.Background(), d); err == nil {
			t.Errorf("sum([1, 2u]) = %v, want an error", v)
		}
	}
}

func toText(v any) string {
	switch v := v.(type) {
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}
