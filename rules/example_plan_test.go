package rules_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/query"
	"github.com/critq/critq/rules"
	"github.com/critq/critq/transform"
)

// A Go program writes a transformed dump as critq transform -o does:
// compile, apply, validate, plan, write.
func ExampleRuleResult_Plan() {
	const src = "../testdata/dumps/sleep-plain"
	out := filepath.Join(os.TempDir(), fmt.Sprintf("critq-example-%d", os.Getpid()))
	defer os.RemoveAll(out)

	rs, err := rules.CompileRules([]rules.RuleSource{{Where: "rule 1", Kind: "files",
		Expr: `e.type == REG && e.reg.name == "/usr/bin/sleep" ? e.with({"reg.name": "/opt/bin/sleep"}) : e`}}, rules.RuleOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := dump.Open(src)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	res, err := rules.ApplyRules(context.Background(), d, rs)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := res.Validate(d); err != nil {
		fmt.Println(err)
		return
	}
	plan, err := res.Plan(d)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := transform.WriteDir(src, out, plan, transform.WriteOptions{}); err != nil {
		fmt.Println(err)
		return
	}

	// The new dump, read back.
	q, err := query.Compile(`files.filter(f, f.path.startsWith("/opt")).map(f, f.path)`)
	if err != nil {
		fmt.Println(err)
		return
	}
	nd, err := query.Open(out)
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := q.Eval(context.Background(), nd)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.ChangedFiles(), v)
	// Output: [files.img] [/opt/bin/sleep]
}
