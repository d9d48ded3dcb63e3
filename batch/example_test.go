package batch_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/critq/critq/batch"
)

func ExampleParse() {
	src := `# executable mappings
let exec = vmas.filter(v, v.prot & PROT_EXEC)
exec-count: exec.size()
comms: tasks.map(t,
    t.comm)
`
	sc, err := batch.Parse("report.critq", []byte(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, st := range sc.Stmts {
		fmt.Printf("%d:%d %s %s = %q\n", st.ExprLine, st.ExprCol, st.Kind, st.Name, st.Expr)
	}
	_, err = batch.Parse("bad.critq", []byte("count = 1\n"))
	fmt.Println(err)
	// Output:
	// 2:12 let exec = "vmas.filter(v, v.prot & PROT_EXEC)"
	// 3:13 query exec-count = "exec.size()"
	// 4:8 query comms = "tasks.map(t,\n    t.comm)"
	// bad.critq:1:7: expected ':' after query name count (or let NAME = EXPR, rule KIND: EXPR)
	//  | count = 1
	//  | ......^
}

func ExampleRun() {
	dumps := []string{"a", "bb", "ccc"}
	err := batch.Run(context.Background(), dumps, batch.Options{Jobs: 2},
		func(ctx context.Context, d string) (string, error) {
			return strings.ToUpper(d), nil
		},
		func(i int, d, r string, err error) error {
			fmt.Println(i, d, r, err)
			return nil
		})
	fmt.Println(err)
	// Output:
	// 0 a A <nil>
	// 1 bb BB <nil>
	// 2 ccc CCC <nil>
	// <nil>
}
