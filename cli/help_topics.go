package cli

import (
	"fmt"
	"sort"
	"strings"

	"cel.dev/cel-go/common/types"

	"github.com/critq/critq/query"
)

func init() {
	helpTopics["functions"] = functionsHelp
	helpTopics["constants"] = constantsHelp
}

// critqFunctions are the functions critq adds to CEL, with what each does.
// Their signatures come from the environment itself; TestHelpFunctions
// checks that every name here is declared.
var critqFunctions = []struct{ name, doc string }{
	{"hex", `crit's hex form of a number: hex(4096u) is "0x1000"`},
	{"flags", `crit's names of the bits of a flag field: flags(v.prot, "mmap.prot") is "PROT_READ | PROT_EXEC"; tables: mmap.prot, mmap.flags, mmap.status, rfile.flags, seals.flags, pmap.flags`},
	{"dict", `crit's name of a value: dict(s.state, "sk.state") is "LISTEN"; tables: sk.family, sk.type, sk.state, sk.proto, gen.task_state`},
	{"ip", `an address from (criu).ipadd words: ip(e.isk.src_addr) is "127.0.0.1" or "::1"`},
	{"major", `the major number of a device (kernel encoding, 20-bit minor)`},
	{"minor", `the minor number of a device`},
	{"human", `a size as ls -h prints it: human(1536u) is "1.5 KiB"`},
	{"glob", `whether a path matches a shell pattern (** spans directories): glob(f.path, "/usr/lib/**/*.so*")`},
	{"basename", `the last element of a path`},
	{"dirname", `a path without its last element`},
	{"sum", `the total of a list of numbers: vmas.map(v, v.size).sum()`},
	{"overlapping", `the VMAs of a list that overlap [start, end), in linear time: overlapping(t.vmas, p.vaddr, p.vaddr + p.nr_pages * 4096u)`},
	{"mem", `bytes of a task's memory: mem(pid, addr, len); an error value says why a range cannot be read`},
	{"cstring", `a NUL-terminated string in a task's memory: cstring(pid, addr)`},
	{"cmdline", `a task's command line, read from its memory (empty for a zombie)`},
	{"environ", `a task's environment, read from its memory (empty for a zombie)`},
}

func functionsHelp() string {
	env, err := query.NewEnv()
	if err != nil {
		return "critq: " + err.Error() + "\n"
	}
	fns := env.Functions()
	var b strings.Builder
	b.WriteString(`Functions critq adds to CEL (cel-go's standard functions and its strings,
lists, sets, math, bindings and encoders libraries are there too; see
https://github.com/google/cel-spec and cel-go's ext package).

`)
	for _, f := range critqFunctions {
		fmt.Fprintf(&b, "  %s\n      %s\n", f.name, f.doc)
		decl, ok := fns[f.name]
		if !ok {
			continue
		}
		seen := map[string]bool{}
		for _, o := range decl.OverloadDecls() {
			sig := signature(f.name, o.IsMemberFunction(), o.ArgTypes(), o.ResultType())
			if !seen[sig] {
				seen[sig] = true
				fmt.Fprintf(&b, "      %s\n", sig)
			}
		}
	}
	b.WriteString(`
The dialect also has Go's bitwise operators & | ^ << >> and unary ~ on int
and uint, numbers as conditions in filter, exists, all and exists_one, and
== between int, uint and double.
`)
	return b.String()
}

func signature(name string, member bool, args []*types.Type, result *types.Type) string {
	var parts []string
	for _, a := range args {
		parts = append(parts, a.String())
	}
	if member && len(parts) > 0 {
		return fmt.Sprintf("%s.%s(%s) -> %s", parts[0], name, strings.Join(parts[1:], ", "), result)
	}
	return fmt.Sprintf("%s(%s) -> %s", name, strings.Join(parts, ", "), result)
}

func constantsHelp() string {
	groups := map[string][]query.Constant{}
	var names []string
	for _, c := range query.Constants() {
		if _, ok := groups[c.Group]; !ok {
			names = append(names, c.Group)
		}
		groups[c.Group] = append(groups[c.Group], c)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Named constants of critq's CEL dialect, by the field they are for.\nFlag bits and states are uint, file types int.\n")
	for _, g := range names {
		fmt.Fprintf(&b, "\n  %s\n", g)
		line := "     "
		for _, c := range groups[g] {
			item := fmt.Sprintf(" %s=%v", c.Name, c.Value)
			if u, ok := c.Value.(types.Uint); ok && bitGroup(g) {
				item = fmt.Sprintf(" %s=%#x", c.Name, uint64(u))
			}
			if len(line)+len(item) > 78 {
				b.WriteString(line + "\n")
				line = "     "
			}
			line += item
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// bitGroup reports whether the constants of a group are flag bits (shown
// in hex) rather than values.
func bitGroup(g string) bool {
	for _, suffix := range []string{"prot", "flags", "status", "seals", "mask"} {
		if strings.HasSuffix(g, suffix) {
			return true
		}
	}
	return false
}
