// Package explore builds the views of a dump that people know from crit x
// and from the live system: process trees, file descriptors, memory maps,
// sockets, and a summary like checkpointctl inspect.
//
// Each view is one display model, a Go value with JSON tags, rendered as
// text by its Text method or as JSON by encoding/json ([Write] picks one).
// Nothing here ranges over a map while rendering, so output is stable.
package explore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/mem"
	"github.com/critq/critq/proto/images"
)

// View is a display model that renders itself as text; its JSON form is
// its encoding/json encoding.
type View interface {
	Text(w io.Writer) error
}

// Write renders v in format "text" (or "") or "json" (indented, one
// document, & < > not escaped; bytes that are not UTF-8 in names become
// U+FFFD, as encoding/json does).
func Write(w io.Writer, v View, format string) error {
	switch format {
	case "", "text":
		return v.Text(w)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // & < > as they are: this is no HTML page
		return enc.Encode(v)
	}
	return fmt.Errorf("unknown format %q (text or json)", format)
}

// Explorer reads the images a view needs from one dump, each once.
type Explorer struct {
	d *dump.Dump
	m *mem.Memory

	once    sync.Once
	err     error
	tasks   []*Task
	byPID   map[uint32]*Task
	remaps  map[uint32]images.RemapType
	memfds  map[uint64]*images.MemfdInodeEntry
	ttyInfo map[uint32]*images.TtyInfoEntry
}

// New returns an Explorer of d that reads memory through m (for command
// lines); m may be nil.
func New(d *dump.Dump, m *mem.Memory) *Explorer {
	if m == nil {
		m = mem.Open(d)
	}
	return &Explorer{d: d, m: m}
}

// Memory returns the memory reader of the dump.
func (e *Explorer) Memory() *mem.Memory { return e.m }

// Task is one task of pstree.img with its core image.
type Task struct {
	PID, PPID, PGID, SID uint32
	Threads              []uint32
	Core                 *images.CoreEntry // nil when core-PID.img is missing
	Children             []*Task
}

// State returns compel's task state as the core image holds it (1 alive,
// 2 dead, 3 stopped, 6 zombie). CRIU writes every zombie as 2: it turns
// compel's ZOMBIE into DEAD when it seizes a task and writes DEAD in the
// core image of a zombie (criu/seize.c, dump_one_zombie in cr-dump.c), and
// restores a DEAD task as a zombie.
func (t *Task) State() uint32 { return t.Core.GetTc().GetTaskState() }

// StateName returns the task state as the views print it: ALIVE, STOPPED
// or ZOMBIE, the state ps shows (S or R, T, Z) in words; checkpointctl says
// "Zombie" too. A dead task of a dump is a zombie (see [Task.State]); an
// unknown state is its number.
func (t *Task) StateName() string {
	switch t.State() {
	case 1:
		return "ALIVE"
	case 3:
		return "STOPPED"
	case 2, 6:
		return "ZOMBIE"
	}
	return fmt.Sprint(t.State())
}

// Comm returns the task's comm.
func (t *Task) Comm() string { return t.Core.GetTc().GetComm() }

// HasMemory reports whether the task has an address space and files: not
// a zombie, not dead.
func (t *Task) HasMemory() bool { s := t.State(); return s != 2 && s != 6 }

// ErrNoPstree is returned by views of a dump that has no pstree.img.
var ErrNoPstree = errors.New("no pstree.img: not a process dump")

func (e *Explorer) load() error {
	e.once.Do(func() { e.err = e.loadOnce() })
	return e.err
}

func (e *Explorer) loadOnce() error {
	f := e.d.File("pstree.img")
	if f == nil {
		return fmt.Errorf("%s: %w", e.d.Name, ErrNoPstree)
	}
	msgs, err := f.Messages()
	if err != nil {
		return err
	}
	e.byPID = map[uint32]*Task{}
	for _, msg := range msgs {
		p := msg.(*images.PstreeEntry)
		t := &Task{PID: p.GetPid(), PPID: p.GetPpid(), PGID: p.GetPgid(), SID: p.GetSid(), Threads: p.GetThreads()}
		if cf := e.d.FileFor("CORE", uint64(t.PID)); cf != nil {
			c, err := cf.First()
			if err != nil {
				return err
			}
			t.Core, _ = c.(*images.CoreEntry)
		}
		e.tasks = append(e.tasks, t)
		e.byPID[t.PID] = t
	}
	for _, t := range e.tasks {
		if p := e.byPID[t.PPID]; p != nil && t.PPID != 0 {
			p.Children = append(p.Children, t)
		}
	}
	e.remaps = map[uint32]images.RemapType{}
	if err := eachMessage(e.d, "REMAP_FPATH", func(r *images.RemapFilePathEntry) {
		e.remaps[r.GetOrigId()] = r.GetRemapType()
	}); err != nil {
		return err
	}
	e.memfds = map[uint64]*images.MemfdInodeEntry{}
	if err := eachMessage(e.d, "MEMFD_INODE", func(m *images.MemfdInodeEntry) { e.memfds[m.GetInodeId()] = m }); err != nil {
		return err
	}
	e.ttyInfo = map[uint32]*images.TtyInfoEntry{}
	return eachMessage(e.d, "TTY_INFO", func(t *images.TtyInfoEntry) { e.ttyInfo[t.GetId()] = t })
}

// eachMessage calls fn with every entry of the images of a kind.
func eachMessage[M any](d *dump.Dump, kind string, fn func(M)) error {
	for _, f := range d.Kind(kind) {
		msgs, err := f.Messages()
		if err != nil {
			return err
		}
		for _, msg := range msgs {
			if m, ok := msg.(M); ok {
				fn(m)
			}
		}
	}
	return nil
}

// Tasks returns the tasks in pstree order.
func (e *Explorer) Tasks() ([]*Task, error) {
	if err := e.load(); err != nil {
		return nil, err
	}
	return e.tasks, nil
}

// ErrNoTask is the error of a pid that is not in the dump.
var ErrNoTask = errors.New("no task")

// Task returns the task pid, or an error that wraps ErrNoTask and names
// the pids there are.
func (e *Explorer) Task(pid uint32) (*Task, error) {
	if err := e.load(); err != nil {
		return nil, err
	}
	if t := e.byPID[pid]; t != nil {
		return t, nil
	}
	pids := make([]int, 0, len(e.tasks))
	for _, t := range e.tasks {
		pids = append(pids, int(t.PID))
	}
	sort.Ints(pids)
	return nil, fmt.Errorf("%s: %w %d (tasks: %v)", e.d.Name, ErrNoTask, pid, pids)
}

// roots returns the tasks whose parent is not in the dump, in pstree order.
func (e *Explorer) roots() []*Task {
	var out []*Task
	for _, t := range e.tasks {
		if t.PPID == 0 || e.byPID[t.PPID] == nil {
			out = append(out, t)
		}
	}
	return out
}

// fdinfo returns the fd table of a task (ids-PID.img, fdinfo-N.img).
func (e *Explorer) fdinfo(pid uint32) ([]*images.FdinfoEntry, error) {
	ids, err := e.first("IDS", pid)
	if err != nil || ids == nil {
		return nil, err
	}
	f := e.d.FileFor("FDINFO", uint64(ids.(*images.TaskKobjIdsEntry).GetFilesId()))
	if f == nil {
		return nil, nil
	}
	msgs, err := f.Messages()
	if err != nil {
		return nil, err
	}
	out := make([]*images.FdinfoEntry, len(msgs))
	for i, m := range msgs {
		out[i] = m.(*images.FdinfoEntry)
	}
	return out, nil
}

// first returns the first entry of the image of kind for id, or nil.
func (e *Explorer) first(kind string, id uint32) (any, error) {
	f := e.d.FileFor(kind, uint64(id))
	if f == nil {
		return nil, nil
	}
	m, err := f.First()
	if err != nil || m == nil {
		return nil, err
	}
	return m, nil
}

// fsEntry returns the fs_entry of a task, or nil.
func (e *Explorer) fsEntry(pid uint32) (*images.FsEntry, error) {
	m, err := e.first("FS", pid)
	if m == nil {
		return nil, err
	}
	return m.(*images.FsEntry), nil
}
