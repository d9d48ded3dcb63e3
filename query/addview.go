package query

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"cel.dev/cel-go/cel"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// AddedView is a view whose elements a package outside query computes from
// an opened dump: the extension point through which a package that itself
// reads query's views (check's problems) becomes a CEL variable without an
// import cycle. The program that links both (cli) adds it.
type AddedView struct {
	// Name is the variable's name; it must not be taken.
	Name string
	// Message is the full name of the elements' message type, registered
	// in protoregistry.GlobalFiles ("critq.views.problem").
	Message string
	// Doc says in a few words what the view holds (critq help vars).
	Doc string
	// Build returns the elements for d, each a Message. It runs at most
	// once per Dump (its result, or error, is kept as the views' are),
	// with the context of the first evaluation that reads the view: the
	// caller's settings reach it through context values.
	Build func(ctx context.Context, d *Dump) ([]proto.Message, error)
}

var (
	addedMu   sync.Mutex
	addedVars []Var
	// envBuilt is set when the environment, which declares the added
	// views, is built: a view added later could not be compiled.
	envBuilt atomic.Bool
)

// AddView adds a view to the environment. Call it before anything is
// compiled (from an init function): the environment is built once.
func AddView(v AddedView) error {
	if v.Name == "" || v.Build == nil {
		return fmt.Errorf("query.AddView(%q): a view needs a name and a Build function", v.Name)
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(v.Message))
	if _, ok := d.(protoreflect.MessageDescriptor); err != nil || !ok {
		return fmt.Errorf("query.AddView(%q): %q is not a registered message", v.Name, v.Message)
	}
	addedMu.Lock()
	defer addedMu.Unlock()
	for _, o := range append(viewVars, append(addedVars, kindVars()...)...) {
		if o.Name == v.Name {
			return fmt.Errorf("query.AddView(%q): the name is taken", v.Name)
		}
	}
	if envBuilt.Load() {
		return fmt.Errorf("query.AddView(%q): the environment is already built", v.Name)
	}
	build := v.Build
	addedVars = append(addedVars, Var{Name: v.Name, Type: cel.ListType(cel.ObjectType(v.Message)), Doc: v.Doc,
		view: viewAdded, build: build})
	return nil
}

// added returns the views added so far.
func added() []Var {
	addedMu.Lock()
	defer addedMu.Unlock()
	return append([]Var(nil), addedVars...)
}

// addedValue builds an added view of d once.
func (d *Dump) addedValue(ctx context.Context, v Var) ([]proto.Message, error) {
	return onceAs(d, "added:"+v.Name, func() ([]proto.Message, error) { return v.build(ctx, d) })
}
