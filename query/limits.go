package query

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/critq/critq/internal/annot"
)

// DefaultMaxMemory bounds the heap that one evaluation may grow by unless
// [MaxMemory] says otherwise.
const DefaultMaxMemory = 256 << 20

// MaxMemory bounds the live heap one evaluation may add, in bytes; an
// evaluation past it stops with a *LimitError. 0 removes the bound. The
// heap is the process's: evaluations that run at the same time count each
// other's values.
func MaxMemory(n uint64) Option { return func(c *config) { c.maxMemory = n } }

// memoryCheckEvery is how often the memory watchdog samples the heap.
const memoryCheckEvery = 20 * time.Millisecond

// LimitError reports an evaluation stopped by one of its limits: Limit is
// "cost" or "memory", Value the limit, Flag the command-line flag that
// raises it.
type LimitError struct {
	Limit string
	Value uint64
	Flag  string
}

func (e *LimitError) Error() string {
	switch e.Limit {
	case "memory":
		return fmt.Sprintf("stopped: the evaluation holds more than %s, the memory limit (raise it with %s BYTES, 0 for none)", annot.Size(e.Value), e.Flag)
	}
	return fmt.Sprintf("stopped: the evaluation exceeded the cost limit of %d (raise it with %s N, 0 for none)", e.Value, e.Flag)
}

// Progress is how far an evaluation of a Query has come: the values its
// lists have been given so far (every evaluation of the Query counts).
func (q *Query) Progress() uint64 { return q.built.Load() }

// allocationCost charges list concatenation, the step by which
// comprehensions (map, filter) and + build lists, for what it allocates:
// one per element appended, and an appended list or map by its size, so a
// query that builds a large or deeply nested result pays for it. cel-go
// charges a concatenation 1 whatever its size.
//
// Without a cost limit the cost is still tracked, for Progress.
func (q *Query) allocationCost() []cel.ProgramOption {
	var opts []cel.ProgramOption
	if q.costLimit == 0 {
		opts = append(opts, cel.EvalOptions(cel.OptTrackCost))
	}
	return append(opts, cel.CostTrackerOptions(cost.OverloadTracker(overloads.AddList, func(args []ref.Val, _ ref.Val) *uint64 {
		var n uint64 = 1
		if len(args) == 2 {
			if l, ok := args[1].(traits.Lister); ok {
				size, _ := l.Size().(types.Int)
				n += uint64(size)
				if size > 0 && size <= 16 {
					for i := types.Int(0); i < size; i++ {
						if s, ok := l.Get(i).(traits.Sizer); ok {
							if k, ok := s.Size().(types.Int); ok && k > 0 {
								n += uint64(k)
							}
						}
					}
				}
			}
		}
		q.built.Add(n)
		return &n
	})))
}

// limitError turns cel-go's cost-limit error into a *LimitError.
func (q *Query) limitError(err error) error {
	if err != nil && q.costLimit > 0 && strings.Contains(err.Error(), "actual cost limit exceeded") {
		return &LimitError{Limit: "cost", Value: q.costLimit, Flag: "--cost"}
	}
	return err
}

// watchMemory returns ctx, cancelled with a *LimitError when the live heap
// grows by more than max bytes from now, and the function that stops the
// watch. The heap is sampled every memoryCheckEvery; past the limit a
// collection tells garbage from live values before the evaluation is
// stopped.
func watchMemory(ctx context.Context, max uint64) (context.Context, func()) {
	if max == 0 {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	base := heap()
	go func() {
		t := time.NewTicker(memoryCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if heap() <= base+max {
				continue
			}
			runtime.GC()
			if h := heap(); h > base+max {
				cancel(&LimitError{Limit: "memory", Value: max, Flag: "--max-memory"})
				return
			} else if h < base {
				base = h
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// stoppedBy returns the *LimitError that cancelled ctx, or nil.
func stoppedBy(ctx context.Context) error {
	var le *LimitError
	if errors.As(context.Cause(ctx), &le) {
		return le
	}
	return nil
}
