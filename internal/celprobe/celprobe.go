// Package celprobe writes one call of every function and one use of every
// macro of a CEL environment, for tests that check that two environments
// accept the same expressions (a query's and a rule's).
package celprobe

import (
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
)

// Probe is an expression that uses one function overload or macro.
type Probe struct {
	Name string // function or macro
	Expr string
}

// Calls returns, for every function of env whose name starts with a letter
// and that skip does not exclude, one call per overload whose argument
// types have a literal (int, uint, double, string, bytes, bool, null,
// lists and maps of those; type parameters and dyn as 0). An overload
// without such arguments is left out. Sorted by name.
func Calls(env *cel.Env, skip func(string) bool) []Probe {
	var out []Probe
	for name, fn := range env.Functions() {
		if name == "" || !isLetter(name[0]) || skip != nil && skip(name) {
			continue
		}
		for _, o := range fn.OverloadDecls() {
			args := o.ArgTypes()
			lits := make([]string, len(args))
			ok := true
			for i, t := range args {
				if lits[i], ok = literal(t); !ok {
					break
				}
			}
			if !ok {
				continue
			}
			var e string
			if o.IsMemberFunction() && len(lits) > 0 {
				e = "(" + lits[0] + ")." + name + "(" + strings.Join(lits[1:], ", ") + ")"
			} else {
				e = name + "(" + strings.Join(lits, ", ") + ")"
			}
			out = append(out, Probe{Name: name, Expr: e})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Expr < out[j].Expr
	})
	return out
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func literal(t *types.Type) (string, bool) {
	switch t.Kind() {
	case types.IntKind:
		return "1", true
	case types.UintKind:
		return "1u", true
	case types.DoubleKind:
		return "1.0", true
	case types.StringKind:
		return "'a'", true
	case types.BytesKind:
		return "b'a'", true
	case types.BoolKind:
		return "true", true
	case types.NullTypeKind:
		return "null", true
	case types.DynKind, types.TypeParamKind, types.AnyKind:
		return "1", true
	case types.DurationKind:
		return "duration('1s')", true
	case types.TimestampKind:
		return "timestamp(0)", true
	case types.ListKind:
		e, ok := literal(t.Parameters()[0])
		return "[" + e + "]", ok
	case types.MapKind:
		k, ok1 := literal(t.Parameters()[0])
		v, ok2 := literal(t.Parameters()[1])
		return "{" + k + ": " + v + "}", ok1 && ok2
	}
	return "", false
}

// macroUses holds one use of each macro of cel-go's standard library and
// its extensions, keyed by cel.Macro.MacroKey.
var macroUses = map[string]string{
	"has:1:false":              "has({'a': 1}.a)",
	"all:2:true":               "[1].all(x, x > 0)",
	"all:3:true":               "[1].all(i, x, x > i)",
	"exists:2:true":            "[1].exists(x, x > 0)",
	"exists:3:true":            "[1].exists(i, x, x > i)",
	"exists_one:2:true":        "[1].exists_one(x, x > 0)",
	"exists_one:3:true":        "[1].exists_one(i, x, x > i)",
	"existsOne:2:true":         "[1].existsOne(x, x > 0)",
	"existsOne:3:true":         "[1].existsOne(i, x, x > i)",
	"map:2:true":               "[1].map(x, x + 1)",
	"map:3:true":               "[1].map(x, x > 0, x + 1)",
	"map:4:true":               "[1].map(i, x, x > 0, x + i)",
	"filter:2:true":            "[1].filter(x, x > 0)",
	"filter:3:true":            "[1].filter(i, x, x > i)",
	"transformList:3:true":     "[1].transformList(i, x, x + i)",
	"transformList:4:true":     "[1].transformList(i, x, x > 0, x + i)",
	"transformMap:3:true":      "{1: 2}.transformMap(k, v, v + k)",
	"transformMap:4:true":      "{1: 2}.transformMap(k, v, v > 0, v + k)",
	"transformMapEntry:3:true": "{1: 2}.transformMapEntry(k, v, {v: k})",
	"transformMapEntry:4:true": "{1: 2}.transformMapEntry(k, v, v > 0, {v: k})",
	"bind:3:true":              "cel.bind(a, 1, a + 1)",
	"sortBy:2:true":            "[2, 1].sortBy(x, -x)",
	"least:*:true":             "math.least(1, 2)",
	"greatest:*:true":          "math.greatest(1, 2)",
	"block:2:true":             "cel.block([1], 1)",
	"index:1:true":             "cel.index(0)",
	"iterVar:2:true":           "cel.iterVar(0, 0)",
	"accuVar:2:true":           "cel.accuVar(0, 0)",
}

// Macros returns one use of every macro of env. A macro this package does
// not know is returned with an empty Expr, for the caller to report.
func Macros(env *cel.Env) []Probe {
	var out []Probe
	for _, m := range env.Macros() {
		out = append(out, Probe{Name: m.MacroKey(), Expr: macroUses[m.MacroKey()]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
