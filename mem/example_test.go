package mem_test

import (
	"fmt"
	"log"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/mem"
)

func ExampleMemory_Cmdline() {
	d, err := dump.Open("../testdata/dumps/sleep-plain")
	if err != nil {
		log.Fatal(err)
	}
	m := mem.Open(d)
	defer m.Close()
	args, err := m.Cmdline(19635)
	if err != nil {
		log.Fatal(err)
	}
	env, err := m.Environ(19635)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n%q\n", args, env[0])
	// Output:
	// ["sleep" "1000"]
	// "HOME=/root"
}

// The match is the last variable of the environment block
// (mm_env_start 0x7ffde770dfa4, mm_env_end 0x7ffde770dfe9).
func ExampleMemory_Search() {
	d, err := dump.Open("../testdata/dumps/sleep-plain")
	if err != nil {
		log.Fatal(err)
	}
	m := mem.Open(d)
	defer m.Close()
	err = m.Search(mem.Literal([]byte("TERM=xterm")), mem.SearchOptions{}, func(h mem.Match) error {
		fmt.Printf("pid %d at 0x%x: %q\n", h.PID, h.Addr, h.Data)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// pid 19635 at 0x7ffde770dfde: "TERM=xterm"
}
