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
	"sync"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/mem"
	"github.com/critq/critq/model"
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

// Explorer reads the images a view needs from one dump, each once, through
// the dump's model (package model), which joins them.
type Explorer struct {
	d  *dump.Dump
	m  *mem.Memory
	md *model.Model

	once    sync.Once
	err     error
	tasks   []*Task
	byPID   map[uint32]*Task
	memfds  map[uint64]*images.MemfdInodeEntry
	ttyInfo map[uint32]*images.TtyInfoEntry
}

// New returns an Explorer of d that reads memory through m (for command
// lines); m may be nil.
func New(d *dump.Dump, m *mem.Memory) *Explorer {
	if m == nil {
		m = mem.Open(d)
	}
	return &Explorer{d: d, m: m, md: model.Of(d)}
}

// Memory returns the memory reader of the dump.
func (e *Explorer) Memory() *mem.Memory { return e.m }

// Model returns the model of the dump the views present.
func (e *Explorer) Model() *model.Model { return e.md }

// Task is one task of pstree.img with its core image.
type Task struct {
	PID, PPID, PGID, SID uint32
	Threads              []uint32
	Core                 *images.CoreEntry // nil when core-PID.img is missing
	Children             []*Task

	mt *model.Task
}

// State returns compel's task state as the core image holds it (1 alive,
// 2 dead, 3 stopped, 6 zombie); see [model.StateName].
func (t *Task) State() uint32 { return t.Core.GetTc().GetTaskState() }

// StateName returns the task state as the views print it ([model.StateName]):
// ALIVE, STOPPED or ZOMBIE; "?" when the core image is missing.
func (t *Task) StateName() string {
	if t.Core.GetTc() == nil {
		return "?"
	}
	return model.StateName(t.State())
}

// Comm returns the task's comm.
func (t *Task) Comm() string { return t.Core.GetTc().GetComm() }

// HasMemory reports whether the task has an address space and files: not
// a zombie, not dead. A task whose core is missing may have them.
func (t *Task) HasMemory() bool { return model.HasMemory(t.State()) }

// ErrNoPstree is returned by views of a dump that has no pstree.img.
var ErrNoPstree = errors.New("no pstree.img: not a process dump")

func (e *Explorer) load() error {
	e.once.Do(func() { e.err = e.loadOnce() })
	return e.err
}

func (e *Explorer) loadOnce() error {
	if e.d.File("pstree.img") == nil {
		return fmt.Errorf("%s: %w", e.d.Name, ErrNoPstree)
	}
	tree, err := e.md.Tree()
	if err != nil {
		return err
	}
	e.byPID = map[uint32]*Task{}
	for _, mt := range tree.Tasks {
		t := &Task{PID: mt.PID, PPID: mt.PPID, PGID: mt.PGID, SID: mt.SID, Threads: mt.Threads, mt: mt}
		if t.Core, err = e.md.Core(mt); err != nil && !model.IsMissing(err) {
			return err
		}
		e.tasks = append(e.tasks, t)
		if e.byPID[t.PID] == nil {
			e.byPID[t.PID] = t
		}
	}
	for _, t := range e.tasks {
		for _, c := range t.mt.Children {
			if t == e.byPID[t.PID] {
				t.Children = append(t.Children, e.byPID[c.PID])
			}
		}
	}
	if _, err := e.md.Remaps(); err != nil {
		return err
	}
	e.memfds = map[uint64]*images.MemfdInodeEntry{}
	if err := model.Each(e.d, "MEMFD_INODE", func(m *images.MemfdInodeEntry) { e.memfds[m.GetInodeId()] = m }); err != nil {
		return err
	}
	e.ttyInfo = map[uint32]*images.TtyInfoEntry{}
	return model.Each(e.d, "TTY_INFO", func(t *images.TtyInfoEntry) { e.ttyInfo[t.GetId()] = t })
}

// goOn returns err unless it is a missing image, which the model has
// recorded: a view goes on without it (and the command says so).
func goOn(err error) error {
	if model.IsMissing(err) {
		return nil
	}
	return err
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
	tree, err := e.md.Tree()
	if err != nil {
		return nil, err
	}
	pids := tree.PIDs()
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

// fdinfo returns the fd table of a task (ids-PID.img, fdinfo-N.img); a
// missing image leaves it empty (the model records it).
func (e *Explorer) fdinfo(t *Task) ([]*images.FdinfoEntry, error) {
	fds, err := e.md.Fds(t.mt)
	return fds, goOn(err)
}

// fsEntry returns the fs_entry of a task, or nil.
func (e *Explorer) fsEntry(t *Task) (*images.FsEntry, error) {
	fs, err := e.md.FS(t.mt)
	return fs, goOn(err)
}

// file returns the file object id of files.img, or nil; a missing
// files.img is recorded by the model.
func (e *Explorer) file(id uint32) (*images.FileEntry, error) {
	fe, err := e.md.File(id)
	return fe, goOn(err)
}
