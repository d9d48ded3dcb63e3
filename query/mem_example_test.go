package query_test

import (
	"context"
	"fmt"

	"github.com/critq/critq/query"
)

// The memory functions read the tasks' pages; cmdline is also a field of
// the tasks view.
func ExampleCompile_memory() {
	d, err := query.Open("../testdata/dumps/sleep-plain")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, src := range []string{
		`tasks.map(t, cmdline(t.pid))`,
		`tasks.map(t, t.cmdline.size())`,
		`tasks.map(t, environ(t.pid).filter(e, e.startsWith("HOME=")))`,
		`cstring(19635, tasks[0].mm.mm_arg_start)`,
		`mem(19635, 0, 1)`,
	} {
		q, err := query.Compile(src)
		if err != nil {
			fmt.Println(err)
			return
		}
		v, err := q.Eval(context.Background(), d)
		fmt.Println(v, err)
	}
	// Output:
	// [[sleep, 1000]] <nil>
	// [2] <nil>
	// [[HOME=/root]] <nil>
	// sleep <nil>
	// <nil> ../testdata/dumps/sleep-plain: pid 19635: 0x0: not in any VMA
}
