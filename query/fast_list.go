package query

import (
	"fmt"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/proto/views"
)

// msgList is a CEL list over a Go slice of messages, as the activation
// holds the views (vmas, tasks, fds, ...) and the list kinds. For CEL it is
// the list CEL builds from the slice itself (elements converted when
// read), to which it delegates every list operation; the fast path
// (fast.go) reads the slice directly.
type msgList[T proto.Message] struct {
	traits.Lister
	items []T
	adapt types.Adapter
}

// fastRange is what the fast path iterates: a list of messages whose i-th
// element is at(i).
type fastRange interface {
	len() int
	at(i int) protoreflect.Message
	// pick returns the list of the elements at idx, in that order.
	pick(idx []int) ref.Val
}

func newMsgList[T proto.Message](adapter types.Adapter, items []T) *msgList[T] {
	return &msgList[T]{Lister: types.NewDynamicList(adapter, items), items: items, adapt: adapter}
}

func (l *msgList[T]) len() int                      { return len(l.items) }
func (l *msgList[T]) at(i int) protoreflect.Message { return l.items[i].ProtoReflect() }
func (l *msgList[T]) pick(idx []int) ref.Val        { return newMsgList(l.adapt, pickItems(l.items, idx)) }

// Fold, IsZeroValue and String forward to CEL's list, which has them.
func (l *msgList[T]) Fold(f traits.Folder) {
	if fl, ok := l.Lister.(traits.Foldable); ok {
		fl.Fold(f)
		return
	}
	types.ToFoldableList(l.Lister).Fold(f)
}

func (l *msgList[T]) IsZeroValue() bool { return len(l.items) == 0 }

func (l *msgList[T]) String() string { return fmt.Sprint(l.Lister) }

func pickItems[T any](items []T, idx []int) []T {
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = items[j]
	}
	return out
}

// messageList wraps a view or list-kind value of the activation in a
// msgList; other values are returned as they are.
func messageList(adapter types.Adapter, v any) any {
	switch x := v.(type) {
	case []*views.Vma:
		return newMsgList(adapter, x)
	case []*views.Task:
		return newMsgList(adapter, x)
	case []*views.Fd:
		return newMsgList(adapter, x)
	case []*views.File:
		return newMsgList(adapter, x)
	case []*views.Socket:
		return newMsgList(adapter, x)
	case []*views.Mount:
		return newMsgList(adapter, x)
	case []*views.Pagemap:
		return newMsgList(adapter, x)
	case []proto.Message:
		return newMsgList(adapter, x)
	}
	return v
}

// celRange iterates any CEL list whose elements are messages, converting
// each element as CEL would.
type celRange struct {
	l     traits.Lister
	n     int
	elems []ref.Val
	adapt types.Adapter
}

func newCELRange(adapter types.Adapter, l traits.Lister) (*celRange, bool) {
	n, ok := l.Size().(types.Int)
	if !ok || n < 0 {
		return nil, false
	}
	return &celRange{l: l, n: int(n), elems: make([]ref.Val, n), adapt: adapter}, true
}

func (r *celRange) len() int { return r.n }

// at returns element i as a message, or nil when it is none.
func (r *celRange) at(i int) protoreflect.Message {
	v := r.l.Get(types.Int(i))
	r.elems[i] = v
	switch m := v.Value().(type) {
	case proto.Message:
		return m.ProtoReflect()
	case protoreflect.Message:
		return m
	}
	return nil
}

func (r *celRange) pick(idx []int) ref.Val {
	return types.NewRefValList(r.adapt, pickItems(r.elems, idx))
}
