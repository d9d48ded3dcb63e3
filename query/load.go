package query

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"sync"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/panics"
	"github.com/critq/critq/model"
)

// Dump is a dump opened for queries. It reads an image only when a query
// needs it, and keeps what it built (views, indexes) for the next query.
// A Dump is safe for concurrent use by several evaluations.
type Dump struct {
	d *dump.Dump

	mu       sync.Mutex
	cache    map[string]*cached
	damage   []string // see damaged
	trackers map[*Tracker]struct{}
}

// Warnings returns what made the values built so far partial, one line
// each: the images the model needed and the dump does not have ("core-42.img
// is missing (needed for ...)"), then the memory reads that failed on a
// damaged image. A value that depends on them has nulls (or, for lists read
// from memory, nothing) in their place. Empty when every value is whole.
func (d *Dump) Warnings() []string {
	var out []string
	for _, m := range model.Of(d.d).Missing() {
		out = append(out, m.Err().Error())
	}
	d.mu.Lock()
	out = append(out, d.damage...)
	d.mu.Unlock()
	return out
}

type cached struct {
	once sync.Once
	val  any
	err  error
	warn []warning // what made val partial, told again on every use
}

// warning is one line of [Dump.Warnings] with what it is about: an
// image's name for a missing image (one line per image), else the line.
type warning struct{ key, line string }

// Tracker records what made the values of one evaluation partial; see
// [Dump.Track].
type Tracker struct {
	d    *Dump
	stop func()

	mu   sync.Mutex
	seen map[string]bool
	list []warning
}

// Track starts recording what makes the values read from d from now on
// partial, until Stop: the images they needed and d does not have, and
// the memory reads that failed on a damaged image, each once, also when
// the value that needed them was built by an earlier evaluation. Track an
// evaluation ([Query.Eval]) to learn whether its result is whole; on a
// Dump that several evaluations use at once, each tracker also sees what
// the others need.
func (d *Dump) Track() *Tracker {
	t := &Tracker{d: d, seen: map[string]bool{}}
	stopModel := model.Of(d.d).Listen(func(m model.Missing) { t.add(missingWarning(m.Err())) })
	d.mu.Lock()
	if d.trackers == nil {
		d.trackers = map[*Tracker]struct{}{}
	}
	d.trackers[t] = struct{}{}
	d.mu.Unlock()
	t.stop = func() {
		stopModel()
		d.mu.Lock()
		delete(d.trackers, t)
		d.mu.Unlock()
	}
	return t
}

// Stop stops t and returns its warnings, one line each, in the order they
// arose; empty when every value read was whole.
func (t *Tracker) Stop() []string {
	t.stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, len(t.list))
	for i, w := range t.list {
		out[i] = w.line
	}
	return out
}

func (t *Tracker) add(w warning) {
	t.mu.Lock()
	if !t.seen[w.key] {
		t.seen[w.key] = true
		t.list = append(t.list, w)
	}
	t.mu.Unlock()
}

func (t *Tracker) warnings() []warning {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]warning(nil), t.list...)
}

func missingWarning(e *model.MissingError) warning { return warning{e.Image, e.Error()} }

// tell gives ws to every tracker of d.
func (d *Dump) tell(ws ...warning) {
	if len(ws) == 0 {
		return
	}
	d.mu.Lock()
	ts := make([]*Tracker, 0, len(d.trackers))
	for t := range d.trackers {
		ts = append(ts, t)
	}
	d.mu.Unlock()
	for _, t := range ts {
		for _, w := range ws {
			t.add(w)
		}
	}
}

// Open opens the dump in directory dir, or the checkpoint archive dir
// (tar, tar.gz, tar.zst). It reads the directory listing only (a
// compressed archive is read once, its pages images left out).
func Open(dir string) (*Dump, error) {
	return openDump(dir, dump.ArchiveOptions{})
}

// Open opens a dump as [Open] does, for evaluations of q: when q reads
// memory, a compressed checkpoint archive copies its pages images to a
// temporary folder in the one pass that reads it, rather than in a second
// pass on the first read of memory. Close the dump's images
// ([Dump.Images]) to remove the folder.
func (q *Query) Open(dir string) (*Dump, error) {
	return openDump(dir, dump.ArchiveOptions{SpoolPages: q.needs.readsMemory()})
}

func openDump(p string, opts dump.ArchiveOptions) (*Dump, error) {
	d, err := dump.OpenAny(p, opts)
	if err != nil {
		return nil, err
	}
	return NewDump(d), nil
}

// NewDump returns a Dump that reads its images from d.
func NewDump(d *dump.Dump) *Dump {
	return &Dump{d: d, cache: map[string]*cached{}}
}

// Name returns the name the dump was opened with.
func (d *Dump) Name() string { return d.d.Name }

// Images returns the underlying dump.
func (d *Dump) Images() *dump.Dump { return d.d }

// once computes the value of key once per Dump. A failure is kept too:
// images do not change under a Dump.
func (d *Dump) once(key string, f func() (any, error)) (any, error) {
	d.mu.Lock()
	c := d.cache[key]
	if c == nil {
		c = &cached{}
		d.cache[key] = c
	}
	d.mu.Unlock()
	built := false
	c.once.Do(func() {
		built = true
		t := d.Track()
		c.val, c.err = f()
		c.warn = t.warnings()
		t.Stop()
	})
	if !built {
		d.tell(c.warn...)
	}
	return c.val, c.err
}

// onceAs is once for a value of type T.
func onceAs[T any](d *Dump, key string, f func() (T, error)) (T, error) {
	v, err := d.once(key, func() (any, error) { return f() })
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}

// DumpError reports an image of a dump that could not be read or decoded.
// Err is usually a *codec.Error that names the file, entry and offset.
type DumpError struct {
	Dump string
	Err  error
}

func (e *DumpError) Error() string { return e.Dump + ": " + e.Err.Error() }
func (e *DumpError) Unwrap() error { return e.Err }

// EvalError reports an evaluation that failed: a runtime error of the
// expression, a cancelled context, or the cost limit.
type EvalError struct {
	Dump string
	Err  error
}

func (e *EvalError) Error() string { return e.Dump + ": " + e.Err.Error() }
func (e *EvalError) Unwrap() error { return e.Err }

// prefetch reads files in parallel, at most GOMAXPROCS at a time, with
// read (File.Image or File.Messages). It returns the first error.
func prefetch(ctx context.Context, files []*dump.File, read func(*dump.File) error) error {
	if len(files) == 0 {
		return nil
	}
	if len(files) == 1 {
		return read(files[0])
	}
	n := min(runtime.GOMAXPROCS(0), len(files))
	work := make(chan *dump.File)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for f := range work {
				if first == nil {
					first = panics.Call(func() error { return read(f) })
				}
			}
			errs <- first
		}()
	}
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		work <- f
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

func readImage(f *dump.File) error {
	_, err := f.Image()
	return err
}

func readMessages(f *dump.File) error {
	_, err := f.Messages()
	return err
}

// files returns the non-nil files among fs.
func nonNil(fs ...*dump.File) []*dump.File {
	out := fs[:0:0]
	for _, f := range fs {
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}

// sortByID sorts files by their numeric id (pagemap-2 before pagemap-10).
func sortByID(fs []*dump.File) []*dump.File {
	out := append([]*dump.File(nil), fs...)
	sort.SliceStable(out, func(i, j int) bool {
		a, ea := strconv.ParseUint(out[i].ID, 10, 64)
		b, eb := strconv.ParseUint(out[j].ID, 10, 64)
		if ea != nil || eb != nil {
			return out[i].ID < out[j].ID
		}
		return a < b
	})
	return out
}

// loadErrors keeps the first image error met by a lazy map during one
// evaluation, so that Eval reports it as a DumpError rather than as the
// error value CEL propagated.
type loadErrors struct {
	mu  sync.Mutex
	err error
}

func (l *loadErrors) add(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
}

func (l *loadErrors) first() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// lazyMap is a CEL map whose keys are known up front (file ids or names)
// and whose values are read on first access: core[42] reads core-42.img
// and nothing else.
type lazyMap struct {
	adapter types.Adapter
	keys    []ref.Val
	index   map[any]int // native key -> position
	load    func(i int) (any, error)
	errs    *loadErrors

	mu   sync.Mutex
	vals []ref.Val
}

func newLazyMap(adapter types.Adapter, keys []ref.Val, load func(i int) (any, error), errs *loadErrors) *lazyMap {
	m := &lazyMap{adapter: adapter, keys: keys, load: load, errs: errs, index: map[any]int{}, vals: make([]ref.Val, len(keys))}
	for i, k := range keys {
		m.index[k.Value()] = i
	}
	return m
}

// lookupKey finds the position of key, accepting any numeric type for a
// numeric key (core[1] and core[t.pid] both work).
func (m *lazyMap) lookupKey(key ref.Val) (int, bool) {
	switch k := key.(type) {
	case types.String:
		i, ok := m.index[string(k)]
		return i, ok
	case types.Uint:
		i, ok := m.index[uint64(k)]
		return i, ok
	case types.Int:
		if k < 0 {
			return 0, false
		}
		i, ok := m.index[uint64(k)]
		return i, ok
	case types.Double:
		if k < 0 || float64(k) != float64(uint64(k)) {
			return 0, false
		}
		i, ok := m.index[uint64(k)]
		return i, ok
	}
	return 0, false
}

func (m *lazyMap) value(i int) ref.Val {
	m.mu.Lock()
	v := m.vals[i]
	m.mu.Unlock()
	if v != nil {
		return v
	}
	nat, err := m.load(i)
	if err != nil {
		m.errs.add(err)
		return types.WrapErr(err)
	}
	v = m.adapter.NativeToValue(nat)
	m.mu.Lock()
	m.vals[i] = v
	m.mu.Unlock()
	return v
}

func (m *lazyMap) Find(key ref.Val) (ref.Val, bool) {
	if types.IsUnknownOrError(key) {
		return key, false
	}
	i, ok := m.lookupKey(key)
	if !ok {
		return nil, false
	}
	return m.value(i), true
}

func (m *lazyMap) Get(key ref.Val) ref.Val {
	v, found := m.Find(key)
	if !found {
		if v != nil {
			return v
		}
		return types.NewErr("no such key: %v", key)
	}
	return v
}

func (m *lazyMap) Contains(key ref.Val) ref.Val {
	_, ok := m.lookupKey(key)
	return types.Bool(ok)
}

func (m *lazyMap) Size() ref.Val { return types.Int(len(m.keys)) }

func (m *lazyMap) Iterator() traits.Iterator {
	return &keyIterator{keys: m.keys}
}

func (m *lazyMap) ConvertToNative(typeDesc reflect.Type) (any, error) {
	return nil, fmt.Errorf("a dump map cannot be converted to %v", typeDesc)
}

func (m *lazyMap) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return m
	case types.TypeType:
		return types.MapType
	}
	return types.NewErr("type conversion error from map to '%s'", t)
}

// Equal compares by identity: two dumps' maps are never equal unless they
// are the same map.
func (m *lazyMap) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(m)) }

func (m *lazyMap) Type() ref.Type { return types.MapType }

func (m *lazyMap) Value() any { return m }

type keyIterator struct {
	keys []ref.Val
	i    int
}

func (it *keyIterator) HasNext() ref.Val { return types.Bool(it.i < len(it.keys)) }
func (it *keyIterator) Next() ref.Val {
	if it.i >= len(it.keys) {
		return nil
	}
	it.i++
	return it.keys[it.i-1]
}
func (it *keyIterator) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("an iterator cannot be converted to %v", t)
}
func (it *keyIterator) ConvertToType(ref.Type) ref.Val {
	return types.NewErr("iterator: no conversion")
}
func (it *keyIterator) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(it)) }
func (it *keyIterator) Type() ref.Type              { return types.IteratorType }
func (it *keyIterator) Value() any                  { return it }
