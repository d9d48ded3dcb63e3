package explore

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
)

// Inspect is a summary of a dump like checkpointctl inspect: processes,
// their files, sockets, mounts, namespaces and dump statistics.
type Inspect struct {
	Dump string `json:"dump"`
	// PID is the task whose subtree the summary shows (inspect -p), 0 for
	// the whole dump.
	PID        uint32      `json:"pid,omitempty"`
	Processes  []*PsNode   `json:"processes"`
	Files      []FdsTask   `json:"files"`
	Sockets    []Socket    `json:"sockets"`
	Mounts     []Mount     `json:"mounts"`
	Namespaces []Namespace `json:"namespaces"`
	Stats      *DumpStats  `json:"stats,omitempty"`
}

// Mount is one mount of mountpoints-N.img.
type Mount struct {
	ID         uint32 `json:"id"`
	Mountpoint string `json:"mountpoint"`
	Type       string `json:"type"`
	Source     string `json:"source"`
	Root       string `json:"root"`
	NS         uint32 `json:"ns"`
}

// Namespace is one namespace the root task is in (ids-PID.img).
type Namespace struct {
	Kind string `json:"kind"`
	ID   uint32 `json:"id"`
}

// DumpStats is stats-dump: times in microseconds, counts in pages.
type DumpStats struct {
	FreezingTime       uint32 `json:"freezing_time_us"`
	FrozenTime         uint32 `json:"frozen_time_us"`
	MemdumpTime        uint32 `json:"memdump_time_us"`
	MemwriteTime       uint32 `json:"memwrite_time_us"`
	PagesScanned       uint64 `json:"pages_scanned"`
	PagesSkippedParent uint64 `json:"pages_skipped_parent"`
	PagesWritten       uint64 `json:"pages_written"`
	PagesLazy          uint64 `json:"pages_lazy"`
}

// InspectOptions choose what Inspect shows.
type InspectOptions struct {
	// PID limits the processes, files and sockets to the subtree of that
	// task, and the namespaces to its own; 0 shows the whole dump.
	PID uint32
	// Env reads the environment of each process from its memory.
	Env bool
}

// Inspect returns the summary of the whole dump.
func (e *Explorer) Inspect() (*Inspect, error) { return e.InspectWith(InspectOptions{}) }

// InspectWith returns the summary that o asks for. A PID that is not in
// the dump is an error that wraps ErrNoTask.
func (e *Explorer) InspectWith(o InspectOptions) (*Inspect, error) {
	if err := e.load(); err != nil {
		return nil, err
	}
	roots := e.roots()
	if o.PID != 0 {
		t, err := e.Task(o.PID)
		if err != nil {
			return nil, err
		}
		roots = []*Task{t}
	}
	in := map[uint32]bool{}
	walkTree(roots, func(t *Task) []*Task { return t.Children }, func(t *Task, _ int) { in[t.PID] = true })
	v := &Inspect{Dump: e.d.Name, PID: o.PID, Processes: []*PsNode{}, Files: []FdsTask{}, Sockets: []Socket{}, Mounts: []Mount{}, Namespaces: []Namespace{}}
	for _, r := range roots {
		v.Processes = append(v.Processes, e.psNode(r, o.Env))
	}
	fds, err := e.Fds(0)
	if err != nil {
		return nil, err
	}
	for _, ft := range fds.Tasks {
		if o.PID != 0 && !in[ft.PID] {
			continue
		}
		if t := e.byPID[ft.PID]; t != nil && t.HasMemory() {
			fs, err := e.fsEntry(t)
			if err != nil {
				return nil, err
			}
			if fs != nil {
				ft.Cwd, ft.Root = e.regPath(fs.GetCwdId()), e.regPath(fs.GetRootId())
			}
		}
		v.Files = append(v.Files, ft)
	}
	sks, err := e.Sockets()
	if err != nil {
		return nil, err
	}
	for _, s := range sks.Sockets {
		if o.PID == 0 || slices.ContainsFunc(s.Users, func(u Owner) bool { return in[u.PID] }) {
			v.Sockets = append(v.Sockets, s)
		}
	}
	nss, err := e.md.Mounts()
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		for _, m := range ns.Entries {
			v.Mounts = append(v.Mounts, Mount{ID: m.GetMntId(), Mountpoint: m.GetMountpoint(), Type: strings.ToLower(model.MountType(m)),
				Source: m.GetSource(), Root: m.GetRoot(), NS: ns.NS})
		}
	}
	if len(roots) > 0 {
		if ids, err := e.md.IDs(roots[0].mt); goOn(err) != nil {
			return nil, err
		} else if ids != nil {
			for _, ns := range []struct {
				kind string
				id   *uint32
			}{{"pid", ids.PidNsId}, {"net", ids.NetNsId}, {"ipc", ids.IpcNsId}, {"uts", ids.UtsNsId}, {"mnt", ids.MntNsId},
				{"user", ids.UserNsId}, {"cgroup", ids.CgroupNsId}, {"time", ids.TimeNsId}} {
				if ns.id != nil {
					v.Namespaces = append(v.Namespaces, Namespace{Kind: ns.kind, ID: *ns.id})
				}
			}
		}
	}
	if f := e.d.File("stats-dump"); f != nil {
		st, err := model.First[*images.StatsEntry](f)
		if err != nil {
			return nil, err
		}
		if d := st.GetDump(); d != nil {
			v.Stats = &DumpStats{FreezingTime: d.GetFreezingTime(), FrozenTime: d.GetFrozenTime(), MemdumpTime: d.GetMemdumpTime(),
				MemwriteTime: d.GetMemwriteTime(), PagesScanned: d.GetPagesScanned(), PagesSkippedParent: d.GetPagesSkippedParent(),
				PagesWritten: d.GetPagesWritten(), PagesLazy: d.GetPagesLazy()}
		}
	}
	return v, nil
}

// node is a line of a text tree and the lines under it.
type node struct {
	label string
	kids  []*node
}

func (n *node) add(format string, args ...any) *node {
	k := &node{label: fmt.Sprintf(format, args...)}
	n.kids = append(n.kids, k)
	return k
}

// Text prints the summary as a tree.
func (v *Inspect) Text(w io.Writer) error {
	label := v.Dump
	if v.PID != 0 {
		label += fmt.Sprintf(" (pid %d and its descendants)", v.PID)
	}
	root := &node{label: label}
	procs := root.add("Processes")
	var walk func(parent *node, p *PsNode)
	walk = func(parent *node, p *PsNode) {
		cmd := strings.Join(p.Cmdline, " ")
		if cmd == "" {
			cmd = "[" + p.Comm + "]"
		}
		n := parent.add("[%d] %s (%s, %d threads, uid %d)", p.PID, cmd, p.State, p.Threads, p.UID)
		switch {
		case p.EnvironError != "":
			n.add("Environment: not read: %s", p.EnvironError)
		case p.Environ != nil:
			env := n.add("Environment")
			for _, kv := range p.Environ {
				env.add("%s", kv)
			}
		}
		for _, c := range p.Children {
			walk(n, c)
		}
	}
	for _, p := range v.Processes {
		walk(procs, p)
	}
	files := root.add("Files")
	for _, t := range v.Files {
		n := files.add("[%d]", t.PID)
		for _, f := range t.FDs {
			n.add("%d %s %s", f.FD, f.Type, f.Target)
		}
		if t.Cwd != "" {
			n.add("cwd %s", t.Cwd)
		}
		if t.Root != "" {
			n.add("root %s", t.Root)
		}
	}
	sks := root.add("Sockets")
	for _, s := range v.Sockets {
		sks.add("%s %s %s -> %s", s.Netid, s.State, s.Local, s.Peer)
	}
	mnts := root.add("Mounts")
	for _, m := range v.Mounts {
		mnts.add("%s (%s, %s, root %s)", m.Mountpoint, m.Type, m.Source, m.Root)
	}
	nss := root.add("Namespaces")
	for _, ns := range v.Namespaces {
		nss.add("%s %d", ns.Kind, ns.ID)
	}
	if s := v.Stats; s != nil {
		st := root.add("Statistics")
		st.add("freezing time: %d us", s.FreezingTime)
		st.add("frozen time: %d us", s.FrozenTime)
		st.add("memdump time: %d us", s.MemdumpTime)
		st.add("memwrite time: %d us", s.MemwriteTime)
		st.add("pages scanned: %d", s.PagesScanned)
		st.add("pages skipped (in parent): %d", s.PagesSkippedParent)
		st.add("pages written: %d", s.PagesWritten)
		st.add("pages lazy: %d", s.PagesLazy)
	}
	var b strings.Builder
	b.WriteString(root.label + "\n")
	writeTree(&b, root.kids, "")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeTree(b *strings.Builder, kids []*node, indent string) {
	for i, k := range kids {
		branch, next := "├── ", "│   "
		if i == len(kids)-1 {
			branch, next = "└── ", "    "
		}
		b.WriteString(indent + branch + k.label + "\n")
		writeTree(b, k.kids, indent+next)
	}
}
