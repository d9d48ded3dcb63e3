package query

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
)

// What a package that compiles its own expressions in critq's dialect (the
// transform rules) needs of it.

// BaseEnv returns the environment every expression of critq compiles in:
// the image schema and the views as CEL types, cel-go's extension libraries
// and critq's dialect, but none of a dump's names ([NewEnv] adds them). It
// is built once and safe for concurrent use; extend it (cel.Env.Extend)
// with the names of a use, as the transform rules do with e, with() and
// drop(). Every function and macro of a query works in an extension.
func BaseEnv() (*cel.Env, error) { return baseEnv() }

// CompileIn rewrites, parses and checks src in env, an extension of
// [BaseEnv], as a query compiles: the dialect's operators and truth values
// apply and errors are a *CompileError located in src.
func CompileIn(env *cel.Env, src string) (*cel.Ast, error) { return compileExpr(env, src) }

// ErrorAt returns a *CompileError with msg at the start of expression id
// of a, an AST that [CompileIn] returned for src: its line and column are
// in src as the user wrote it.
func ErrorAt(src string, a *ast.AST, id int64, msg string) *CompileError {
	return errorAt(src, rewriteBitwise(src), a, id, msg)
}

func errorAt(src string, rw rewriteResult, a *ast.AST, id int64, msg string) *CompileError {
	ce := &CompileError{Src: src, Msg: msg}
	if loc := a.SourceInfo().GetStartLocation(id); loc.Line() > 0 {
		text := rw.text
		if off := celOffset(text, lineStartOffsets(text), loc.Line(), loc.Column()); off >= 0 {
			ce.Line, ce.Col = srcLineCol(src, rw.pos.source(off))
		}
	}
	return ce
}
