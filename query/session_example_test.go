package query_test

import (
	"context"
	"fmt"
	"os"

	"cel.dev/cel-go/common/types/ref"

	"github.com/critq/critq/query"
)

// Bindings are the let statements of scripts and of the REPL.
func ExampleBindings() {
	b := query.NewBindings()
	if err := b.Let("exec", "vmas.filter(v, v.prot & PROT_EXEC)"); err != nil {
		fmt.Println(err)
		return
	}
	q, err := b.Compile("exec.map(v, v.size).sum()")
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := query.Open("../testdata/dumps/sleep-plain")
	if err != nil {
		fmt.Println(err)
		return
	}
	memo := map[string]ref.Val{} // values of the bindings against d
	v, err := b.Eval(context.Background(), q, d, memo)
	if err != nil {
		fmt.Println(err)
		return
	}
	query.Output{Format: query.FormatJSON}.Write(os.Stdout, "", v)
	fmt.Println(b.Let("exec", "1") == nil)
	// Output:
	// 1589248
	// true
}
