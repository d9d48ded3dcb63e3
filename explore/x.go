package explore

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/critq/critq/codec/critjson"
	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/proto/images"
)

// The views of crit x. Their text is what crit 4.2 prints, byte for byte,
// except where crit is wrong:
//
//   - x fds, x mems and x rss crash on zombie and dead tasks (bug B10):
//     critq prints the task's pid line alone (it has no files and no
//     memory) and goes on with the next task;
//   - x rss counts 4096-byte pages (bug B13): critq uses the dump's page
//     size, the same on x86_64.

// XPs is crit x ps: the process tree with pgid, sid and comm.
type XPs struct {
	Roots []*XPsNode `json:"tree"`
}

// XPsNode is one task of XPs.
type XPsNode struct {
	PID      uint32     `json:"pid"`
	PGID     uint32     `json:"pgid"`
	SID      uint32     `json:"sid"`
	Comm     string     `json:"comm"`
	State    string     `json:"state"`
	Children []*XPsNode `json:"children,omitempty"`
}

// XPs returns crit x ps.
func (e *Explorer) XPs() (*XPs, error) {
	if err := e.load(); err != nil {
		return nil, err
	}
	var node func(t *Task) *XPsNode
	node = func(t *Task) *XPsNode {
		n := &XPsNode{PID: t.PID, PGID: t.PGID, SID: t.SID, Comm: t.Comm(), State: t.StateName()}
		for _, c := range t.Children {
			n.Children = append(n.Children, node(c))
		}
		return n
	}
	v := &XPs{}
	for _, r := range e.roots() {
		v.Roots = append(v.Roots, node(r))
	}
	return v, nil
}

// Text prints the tree as crit does: children indented by 4 spaces.
func (v *XPs) Text(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%7s%7s%7s   %s\n", "PID", "PGID", "SID", "COMM")
	walkTree(v.Roots, func(n *XPsNode) []*XPsNode { return n.Children }, func(n *XPsNode, depth int) {
		fmt.Fprintf(&b, "%7d%7d%7d   %s%s\n", n.PID, n.PGID, n.SID, strings.Repeat(" ", 4*depth), n.Comm)
	})
	_, err := io.WriteString(w, b.String())
	return err
}

// XFds is crit x fds: the files of every task.
type XFds struct {
	Tasks []XFdsTask `json:"tasks"`
}

// XFdsTask is one task of XFds. A zombie or dead task has no files.
type XFdsTask struct {
	PID   uint32    `json:"pid"`
	State string    `json:"state"`
	Files []XFdsFD  `json:"files"`
	Cwd   *XFdsFile `json:"cwd,omitempty"`
	Root  *XFdsFile `json:"root,omitempty"`
}

// XFdsFD is one descriptor: its number and crit's text for the file.
type XFdsFD struct {
	FD uint32 `json:"fd"`
	XFdsFile
}

// XFdsFile is a file as crit x names it.
type XFdsFile struct {
	Type string `json:"type"`
	ID   uint32 `json:"id"`
	Text string `json:"text"`
}

// critFile returns crit's text for the file of a type and id: the path of
// a regular file, pipe[ID], unix[INO (PEER) NAME], or TYPE.ID.
func (e *Explorer) critFile(typ images.FdTypes, id uint32) XFdsFile {
	f := XFdsFile{Type: typ.String(), ID: id}
	fe, _ := e.file(id)
	switch typ {
	case images.FdTypes_REG:
		f.Text = "unknown path"
		if r := fe.GetReg(); r != nil && r.GetName() != "" {
			f.Text = r.GetName()
		}
	case images.FdTypes_PIPE:
		f.Text = "pipe[?]"
		if p := fe.GetPipe(); p != nil {
			f.Text = fmt.Sprintf("pipe[%d]", p.GetPipeId())
		}
	case images.FdTypes_UNIXSK:
		f.Text = "unix[?]"
		if u := fe.GetUsk(); u != nil {
			name := ""
			if len(u.GetName()) > 0 {
				name = " " + critjson.QuotedPrintable(u.GetName())
			}
			f.Text = fmt.Sprintf("unix[%d (%d)%s]", u.GetIno(), u.GetPeer(), name)
		}
	default:
		f.Text = fmt.Sprintf("%s.%d", f.Type, id)
	}
	return f
}

// XFds returns crit x fds.
func (e *Explorer) XFds() (*XFds, error) {
	tasks, err := e.Tasks()
	if err != nil {
		return nil, err
	}
	if _, err := e.md.Files(); err != nil {
		return nil, err
	}
	v := &XFds{}
	for _, t := range tasks {
		xt := XFdsTask{PID: t.PID, State: t.StateName(), Files: []XFdsFD{}}
		if t.HasMemory() {
			fds, err := e.fdinfo(t)
			if err != nil {
				return nil, err
			}
			for _, fd := range fds {
				xt.Files = append(xt.Files, XFdsFD{FD: fd.GetFd(), XFdsFile: e.critFile(fd.GetType(), fd.GetId())})
			}
			fs, err := e.fsEntry(t)
			if err != nil {
				return nil, err
			}
			if fs != nil {
				cwd, root := e.critFile(images.FdTypes_REG, fs.GetCwdId()), e.critFile(images.FdTypes_REG, fs.GetRootId())
				xt.Cwd, xt.Root = &cwd, &root
			}
		}
		v.Tasks = append(v.Tasks, xt)
	}
	return v, nil
}

// Text prints the files as crit does.
func (v *XFds) Text(w io.Writer) error {
	var b strings.Builder
	for _, t := range v.Tasks {
		fmt.Fprintf(&b, "%d\n", t.PID)
		for _, f := range t.Files {
			fmt.Fprintf(&b, "\t%7d: %s\n", f.FD, f.Text)
		}
		if t.Cwd != nil {
			fmt.Fprintf(&b, "\t%7s: %s\n", "cwd", t.Cwd.Text)
			fmt.Fprintf(&b, "\t%7s: %s\n", "root", t.Root.Text)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// XMems is crit x mems: the VMAs of every task.
type XMems struct {
	Tasks []XMemsTask `json:"tasks"`
}

// XMemsTask is one task of XMems. A zombie or dead task has none.
type XMemsTask struct {
	PID   uint32    `json:"pid"`
	State string    `json:"state"`
	Exe   string    `json:"exe,omitempty"`
	VMAs  []XMemVMA `json:"vmas"`
}

// XMemVMA is one VMA as crit x mems shows it.
type XMemVMA struct {
	Start      hexAddr `json:"start"`
	End        hexAddr `json:"end"`
	Protection string  `json:"protection"`
	// Resource is what crit prints after the protection: a file (with
	// " + 0xPGOFF" and " (s)" for shared), shmem[N], ips[N], packet[N],
	// [stack], [vdso], [vsyscall], [stack?]; " *" marks a VMA that is not
	// VMA_AREA_REGULAR.
	Resource string `json:"resource"`
}

// hexAddr is an address, "0x..." in JSON (JSON numbers lose 64-bit
// precision in many readers).
type hexAddr uint64

func (a hexAddr) MarshalJSON() ([]byte, error) {
	return []byte(`"0x` + strconv.FormatUint(uint64(a), 16) + `"`), nil
}

// XMems returns crit x mems.
func (e *Explorer) XMems() (*XMems, error) {
	tasks, err := e.Tasks()
	if err != nil {
		return nil, err
	}
	if err := e.m.LoadFiles(); err != nil {
		return nil, err
	}
	v := &XMems{}
	ids := map[uint64]int{} // crit numbers shmem, ips and packet ids from 1, dump-wide
	vid := func(id uint64) int {
		if n, ok := ids[id]; ok {
			return n
		}
		ids[id] = len(ids) + 1
		return ids[id]
	}
	for _, t := range tasks {
		xt := XMemsTask{PID: t.PID, State: t.StateName(), VMAs: []XMemVMA{}}
		mm, err := e.mm(t)
		if err != nil {
			return nil, err
		}
		if mm != nil {
			xt.Exe = e.critFile(images.FdTypes_REG, mm.GetExeFileId()).Text
			for _, vma := range mm.GetVmas() {
				xt.VMAs = append(xt.VMAs, XMemVMA{Start: hexAddr(vma.GetStart()), End: hexAddr(vma.GetEnd()),
					Protection: flagnames.Prot(vma.GetProt()), Resource: e.critResource(vma, vid)})
			}
		}
		v.Tasks = append(v.Tasks, xt)
	}
	return v, nil
}

func (e *Explorer) mm(t *Task) (*images.MmEntry, error) {
	if !t.HasMemory() {
		return nil, nil
	}
	return e.m.MM(t.PID)
}

// critResource is crit's text for what a VMA maps.
func (e *Explorer) critResource(vma *images.VmaEntry, vid func(uint64) int) string {
	st := vma.GetStatus()
	var fn string
	switch {
	case st&flagnames.VMAAreaSysVIPC != 0:
		fn = fmt.Sprintf(" ips[%x]", vid(vma.GetShmid()))
	case st&flagnames.VMAAnonShared != 0:
		fn = fmt.Sprintf(" shmem[%x]", vid(vma.GetShmid()))
	case st&flagnames.VMAAreaSocket != 0:
		fn = fmt.Sprintf(" packet[%x]", vid(vma.GetShmid()))
	case st&(flagnames.VMAFilePrivate|flagnames.VMAFileShared) != 0:
		fn = " " + e.critFile(images.FdTypes_REG, uint32(vma.GetShmid())).Text
		if vma.GetPgoff() != 0 {
			fn += fmt.Sprintf(" + %#x", vma.GetPgoff())
		}
		if st&flagnames.VMAFileShared != 0 {
			fn += " (s)"
		}
	case st&flagnames.VMAAreaStack != 0:
		fn = " [stack]"
	case st&flagnames.VMAAreaVsyscall != 0:
		fn = " [vsyscall]"
	case st&flagnames.VMAAreaVDSO != 0:
		fn = " [vdso]"
	case vma.GetFlags()&flagnames.MapGrowsDown != 0:
		fn = " [stack?]"
	}
	if st&flagnames.VMAAreaRegular == 0 {
		fn += " *"
	}
	return fn
}

// Text prints the VMAs as crit does.
func (v *XMems) Text(w io.Writer) error {
	var b strings.Builder
	for _, t := range v.Tasks {
		fmt.Fprintf(&b, "%d\n", t.PID)
		if t.Exe == "" && len(t.VMAs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\t%-36s    %s\n", "exe", t.Exe)
		for _, m := range t.VMAs {
			fmt.Fprintf(&b, "\t%-36s%s%s\n", fmt.Sprintf("%08x-%08x", uint64(m.Start), uint64(m.End)), m.Protection, m.Resource)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// XRss is crit x rss: the pagemap runs of every task against its VMAs.
type XRss struct {
	Tasks []XRssTask `json:"tasks"`
}

// XRssTask is one task of XRss. A zombie or dead task has none.
type XRssTask struct {
	PID   uint32    `json:"pid"`
	State string    `json:"state"`
	Runs  []XRssRun `json:"rss"`
}

// XRssRun is one pagemap entry and the VMAs it covers.
type XRssRun struct {
	Vaddr hexAddr  `json:"vaddr"`
	Pages uint64   `json:"pages"`
	VMAs  []XRssVM `json:"vmas"`
}

// XRssVM is a VMA covered by a run; Continued marks one already listed
// for the previous run (crit prints "~").
type XRssVM struct {
	Start     hexAddr `json:"start,omitempty"`
	Pages     uint64  `json:"pages,omitempty"`
	File      string  `json:"file,omitempty"`
	Continued bool    `json:"continued,omitempty"`
}

// XRss returns crit x rss.
func (e *Explorer) XRss() (*XRss, error) {
	tasks, err := e.Tasks()
	if err != nil {
		return nil, err
	}
	v := &XRss{}
	for _, t := range tasks {
		xt := XRssTask{PID: t.PID, State: t.StateName(), Runs: []XRssRun{}}
		mm, err := e.mm(t)
		if err != nil {
			return nil, err
		}
		if mm != nil {
			if xt.Runs, err = e.rss(t.PID, mm.GetVmas()); err != nil {
				return nil, err
			}
		}
		v.Tasks = append(v.Tasks, xt)
	}
	return v, nil
}

// rss follows crit's walk of pagemap entries against VMAs, its index
// arithmetic included (a Python index below 0 counts from the end).
func (e *Explorer) rss(pid uint32, vmas []*images.VmaEntry) ([]XRssRun, error) {
	ps, err := e.m.PageSizeOf()
	if err != nil {
		return nil, err
	}
	entries, err := e.pagemap(pid)
	if err != nil {
		return nil, err
	}
	at := func(i int) *images.VmaEntry {
		if i < 0 {
			i += len(vmas)
		}
		if i < 0 || i >= len(vmas) {
			return nil
		}
		return vmas[i]
	}
	out := []XRssRun{}
	vmi, pvmi := 0, -1
	for _, pm := range entries {
		vaddr, nr := pm.GetVaddr(), pm.GetNrPages()
		if pm.NrPages == nil {
			nr = uint64(pm.GetCompatNrPages())
		}
		run := XRssRun{Vaddr: hexAddr(vaddr), Pages: nr, VMAs: []XRssVM{}}
		for vmi < len(vmas) && at(vmi) != nil && at(vmi).GetEnd() <= vaddr {
			vmi++
		}
		pme := vaddr + nr*ps
		for vmi < len(vmas) && at(vmi) != nil && at(vmi).GetStart() < pme {
			vma := at(vmi)
			if vmi == pvmi {
				run.VMAs = append(run.VMAs, XRssVM{Continued: true})
			} else {
				x := XRssVM{Start: hexAddr(vma.GetStart()), Pages: (vma.GetEnd() - vma.GetStart()) / ps}
				if vma.GetStatus()&(flagnames.VMAFilePrivate|flagnames.VMAFileShared) != 0 {
					x.File = e.critFile(images.FdTypes_REG, uint32(vma.GetShmid())).Text
				}
				run.VMAs = append(run.VMAs, x)
				pvmi = vmi
			}
			vmi++
		}
		vmi--
		out = append(out, run)
	}
	return out, nil
}

// pagemap returns the pagemap entries of a task (without the head).
func (e *Explorer) pagemap(pid uint32) ([]*images.PagemapEntry, error) {
	f := e.d.FileFor("PAGEMAP", uint64(pid))
	if f == nil {
		return nil, nil
	}
	msgs, err := f.Messages()
	if err != nil {
		return nil, err
	}
	var out []*images.PagemapEntry
	for _, m := range msgs {
		if pe, ok := m.(*images.PagemapEntry); ok {
			out = append(out, pe)
		}
	}
	return out, nil
}

// Text prints the runs as crit does.
func (v *XRss) Text(w io.Writer) error {
	var b strings.Builder
	for _, t := range v.Tasks {
		fmt.Fprintf(&b, "%d\n", t.PID)
		for _, r := range t.Runs {
			var vs strings.Builder
			for _, vm := range r.VMAs {
				if vm.Continued {
					vs.WriteString(" ~")
				} else {
					fmt.Fprintf(&vs, " %08x / %-8d", uint64(vm.Start), vm.Pages)
					if vm.File != "" {
						vs.WriteString(" " + vm.File)
					}
				}
				fmt.Fprintf(&vs, "\n\t%23s", "")
			}
			fmt.Fprintf(&b, "%-24s%s\n", fmt.Sprintf("\t%x / %-8d", uint64(r.Vaddr), r.Pages), vs.String())
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// walkTree calls visit for every node of the trees under roots, each parent
// before its children, with the node's depth (0 for a root).
func walkTree[N any](roots []N, children func(N) []N, visit func(n N, depth int)) {
	var walk func(n N, depth int)
	walk = func(n N, depth int) {
		visit(n, depth)
		for _, c := range children(n) {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
}
