// Package model is the joined model of a CRIU dump: what the images of a
// dump say together, read lazily and built once per dump.
//
// Package dump opens a dump and decodes its images one by one; it knows
// files, kinds and bytes. Package model joins them: the process tree of
// pstree.img with each task's core, the fd table of each task (ids-PID.img
// gives the files_id of fdinfo-N.img), the file objects of files.img with
// one rule for their path, open flags and deletion, the sockets with their
// owners. Package mem reads task memory on the tasks, mm and pagemap images
// the model names; package explore renders the model as the views people
// know (ps, fds, sockets, inspect); package query presents it as CEL views.
// None of them joins images on its own, so that two presentations of one
// fact cannot disagree.
//
// The model is kept in the dump ([dump.Dump.Value]): [Of] returns the same
// Model for the same Dump, and every part is built at most once, on first
// use, safely under concurrent use.
//
// # Missing images
//
// The model knows which images a task needs: core-PID.img for every task;
// ids-PID.img, mm-PID.img, pagemap-PID.img and fs-PID.img for a task that
// is not a zombie (CRIU writes only the core of a zombie); fdinfo-N.img for
// the files_id its ids name; files.img for every file an fd names;
// pages-N.img for the pages a pagemap puts there; pstree.img for the tree.
// A missing image is never read as empty data: the method that needs it
// returns a [*MissingError] naming the image, and the model records it
// ([Model.Missing]) so that a presentation that goes on without it can say
// once per image that its answer is partial.
package model

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/proto/images"
)

// Model is the joined model of one dump. Its methods are safe for
// concurrent use.
type Model struct {
	d *dump.Dump

	tree   part[*Tree]
	files  part[*Files]
	mounts part[[]MountNS]
	remaps part[map[uint32]images.RemapType]
	fds    part[*FdTables]

	mu        sync.Mutex
	missing   map[string]string // image name -> what it was needed for
	listeners map[*listener]struct{}
}

type listener struct{ f func(Missing) }

// part is one lazily built part of the model.
type part[T any] struct {
	once sync.Once
	v    T
	err  error
}

func (p *part[T]) get(build func() (T, error)) (T, error) {
	p.once.Do(func() { p.v, p.err = build() })
	return p.v, p.err
}

type key struct{}

// Of returns the model of d, the same one for every call with d.
func Of(d *dump.Dump) *Model {
	return d.Value(key{}, func() any { return &Model{d: d} }).(*Model)
}

// Dump returns the dump of the model.
func (m *Model) Dump() *dump.Dump { return m.d }

// MissingError is the error of a value that needs an image the dump does
// not have, or has as no regular file, which is not read (a symbolic link:
// see [dump.Dump.NotRead]).
type MissingError struct {
	Image string // the file name, "pagemap-42.img"
	For   string // what needed it, "the memory of pid 42"
	What  string // what the dump has by that name, "" for nothing: "a symbolic link"
}

func (e *MissingError) Error() string {
	s := e.Image + " is missing"
	if e.What != "" {
		s = e.Image + ": " + e.What + ", not read"
	}
	if e.For == "" {
		return s
	}
	return s + " (needed for " + e.For + ")"
}

// IsMissing reports whether err is (or wraps) a *MissingError.
func IsMissing(err error) bool {
	var me *MissingError
	return errors.As(err, &me)
}

// Missing is one image the model needed and did not find.
type Missing struct {
	Image string
	For   string
	What  string // as in MissingError
}

// Err returns the error of m.
func (m Missing) Err() *MissingError { return &MissingError{Image: m.Image, For: m.For, What: m.What} }

// Missing returns the images the model needed so far and did not find,
// sorted by name, each once.
func (m *Model) Missing() []Missing {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Missing, 0, len(m.missing))
	for img, what := range m.missing {
		out = append(out, Missing{Image: img, For: what, What: m.d.NotReadWhy(img)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Image < out[j].Image })
	return out
}

// Listen calls f with every missing image a value of the model needs from
// now until stop is called: each time a value needs it, also when the
// value was built before (a part of the model built without an image
// says so again on every use). Missing, by contrast, is everything
// recorded since the model was made. f is called from the goroutine that
// needed the image, with no lock held; with several listeners, each sees
// what every goroutine needs.
func (m *Model) Listen(f func(Missing)) (stop func()) {
	l := &listener{f}
	m.mu.Lock()
	if m.listeners == nil {
		m.listeners = map[*listener]struct{}{}
	}
	m.listeners[l] = struct{}{}
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.listeners, l)
		m.mu.Unlock()
	}
}

// missingErr records that image is missing, tells the listeners, and
// returns its error.
func (m *Model) missingErr(image, what string) error {
	m.mu.Lock()
	if m.missing == nil {
		m.missing = map[string]string{}
	}
	if _, ok := m.missing[image]; !ok {
		m.missing[image] = what
	}
	ls := make([]*listener, 0, len(m.listeners))
	for l := range m.listeners {
		ls = append(ls, l)
	}
	m.mu.Unlock()
	ms := Missing{Image: image, For: what, What: m.d.NotReadWhy(image)}
	for _, l := range ls {
		l.f(ms)
	}
	return ms.Err()
}

// again tells the listeners once more of the missing images in errs, which
// a part of the model built before returns or went on without.
func (m *Model) again(errs ...error) {
	for _, err := range errs {
		var me *MissingError
		if errors.As(err, &me) {
			m.missingErr(me.Image, me.For)
		}
	}
}

// fileName is the name of the image of kind for id: FileName("CORE", 42)
// is core-42.img.
func fileName(kind string, id uint64) string {
	k, ok := magic.ByName(kind)
	if !ok {
		return kind
	}
	return k.FileName(strconv.FormatUint(id, 10))
}

// First returns the first entry of the image of kind for id as a T. A
// missing image is (nil, nil): the caller decides whether it is missing
// ([Model.Need]). An image whose entry is not a T (only an image that
// [dump] let through could be) is an error, never a panic.
func First[T proto.Message](f *dump.File) (T, error) {
	var zero T
	if f == nil {
		return zero, nil
	}
	msg, err := f.First()
	if err != nil || msg == nil {
		return zero, err
	}
	t, ok := msg.(T)
	if !ok {
		return zero, fmt.Errorf("%s: entry 0 is a %s", f.Name, msg.ProtoReflect().Descriptor().Name())
	}
	return t, nil
}

// Messages returns the entries of f that are T, skipping a head entry of
// another type; nil for a nil f.
func Messages[T proto.Message](f *dump.File) ([]T, error) {
	if f == nil {
		return nil, nil
	}
	msgs, err := f.Messages()
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(msgs))
	for _, msg := range msgs {
		if t, ok := msg.(T); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// Each calls fn with every T entry of every image of kind, in file order.
func Each[T proto.Message](d *dump.Dump, kind string, fn func(T)) error {
	for _, f := range d.Kind(kind) {
		ms, err := Messages[T](f)
		if err != nil {
			return err
		}
		for _, msg := range ms {
			fn(msg)
		}
	}
	return nil
}
