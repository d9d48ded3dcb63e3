package explore

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
)

// Ps is a process tree like ps -ejH: one row per task, children under
// their parent.
type Ps struct {
	Roots []*PsNode `json:"tree"`
}

// PsNode is one task of Ps. Cmdline is read from the task's memory; it is
// empty for a zombie (ps shows "[comm] <defunct>"), and CmdlineError says
// why when it cannot be read.
type PsNode struct {
	PID          uint32   `json:"pid"`
	PPID         uint32   `json:"ppid"`
	PGID         uint32   `json:"pgid"`
	SID          uint32   `json:"sid"`
	State        string   `json:"state"`
	Threads      int      `json:"threads"`
	UID          uint32   `json:"uid"`
	Comm         string   `json:"comm"`
	Cmdline      []string `json:"cmdline"`
	CmdlineError string   `json:"cmdline_error,omitempty"`
	// CmdlineMissing is set when the command line was not read because
	// an image is missing (the model lists it).
	CmdlineMissing bool `json:"-"`
	// Environ is the task's environment read from its memory, in order,
	// when the view was asked for it (inspect --ps-tree-env); empty for a
	// zombie, nil (and absent from the JSON) when not asked or not read,
	// and then EnvironError says why.
	Environ      []string  `json:"environ,omitzero"`
	EnvironError string    `json:"environ_error,omitempty"`
	Children     []*PsNode `json:"children,omitempty"`
}

// Ps returns the process tree.
func (e *Explorer) Ps() (*Ps, error) {
	if err := e.load(); err != nil {
		return nil, err
	}
	v := &Ps{}
	for _, r := range e.roots() {
		v.Roots = append(v.Roots, e.psNode(r, false))
	}
	return v, nil
}

// psNode returns the tree of t, with the environment of each task when
// env is set.
func (e *Explorer) psNode(t *Task, env bool) *PsNode {
	n := &PsNode{PID: t.PID, PPID: t.PPID, PGID: t.PGID, SID: t.SID, State: t.StateName(), Threads: max(len(t.Threads), 1),
		UID: t.Core.GetThreadCore().GetCreds().GetUid(), Comm: t.Comm(), Cmdline: []string{}}
	if args, err := e.m.Cmdline(t.PID); err != nil {
		n.CmdlineError, n.CmdlineMissing = err.Error(), model.IsMissing(err)
	} else {
		n.Cmdline = args
	}
	if env {
		if vars, err := e.m.Environ(t.PID); err != nil {
			n.EnvironError = err.Error()
		} else {
			n.Environ = vars
		}
	}
	for _, c := range t.Children {
		n.Children = append(n.Children, e.psNode(c, env))
	}
	return n
}

// Text prints the tree with the command indented by 2 spaces a level, as
// ps -ejH does.
func (v *Ps) Text(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%7s %7s %7s %7s %-7s %3s %5s %s\n", "PID", "PPID", "PGID", "SID", "STATE", "THR", "UID", "COMMAND")
	walkTree(v.Roots, func(n *PsNode) []*PsNode { return n.Children }, func(n *PsNode, depth int) {
		cmd := strings.Join(n.Cmdline, " ")
		switch {
		case n.State == "ZOMBIE":
			cmd = "[" + n.Comm + "] <defunct>"
		case cmd == "":
			cmd = "[" + n.Comm + "]"
		}
		fmt.Fprintf(&b, "%7d %7d %7d %7d %-7s %3d %5d %s%s\n", n.PID, n.PPID, n.PGID, n.SID, n.State, n.Threads, n.UID,
			strings.Repeat("  ", depth), cmd)
	})
	_, err := io.WriteString(w, b.String())
	return err
}

// Fds is the view of ls -l /proc/PID/fd for one or more tasks.
type Fds struct {
	Tasks []FdsTask `json:"tasks"`
}

// FdsTask is the descriptors of one task, by number.
type FdsTask struct {
	PID uint32   `json:"pid"`
	FDs []FdLink `json:"fds"`
	// Cwd and Root are the task's working and root directories
	// (fs-PID.img), as /proc/PID/cwd and root name them; only inspect
	// fills them.
	Cwd  string `json:"cwd,omitempty"`
	Root string `json:"root,omitempty"`
}

// FdLink is one descriptor: the mode ls shows (lrwx------ for a file open
// for reading and writing) and the link's target as the kernel names it.
type FdLink struct {
	FD     uint32 `json:"fd"`
	Mode   string `json:"mode"`
	Type   string `json:"type"`
	ID     uint32 `json:"id"`
	Target string `json:"target"`
}

// Fds returns the descriptors of the task pid, or of every task when pid
// is 0. Zombies and dead tasks have none.
func (e *Explorer) Fds(pid uint32) (*Fds, error) {
	tasks, err := e.selectTasks(pid)
	if err != nil {
		return nil, err
	}
	files, err := e.md.Files()
	if err != nil {
		return nil, err
	}
	v := &Fds{}
	for _, t := range tasks {
		ft := FdsTask{PID: t.PID, FDs: []FdLink{}}
		if t.HasMemory() {
			fds, err := e.fdinfo(t)
			if err != nil {
				return nil, err
			}
			for _, fd := range fds {
				fe, err := e.file(fd.GetId())
				if err != nil {
					return nil, err
				}
				ft.FDs = append(ft.FDs, FdLink{FD: fd.GetFd(), Mode: fdMode(files, fe), Type: fd.GetType().String(), ID: fd.GetId(),
					Target: e.fdTarget(fd.GetType(), fd.GetId(), fe)})
			}
			sort.Slice(ft.FDs, func(i, j int) bool { return ft.FDs[i].FD < ft.FDs[j].FD })
		}
		v.Tasks = append(v.Tasks, ft)
	}
	return v, nil
}

// Text prints one "MODE FD -> TARGET" line per descriptor; with more than
// one task, each is preceded by a "==> PID <==" line.
func (v *Fds) Text(w io.Writer) error {
	var b strings.Builder
	for _, t := range v.Tasks {
		if len(v.Tasks) > 1 {
			fmt.Fprintf(&b, "==> %d <==\n", t.PID)
		}
		for _, f := range t.FDs {
			fmt.Fprintf(&b, "%s %d -> %s\n", f.Mode, f.FD, f.Target)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fdMode is the mode of a /proc/PID/fd link: read and write permission
// with execute for whichever is set; nothing for O_PATH.
func fdMode(files *model.Files, fe *images.FileEntry) string {
	const oPath = 0o10000000
	flags, ok := files.Flags(fe)
	switch {
	case !ok || fe.GetPidfd() != nil: // pidfds are always O_RDWR
		return "lrwx------"
	case flags&oPath != 0:
		return "l---------"
	case flags&3 == 0:
		return "lr-x------"
	case flags&3 == 1:
		return "l-wx------"
	}
	return "lrwx------"
}

// fdTarget is the target of a /proc/PID/fd link.
func (e *Explorer) fdTarget(typ images.FdTypes, id uint32, fe *images.FileEntry) string {
	switch typ {
	case images.FdTypes_REG:
		return e.regPath(id)
	case images.FdTypes_FIFO:
		return e.regPath(fe.GetFifo().GetRegfId())
	case images.FdTypes_PIPE:
		return fmt.Sprintf("pipe:[%d]", fe.GetPipe().GetPipeId())
	case images.FdTypes_INETSK:
		return fmt.Sprintf("socket:[%d]", fe.GetIsk().GetIno())
	case images.FdTypes_UNIXSK:
		return fmt.Sprintf("socket:[%d]", fe.GetUsk().GetIno())
	case images.FdTypes_NETLINKSK:
		return fmt.Sprintf("socket:[%d]", fe.GetNlsk().GetIno())
	case images.FdTypes_PACKETSK:
		return "socket:[?]" // packet_sock_entry has no inode number
	case images.FdTypes_MEMFD:
		return e.memfdPath(fe.GetMemfd().GetInodeId())
	case images.FdTypes_TTY:
		return e.ttyPath(fe.GetTty())
	case images.FdTypes_TUNF:
		return "/dev/net/tun"
	case images.FdTypes_NS:
		return fmt.Sprintf("ns:[%d]", fe.GetNsf().GetNsId())
	case images.FdTypes_EXT:
		return fmt.Sprintf("ext:[%d]", id)
	}
	if name, ok := anonInodes[typ]; ok {
		return "anon_inode:" + name
	}
	return fmt.Sprintf("%s.%d", typ, id)
}

var anonInodes = map[images.FdTypes]string{
	images.FdTypes_EVENTFD: "[eventfd]", images.FdTypes_EVENTPOLL: "[eventpoll]", images.FdTypes_INOTIFY: "inotify",
	images.FdTypes_FANOTIFY: "[fanotify]", images.FdTypes_SIGNALFD: "[signalfd]", images.FdTypes_TIMERFD: "[timerfd]",
	images.FdTypes_PIDFD: "[pidfd]", images.FdTypes_BPFMAP: "bpf-map",
}

// ttyPath names a terminal: /dev/pts/N for a pty's slave, /dev/ptmx for
// its master, /dev/console; else the path of the file CRIU keeps for it
// (regf_id: /dev/tty for a controlling terminal), else the type.
func (e *Explorer) ttyPath(tf *images.TtyFileEntry) string {
	if tf == nil {
		return "tty" // files.img lacks the entry: the warning names it
	}
	ti := e.ttyInfo[tf.GetTtyInfoId()]
	if tf.RegfId != nil && (ti == nil || ti.GetType() != images.TtyType_PTY && ti.GetType() != images.TtyType_CONSOLE) {
		if fe, _ := e.file(tf.GetRegfId()); fe.GetReg().GetName() != "" {
			return fe.GetReg().GetName()
		}
	}
	switch {
	case ti == nil:
		return "tty"
	case ti.GetType() == images.TtyType_PTY && ti.GetPty() != nil:
		if major(ti.GetRdev()) == 5 { // TTYAUX_MAJOR: /dev/ptmx
			return "/dev/ptmx"
		}
		return fmt.Sprintf("/dev/pts/%d", ti.GetPty().GetIndex())
	case ti.GetType() == images.TtyType_CONSOLE:
		return "/dev/console"
	}
	return strings.ToLower(ti.GetType().String())
}

// major is glibc's major() of a user-space dev_t.
func major(dev uint32) uint32 { return (dev >> 8) & 0xfff }
