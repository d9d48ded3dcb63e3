package query_test

import (
	"context"
	"fmt"
	"os"

	"github.com/critq/critq/query"
)

// Compile once, evaluate against a dump.
func ExampleCompile() {
	q, err := query.Compile(`tasks.map(t, [t.pid, t.comm])`)
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := query.Open("../testdata/dumps/sleep-plain")
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := q.Eval(context.Background(), d)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v)
	fmt.Println(q.Vars())
	// Output:
	// [[19635, sleep]]
	// [tasks]
}

// Results print in crit's pretty JSON, among other formats.
func ExampleOutput_Write() {
	q, _ := query.Compile(`vmas.filter(v, v.prot & PROT_EXEC)[0]`)
	d, _ := query.Open("../testdata/dumps/sleep-plain")
	v, err := q.Eval(context.Background(), d)
	if err != nil {
		fmt.Println(err)
		return
	}
	query.Output{Format: query.FormatPretty}.Write(os.Stdout, "", v)
	// Output:
	// {
	//     "start": "0x556e47411000",
	//     "end": "0x556e47416000",
	//     "pgoff": 8192,
	//     "shmid": 1,
	//     "prot": "PROT_READ | PROT_EXEC",
	//     "flags": "MAP_PRIVATE",
	//     "status": "VMA_AREA_REGULAR | VMA_FILE_PRIVATE",
	//     "fd": -1,
	//     "fdflags": "0x0",
	//     "pid": 19635,
	//     "size": 20480,
	//     "path": "/usr/bin/sleep"
	// }
}

// A compile error shows the expression with a caret under the fault.
func ExampleCompile_error() {
	_, err := query.Compile(`tasks.map(t, t.pdi)`)
	fmt.Println(err != nil)
	// Output:
	// true
}

// One query, many dumps.
func ExampleQuery_Eval() {
	q, _ := query.Compile(`sockets.filter(s, s.state == TCP_LISTEN).map(s, s.local_port)`)
	for _, dir := range []string{"../testdata/dumps/tcp", "../testdata/dumps/sleep-plain"} {
		d, _ := query.Open(dir)
		v, err := q.Eval(context.Background(), d)
		fmt.Println(v, err)
	}
	// Output:
	// [47310, 47311] <nil>
	// [] <nil>
}
