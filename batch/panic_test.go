package batch_test

import (
	"context"
	"errors"
	"testing"

	"github.com/critq/critq/batch"
	"github.com/critq/critq/internal/panics"
)

// TestRunPanic: an evaluation that panics (a bug met on one bad dump) is
// that item's error, an *panics.Error, and the run goes on with the others.
func TestRunPanic(t *testing.T) {
	items := []int{1, 2, 3, 4}
	got := map[int]error{}
	err := batch.Run(context.Background(), items, batch.Options{Jobs: 2},
		func(_ context.Context, i int) (int, error) {
			if i == 2 {
				var p *struct{ n int }
				return p.n, nil // nil pointer
			}
			return i * 10, nil
		},
		func(_ int, item int, r int, err error) error {
			got[item] = err
			if err == nil && r != item*10 {
				t.Errorf("item %d: %d", item, r)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	var pe *panics.Error
	if len(got) != 4 || !errors.As(got[2], &pe) || got[1] != nil || got[3] != nil || got[4] != nil {
		t.Errorf("errors by item: %v", got)
	}
}
