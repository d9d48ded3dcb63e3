package explore

import (
	"fmt"
	"io"
	"strings"

	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
)

// Maps is the /proc/PID/maps view of one or more tasks.
type Maps struct {
	Tasks []MapsTask `json:"tasks"`
}

// MapsTask is the maps of one task; a zombie or dead task has none.
type MapsTask struct {
	PID   uint32    `json:"pid"`
	Lines []MapLine `json:"maps"`
}

// MapLine is one line of /proc/PID/maps. Device and inode numbers are not
// in CRIU's images: Dev is always "00:00" and Inode 0.
type MapLine struct {
	Start  hexAddr `json:"start"`
	End    hexAddr `json:"end"`
	Perms  string  `json:"perms"`
	Offset uint64  `json:"offset"`
	Dev    string  `json:"dev"`
	Inode  uint64  `json:"inode"`
	Path   string  `json:"path"`
}

// Maps returns the maps of the task pid, or of every task when pid is 0.
func (e *Explorer) Maps(pid uint32) (*Maps, error) {
	tasks, err := e.selectTasks(pid)
	if err != nil {
		return nil, err
	}
	if _, err := e.md.Files(); err != nil {
		return nil, err
	}
	shmKeys := map[uint64]uint64{}
	if err := model.Each(e.d, "IPCNS_SHM", func(s *images.IpcShmEntry) {
		shmKeys[uint64(s.GetDesc().GetId())] = uint64(s.GetDesc().GetKey())
	}); err != nil {
		return nil, err
	}
	v := &Maps{}
	for _, t := range tasks {
		mt := MapsTask{PID: t.PID, Lines: []MapLine{}}
		mm, err := e.mm(t)
		if err != nil {
			return nil, err
		}
		if mm != nil {
			vmas, err := e.m.VMAs(t.PID)
			if err != nil {
				return nil, err
			}
			for _, vma := range vmas {
				mt.Lines = append(mt.Lines, e.mapLine(mm, vma, shmKeys))
			}
		}
		v.Tasks = append(v.Tasks, mt)
	}
	return v, nil
}

// selectTasks returns task pid, or every task when pid is 0.
func (e *Explorer) selectTasks(pid uint32) ([]*Task, error) {
	if pid == 0 {
		return e.Tasks()
	}
	t, err := e.Task(pid)
	if err != nil {
		return nil, err
	}
	return []*Task{t}, nil
}

// mapLine is the maps line of vma; shmKeys maps SysV segment ids to keys.
func (e *Explorer) mapLine(mm *images.MmEntry, vma *images.VmaEntry, shmKeys map[uint64]uint64) MapLine {
	st := vma.GetStatus()
	l := MapLine{Start: hexAddr(vma.GetStart()), End: hexAddr(vma.GetEnd()), Dev: "00:00"}
	l.Perms = flagnames.Perms(vma.GetProt(), vma.GetFlags())
	hasFile := true
	switch {
	case st&flagnames.VMAAreaMemfd != 0:
		fe, _ := e.file(uint32(vma.GetShmid()))
		l.Path = e.memfdPath(fe.GetMemfd().GetInodeId())
	case st&(flagnames.VMAFilePrivate|flagnames.VMAFileShared) != 0:
		l.Path = e.regPath(uint32(vma.GetShmid()))
	case st&flagnames.VMAAreaAIORing != 0:
		l.Path = "/[aio] (deleted)"
	case st&flagnames.VMAAreaSysVIPC != 0:
		key, ok := shmKeys[vma.GetShmid()]
		if !ok {
			key = vma.GetShmid() // no ipcns-shm image of it: the id
		}
		l.Path = fmt.Sprintf("/SYSV%08x (deleted)", key)
	case st&flagnames.VMAAnonShared != 0:
		l.Path = "/dev/zero (deleted)"
	default:
		hasFile = false
		switch {
		case st&flagnames.VMAAreaVDSO != 0:
			l.Path = "[vdso]"
		case st&flagnames.VMAAreaVVAR != 0:
			l.Path = "[vvar]"
		case st&flagnames.VMAAreaVsyscall != 0:
			l.Path = "[vsyscall]"
		case vma.GetStart() <= mm.GetMmBrk() && vma.GetEnd() >= mm.GetMmStartBrk():
			l.Path = "[heap]"
		case vma.GetStart() <= mm.GetMmStartStack() && vma.GetEnd() >= mm.GetMmStartStack():
			l.Path = "[stack]"
		}
	}
	if hasFile {
		l.Offset = vma.GetPgoff()
	}
	return l
}

// regPath returns the path of regular file id as the kernel shows it:
// " (deleted)" after an unlinked file (one CRIU remapped).
func (e *Explorer) regPath(id uint32) string {
	fe, _ := e.file(id)
	r := fe.GetReg()
	if r == nil {
		return fmt.Sprintf("file %d", id)
	}
	if del, _ := e.md.Deleted(id); del {
		return r.GetName() + " (deleted)"
	}
	return r.GetName()
}

// memfdPath returns the path of a memfd inode as the kernel shows it:
// "/memfd:NAME (deleted)"; a shared anonymous mapping, which CRIU stores as
// a memfd named "/dev/zero", is "/dev/zero (deleted)".
func (e *Explorer) memfdPath(inode uint32) string {
	mi := e.memfds[uint64(inode)]
	if mi == nil {
		return fmt.Sprintf("/memfd:%d (deleted)", inode)
	}
	if strings.HasPrefix(mi.GetName(), "/") {
		return mi.GetName() + " (deleted)"
	}
	return "/memfd:" + mi.GetName() + " (deleted)"
}

// Text prints the maps in the layout of /proc/PID/maps; with more than one
// task, each is preceded by a "==> PID <==" line.
func (v *Maps) Text(w io.Writer) error {
	var b strings.Builder
	for _, t := range v.Tasks {
		if len(v.Tasks) > 1 {
			fmt.Fprintf(&b, "==> %d <==\n", t.PID)
		}
		for _, l := range t.Lines {
			b.WriteString(l.String())
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// String formats the line as the kernel does (fs/proc/task_mmu.c): the
// path, when there is one, starts at column 73.
func (l MapLine) String() string {
	s := fmt.Sprintf("%08x-%08x %s %08x %s %d ", uint64(l.Start), uint64(l.End), l.Perms, l.Offset, l.Dev, l.Inode)
	if l.Path == "" {
		return s
	}
	if n := len(s); n < 72 {
		s += strings.Repeat(" ", 72-n)
	}
	return s + " " + l.Path
}
