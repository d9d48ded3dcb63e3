package batch

import (
	"context"
	"runtime"
	"sync"

	"github.com/critq/critq/internal/panics"
)

// Options tune [Run].
type Options struct {
	// Jobs is how many items are evaluated at once; 0 or less means
	// runtime.NumCPU().
	Jobs int
	// Window bounds how many items may be evaluated or waiting to be emitted
	// at once (results that finished ahead of an earlier, slower one); it is
	// raised to Jobs when lower, and 0 means 2*Jobs.
	Window int
}

func (o Options) limits() (jobs, window int) {
	jobs = o.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	window = o.Window
	if window <= 0 {
		window = 2 * jobs
	}
	return jobs, max(window, jobs)
}

// Run calls eval for every item, up to Options.Jobs at a time, and emit with
// each result in the order of items, from the calling goroutine. An error
// from eval is handed to emit with its item, and the run goes on; an error
// from emit stops the run: the evaluations under way are cancelled through
// their context and Run returns that error once they have returned. When ctx
// is cancelled, Run stops starting evaluations, emits what had finished in
// order and returns ctx's cause.
func Run[T, R any](ctx context.Context, items []T, opts Options,
	eval func(ctx context.Context, item T) (R, error),
	emit func(i int, item T, r R, err error) error) error {
	if len(items) == 0 {
		return context.Cause(ctx)
	}
	jobs, window := opts.limits()
	jobs = min(jobs, len(items))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	type result struct {
		i   int
		r   R
		err error
	}
	slots := make(chan struct{}, window) // a token per item started, not yet emitted
	work := make(chan int)
	done := make(chan result, window)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // dispatcher: starts items in order, at most window ahead
		defer wg.Done()
		defer close(work)
		for i := range items {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			if ctx.Err() != nil {
				return
			}
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				var r R
				err := panics.Call(func() (err error) {
					r, err = eval(ctx, items[i])
					return err
				})
				done <- result{i, r, err} // never blocks: window tokens bound the items in flight
			}
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()

	pending := map[int]result{}
	next := 0
	var emitErr error
	for res := range done {
		if emitErr != nil {
			continue // drain
		}
		pending[res.i] = res
		for {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			<-slots
			if err := emit(r.i, items[r.i], r.r, r.err); err != nil {
				emitErr = err
				cancel(err)
				break
			}
		}
	}
	if emitErr != nil {
		return emitErr
	}
	return context.Cause(ctx)
}
