package query

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"sync"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/panics"
)

// activation returns the values of the variables n names. Views are built
// now, in parallel; kind variables are lazy maps that read an image when an
// element is first looked up.
func (d *Dump) activation(ctx context.Context, adapter types.Adapter, n *needs, errs *loadErrors) (map[string]any, error) {
	vars := map[string]Var{}
	for _, v := range Vars() {
		vars[v.Name] = v
	}
	names := make([]string, 0, len(n.vars))
	for name := range n.vars {
		names = append(names, name)
	}
	sort.Strings(names)
	act := make(map[string]any, len(names))
	var mu sync.Mutex
	var wg sync.WaitGroup
	var first error
	for _, name := range names {
		v := vars[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var val any
			err := panics.Call(func() (err error) {
				val, err = d.varValue(ctx, adapter, v, n, errs)
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			act[v.Name] = messageList(adapter, val) // fast_list.go
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, &DumpError{Dump: d.Name(), Err: first}
	}
	return act, nil
}

func (d *Dump) varValue(ctx context.Context, adapter types.Adapter, v Var, n *needs, errs *loadErrors) (any, error) {
	switch v.view {
	case viewTasks:
		return d.tasks(ctx, n)
	case viewVMAs:
		return d.vmas(ctx, n)
	case viewFDs:
		return d.fds(ctx, n)
	case viewFiles:
		return d.filesView(ctx, n)
	case viewSockets:
		return d.sockets(ctx, n)
	case viewMounts:
		return d.mounts(ctx)
	case viewThreads:
		return d.threads()
	case viewPagemaps:
		return d.pagemaps(ctx)
	case viewImages:
		return d.imagesMap(adapter, errs), nil
	case viewContainer:
		return d.container()
	case viewRootfs:
		return d.rootfs()
	case viewDeletedFiles:
		return d.deletedFiles()
	case viewAdded:
		return d.addedValue(ctx, v)
	}
	files := d.d.Kind(v.Kind.Name)
	if !v.keyed {
		if len(files) == 0 {
			if v.single {
				return types.NullValue, nil
			}
			return []proto.Message{}, nil
		}
		return kindValue(v, files[0])
	}
	files = sortByID(files)
	keys := make([]ref.Val, len(files))
	verb := byte('d')
	if i := strings.IndexByte(v.Kind.Files[0], '%'); i >= 0 && i+1 < len(v.Kind.Files[0]) {
		verb = v.Kind.Files[0][i+1]
	}
	for i, f := range files {
		keys[i] = fileKey(f.ID, verb)
	}
	return newLazyMap(adapter, keys, func(i int) (any, error) { return kindValue(v, files[i]) }, errs), nil
}

// fileKey turns the id of a file name into a map key: a uint for %d and %x
// ids (tcp-stream-<hex ino>), a string for %s ones (stats-dump).
func fileKey(id string, verb byte) ref.Val {
	base := 10
	if verb == 'x' {
		base = 16
	}
	if verb != 's' {
		if u, err := strconv.ParseUint(id, base, 64); err == nil {
			return types.Uint(u)
		}
	}
	return types.String(id)
}

// kindValue returns a file's value for a kind variable: its one message,
// or the list of its entries (after the head, for pagemaps).
func kindValue(v Var, f *dump.File) (any, error) {
	msgs, err := f.Messages()
	if err != nil {
		return nil, err
	}
	if v.single {
		if len(msgs) == 0 {
			return types.NullValue, nil
		}
		return msgs[0], nil
	}
	if v.Kind.First != nil && len(msgs) > 0 {
		msgs = msgs[1:]
	}
	return msgs, nil
}

// imagesMap is the images variable: every file of the dump by name, read
// on first lookup.
func (d *Dump) imagesMap(adapter types.Adapter, errs *loadErrors) *lazyMap {
	files := d.d.Files()
	keys := make([]ref.Val, len(files))
	for i, f := range files {
		keys[i] = types.String(f.Name)
	}
	return newLazyMap(adapter, keys, func(i int) (any, error) { return imageValue(files[i]) }, errs)
}

// imageValue describes one file: name, kind, id, size, raw, and for
// images with entries the entries as decoded and the extras as bytes.
func imageValue(f *dump.File) (any, error) {
	m := map[string]any{"name": f.Name, "id": f.ID, "size": uint64(f.Size), "kind": "", "raw": true}
	if f.Kind != nil {
		m["kind"] = f.Kind.Name
		m["raw"] = f.Kind.Raw || f.Kind.Entry == nil
	}
	if m["raw"] == true {
		m["entries"] = []proto.Message{}
		m["extras"] = [][]byte{}
		return m, nil
	}
	img, err := f.Image()
	if err != nil {
		return nil, err
	}
	msgs, err := f.Messages()
	if err != nil {
		return nil, err
	}
	extras := make([][]byte, len(img.Entries))
	for i, e := range img.Entries {
		extras[i] = e.Extra
		if extras[i] == nil {
			extras[i] = []byte{}
		}
	}
	m["entries"] = msgs
	m["extras"] = extras
	return m, nil
}
