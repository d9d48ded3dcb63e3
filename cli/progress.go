package cli

import (
	"fmt"
	"time"

	"github.com/critq/critq/query"
)

// Timing of a one-shot query's progress line.
const (
	evalProgressAfter = 2 * time.Second
	evalProgressEvery = time.Second
)

// withProgress runs eval; when c.stderr is a terminal and eval runs longer
// than evalProgressAfter, a line there shows the time elapsed and the
// values q's lists have been given, rewritten every second and erased at
// the end. Ctrl-C cancels the context the evaluation runs under.
func (c *cli) withProgress(q *query.Query, eval func() error) error {
	p := &progress{w: c.stderr, start: time.Now()}
	p.line = func() string {
		return fmt.Sprintf("evaluating for %.1fs, %d values built (Ctrl-C stops it; --cost and --max-memory bound it)",
			time.Since(p.start).Seconds(), q.Progress())
	}
	p.run(isTerminal(c.stderr), evalProgressAfter, evalProgressEvery)
	defer p.stop()
	return eval()
}
