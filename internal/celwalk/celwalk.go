// Package celwalk holds what critq's packages that read checked CEL ASTs
// share: the names the dialect inserts into the AST and helpers to match
// calls.
package celwalk

import celast "cel.dev/cel-go/common/ast"

// Truthy is the function the dialect wraps around a condition that is not
// a bool (x & 4, a nullable field): true when not zero and not null. The
// leading @ keeps it out of reach of the expression syntax.
const Truthy = "@truthy"

// CallArgs returns the arguments of a global call of fn with n arguments.
func CallArgs(e celast.Expr, fn string, n int) ([]celast.Expr, bool) {
	if e.Kind() != celast.CallKind {
		return nil, false
	}
	call := e.AsCall()
	if call.IsMemberFunction() || call.FunctionName() != fn || len(call.Args()) != n {
		return nil, false
	}
	return call.Args(), true
}
