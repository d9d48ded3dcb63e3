package query

import (
	"cel.dev/cel-go/cel"
)

// dialectOptions returns every cel.EnvOption of critq's CEL dialect:
// functions, constants, macros and overloads.
func dialectOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.CrossTypeNumericComparisons(true),
	}
}

// compileExpr parses and checks src in env.
func compileExpr(env *cel.Env, src string) (*cel.Ast, error) {
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	return ast, nil
}
