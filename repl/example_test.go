package repl_test

import (
	"context"
	"fmt"

	"github.com/critq/critq/query"
	"github.com/critq/critq/repl"
)

// An Evaluator is driven with parsed lines; what it returns is printed by
// the caller.
func ExampleEvaluator_Process() {
	ev, err := repl.New(repl.Options{Format: query.FormatJSON, ShowTypes: true}, "../testdata/dumps/sleep-plain")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ev.Close()
	for _, line := range []string{
		":let exec = vmas.filter(v, v.prot & PROT_EXEC)",
		"exec.size()",
		":type exec",
		"exec[0].paht",
		`:transform core: e.with({"tc.comm": "zz"})`,
	} {
		cmd, err := repl.Parse(line)
		if err != nil {
			fmt.Println(err)
			continue
		}
		out, _, err := ev.Process(context.Background(), cmd)
		if err != nil {
			fmt.Println(err)
		}
		fmt.Print(out)
	}
	// Output:
	// 5 : int
	// list(critq.views.vma)
	// ERROR: <repl>:1:8: undefined field 'paht'; did you mean 'path'?
	//  | exec[0].paht
	//  | .......^
	// core-19635.img: entry 0
	//     tc.comm: "sleep" -> "zz"
	// CORE: 1 entries, 1 matched, 1 changed; nothing written
}

func ExampleEvaluator_Complete() {
	ev, err := repl.New(repl.Options{}, "../testdata/dumps/sleep-plain")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ev.Close()
	head, words, _ := ev.Complete("size(tasks[0].core.tc.exit", 26)
	fmt.Println(head, words)
	// Output:
	// size(tasks[0].core.tc. [exit_code]
}
