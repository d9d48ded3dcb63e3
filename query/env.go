package query

import (
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"
)

// critq has one CEL environment, built once per process on first use and
// extended for each use: baseEnv holds the schema, the container, cel-go's
// extension libraries and the dialect; queries add the variables of the
// dump and critq.mem (queryEnv), declared names add their variables, and
// rules add e, with() and drop(). Every function and macro of a query thus
// works in a rule. Building the base costs tens of milliseconds; extending
// it a fraction of one.

// baseEnv is the environment every expression of critq compiles in.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	opts := []cel.EnvOption{cel.TypeDescs(schemaFiles()...), cel.Container("critq.images"),
		ext.Strings(), ext.Lists(), ext.Sets(), ext.Math(), ext.Bindings(), ext.Encoders()}
	return cel.NewEnv(append(opts, dialectOptions()...)...)
})

// queryEnv is baseEnv with the top-level names of a dump and the memory
// functions.
var queryEnv = sync.OnceValues(func() (*cel.Env, error) {
	base, err := baseEnv()
	if err != nil {
		return nil, err
	}
	envBuilt.Store(true)
	vars := Vars()
	opts := make([]cel.EnvOption, 0, len(vars)+1)
	for _, v := range vars {
		opts = append(opts, cel.Variable(v.Name, v.Type))
	}
	return base.Extend(append(opts, cel.Lib(memLib{}))...)
})

// NewEnv returns critq's CEL environment: the image schema and the views as
// CEL types, one variable per name of [Vars], and critq's dialect. It is
// built once; every call returns the same environment, which is safe for
// concurrent use. Extend it (cel.Env.Extend) to add declarations.
func NewEnv() (*cel.Env, error) { return queryEnv() }
