package query

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"google.golang.org/protobuf/proto"
)

// viewQueries holds the compiled query of each view variable, shared by
// every ViewList call of the process.
var viewQueries sync.Map // name -> *Query

// ViewList returns the elements of the view variable name ("tasks", "vmas",
// "fds", ...) of d as Go values of its message type M (*views.Task, ...):
// what the CEL variable of that name holds, read as lazily as a query of
// it alone. Programs that read whole views (diff, export, check) use it
// instead of compiling the name themselves.
func ViewList[M proto.Message](ctx context.Context, d *Dump, name string) ([]M, error) {
	q, ok := viewQueries.Load(name)
	if !ok {
		c, err := Compile(name)
		if err != nil {
			return nil, err
		}
		q, _ = viewQueries.LoadOrStore(name, c)
	}
	v, err := q.(*Query).Eval(ctx, d)
	if err != nil {
		return nil, err
	}
	if l, ok := v.Value().([]M); ok {
		return l, nil
	}
	native, err := v.ConvertToNative(reflect.TypeOf([]M{}))
	if err != nil {
		var zero M
		return nil, fmt.Errorf("%s: view %s is %v, not a list of %T", d.Name(), name, v.Type(), zero)
	}
	return native.([]M), nil
}
