package model

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/critq/critq/proto/images"
)

// Tree is the process tree of pstree.img.
type Tree struct {
	Tasks []*Task          // in pstree.img order: depth first, parents first
	ByPID map[uint32]*Task // every task by pid
}

// Task is one task of pstree.img. Its images are read by the Model's
// methods that take the task.
type Task struct {
	PID, PPID, PGID, SID uint32
	Threads              []uint32 // tids, the main thread's (PID) included
	Children             []*Task  // in pstree.img order
	// Depth is the depth in the tree: 0 for a task whose parent is not
	// in the dump. pstree.img is in depth-first order, parents first; a
	// parent met later (or never) leaves the child at the depth of a root.
	Depth uint32

	core part[*images.CoreEntry]
}

// Tree returns the process tree. A dump without pstree.img that holds
// images of tasks (core, mm, ids, fdinfo: a dump that lost it) has none: a
// *MissingError. A dump with no such image has an empty tree: criu check's
// cpuinfo dump, and a pre-dump, which holds the memory of tasks (pagemap
// and pages images, see package mem) but records no process.
func (m *Model) Tree() (*Tree, error) {
	return m.tree.get(func() (*Tree, error) {
		f := m.d.File("pstree.img")
		if f == nil {
			missing := &MissingError{Image: "pstree.img", For: "the process tree", What: m.d.NotReadWhy("pstree.img")}
			if missing.What != "" {
				return nil, missing
			}
			for _, k := range []string{"CORE", "MM", "IDS", "FDINFO"} {
				if len(m.d.Kind(k)) > 0 {
					// An error, not a partial value: not recorded.
					return nil, missing
				}
			}
			return &Tree{ByPID: map[uint32]*Task{}}, nil
		}
		ps, err := Messages[*images.PstreeEntry](f)
		if err != nil {
			return nil, err
		}
		t := &Tree{ByPID: map[uint32]*Task{}}
		for _, p := range ps {
			task := &Task{PID: p.GetPid(), PPID: p.GetPpid(), PGID: p.GetPgid(), SID: p.GetSid(), Threads: p.GetThreads()}
			t.Tasks = append(t.Tasks, task)
			if t.ByPID[task.PID] == nil {
				t.ByPID[task.PID] = task
			}
		}
		depth := map[uint32]uint32{}
		for _, task := range t.Tasks {
			// Only the first task of a pid is linked, so that a damaged
			// tree with a pid twice cannot make a cycle a root reaches.
			if p := t.ByPID[task.PPID]; p != nil && task.PPID != task.PID && task.PPID != 0 && t.ByPID[task.PID] == task {
				p.Children = append(p.Children, task)
			}
			if dp, ok := depth[task.PPID]; ok && t.ByPID[task.PPID] != nil {
				task.Depth = dp + 1
			}
			depth[task.PID] = task.Depth
		}
		return t, nil
	})
}

// Roots returns the tasks whose parent is not in the dump, in pstree order.
func (t *Tree) Roots() []*Task {
	var out []*Task
	for _, task := range t.Tasks {
		if task.PPID == 0 || t.ByPID[task.PPID] == nil {
			out = append(out, task)
		}
	}
	return out
}

// PIDs returns the pids of the tree, sorted.
func (t *Tree) PIDs() []int {
	pids := make([]int, 0, len(t.Tasks))
	for _, task := range t.Tasks {
		pids = append(pids, int(task.PID))
	}
	sort.Ints(pids)
	return pids
}

// Task states as compel writes them in core_entry.tc.task_state.
const (
	StateAlive   = 1
	StateDead    = 2
	StateStopped = 3
	StateZombie  = 6
)

// StateName returns a task state as the views print it: ALIVE, STOPPED or
// ZOMBIE, the state ps shows (S or R, T, Z) in words. CRIU writes every
// zombie as DEAD: it turns compel's ZOMBIE into DEAD when it seizes a task
// and writes DEAD in the core image of a zombie (criu/seize.c,
// dump_one_zombie in cr-dump.c), and restores a DEAD task as a zombie. An
// unknown state is its number.
func StateName(state uint32) string {
	switch state {
	case StateAlive:
		return "ALIVE"
	case StateStopped:
		return "STOPPED"
	case StateDead, StateZombie:
		return "ZOMBIE"
	}
	return fmt.Sprint(state)
}

// HasMemory reports whether a task in state has an address space and
// files: not a zombie, not dead.
func HasMemory(state uint32) bool { return state != StateDead && state != StateZombie }

// Core returns the core of task (core-PID.img): nil and a *MissingError
// when the image is missing.
func (m *Model) Core(t *Task) (*images.CoreEntry, error) {
	built := false
	c, err := t.core.get(func() (*images.CoreEntry, error) {
		built = true
		return m.ThreadCore(t.PID, t.PID)
	})
	if !built {
		m.again(err)
	}
	return c, err
}

// ThreadCore returns the core of thread tid of task pid (core-TID.img).
func (m *Model) ThreadCore(pid, tid uint32) (*images.CoreEntry, error) {
	f := m.d.FileFor("CORE", uint64(tid))
	if f == nil {
		what := fmt.Sprintf("the state, comm and credentials of pid %d", pid)
		if tid != pid {
			what = fmt.Sprintf("thread %d of pid %d", tid, pid)
		}
		return nil, m.missingErr(fileName("CORE", uint64(tid)), what)
	}
	return First[*images.CoreEntry](f)
}

// Alive reports whether task has memory and files (it is no zombie): known
// false for a zombie, true for a live or stopped task. ok is false when
// the core cannot tell (missing or damaged; Core says why).
func (m *Model) Alive(t *Task) (alive, ok bool) {
	c, err := m.Core(t)
	if err != nil || c == nil || c.GetTc() == nil {
		return false, false
	}
	return HasMemory(c.GetTc().GetTaskState()), true
}

// needTaskImage returns the image of kind for task t, which a task that is
// no zombie has: nil and nil for a zombie (and for a task whose core cannot
// tell: its core's absence is the error); a *MissingError when it is
// missing from a live task.
func (m *Model) needTaskImage(t *Task, kind, what string) (fileOK bool, err error) {
	if m.d.FileFor(kind, uint64(t.PID)) != nil {
		return true, nil
	}
	alive, ok := m.Alive(t)
	if !ok || !alive {
		return false, nil
	}
	return false, m.missingErr(fileName(kind, uint64(t.PID)), fmt.Sprintf(what, t.PID))
}

// MM returns the mm of task (mm-PID.img): nil for a zombie, a
// *MissingError when a live task has none.
func (m *Model) MM(t *Task) (*images.MmEntry, error) {
	ok, err := m.needTaskImage(t, "MM", "the memory map of pid %d")
	if !ok {
		return nil, err
	}
	mm, err := First[*images.MmEntry](m.d.FileFor("MM", uint64(t.PID)))
	if err == nil && mm == nil {
		err = fmt.Errorf("%s: no entry", fileName("MM", uint64(t.PID)))
	}
	return mm, err
}

// IDs returns the kernel object ids of task (ids-PID.img): nil for a
// zombie, a *MissingError when a live task has none.
func (m *Model) IDs(t *Task) (*images.TaskKobjIdsEntry, error) {
	ok, err := m.needTaskImage(t, "IDS", "the fd table and namespaces of pid %d")
	if !ok {
		return nil, err
	}
	return First[*images.TaskKobjIdsEntry](m.d.FileFor("IDS", uint64(t.PID)))
}

// FS returns the fs entry of task (fs-PID.img: cwd, root, umask): nil for
// a zombie, a *MissingError when a live task has none.
func (m *Model) FS(t *Task) (*images.FsEntry, error) {
	ok, err := m.needTaskImage(t, "FS", "the cwd and root of pid %d")
	if !ok {
		return nil, err
	}
	return First[*images.FsEntry](m.d.FileFor("FS", uint64(t.PID)))
}

// Pagemap returns whether task has its pagemap-PID.img: false and nil for
// a zombie, a *MissingError when a live task has none.
func (m *Model) Pagemap(t *Task) (bool, error) {
	return m.needTaskImage(t, "PAGEMAP", "the memory of pid %d")
}

// Pages records that pages-ID.img, which a pagemap names, is missing and
// returns its error; nil when the dump has it.
func (m *Model) Pages(id uint64) error {
	if m.d.FileFor("PAGES", id) != nil {
		return nil
	}
	return m.missingErr(fileName("PAGES", id), "the pages its pagemaps put there")
}

// Thread is one thread of a task: its tid, its core (nil when
// core-TID.img is missing) and what the views show of it.
type Thread struct {
	TID  uint32
	Core *images.CoreEntry
	// Comm is thread_core.comm; for the main thread of a core without
	// one, the task's comm (core.tc.comm); "" when unknown.
	Comm string
	// Sigmask is the blocked signals (thread_core.blk_sigset, for an old
	// main thread core.tc.blk_sigset), bit N-1 for signal N.
	Sigmask uint64
	// Pending is the numbers of the signals queued for the thread alone
	// (thread_core.signals_p): the si_signo of each siginfo, the first
	// int of the kernel's siginfo_t in the dumping host's byte order.
	Pending []uint32
}

// Threads returns the threads of task in pstree.img's order, each with its
// core. A task whose pstree entry lists no thread, and a zombie, is its one
// main thread: CRIU dumps no thread of a zombie (and the threads of its
// pstree entry are what its memory held, zdtm-zombie00). A missing core is
// recorded (see Missing) and leaves the thread's Core nil.
func (m *Model) Threads(t *Task) ([]Thread, error) {
	tids := t.Threads
	if alive, ok := m.Alive(t); len(tids) == 0 || ok && !alive {
		tids = []uint32{t.PID}
	}
	out := make([]Thread, 0, len(tids))
	for _, tid := range tids {
		var c *images.CoreEntry
		var err error
		if tid == t.PID {
			c, err = m.Core(t)
		} else {
			c, err = m.ThreadCore(t.PID, tid)
		}
		if err != nil && !IsMissing(err) {
			return nil, err
		}
		th := Thread{TID: tid, Core: c, Comm: c.GetThreadCore().GetComm(), Sigmask: c.GetThreadCore().GetBlkSigset(), Pending: []uint32{}}
		if tid == t.PID {
			if th.Comm == "" {
				th.Comm = c.GetTc().GetComm()
			}
			if tc := c.GetThreadCore(); tc == nil || tc.BlkSigset == nil {
				th.Sigmask = c.GetTc().GetBlkSigset()
			}
		}
		if sigs := c.GetThreadCore().GetSignalsP().GetSignals(); len(sigs) > 0 {
			order := binary.ByteOrder(binary.LittleEndian)
			if img, err := m.d.FileFor("CORE", uint64(tid)).Image(); err == nil {
				order = img.Header.Order
			}
			for _, s := range sigs {
				if b := s.GetSiginfo(); len(b) >= 4 {
					th.Pending = append(th.Pending, order.Uint32(b))
				}
			}
		}
		out = append(out, th)
	}
	return out, nil
}
