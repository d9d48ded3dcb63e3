package container

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"
)

// node is a line of a text tree and the lines under it.
type node struct {
	text string
	kids []*node
}

func (n *node) add(format string, a ...any) *node {
	k := &node{text: fmt.Sprintf(format, a...)}
	n.kids = append(n.kids, k)
	return k
}

// addIf adds "label: v" when v is not empty.
func (n *node) addIf(label, v string) {
	if v != "" {
		n.add("%s: %s", label, v)
	}
}

func (n *node) write(w io.Writer, prefix string) {
	for i, k := range n.kids {
		branch, next := "├── ", "│   "
		if i == len(n.kids)-1 {
			branch, next = "└── ", "    "
		}
		fmt.Fprintf(w, "%s%s%s\n", prefix, branch, k.text)
		k.write(w, prefix+next)
	}
}

// NoContainer is the one line the text section prints for a dump folder.
const NoContainer = "no container: a plain dump folder"

// Text writes the container section as a tree, as critq inspect prints
// it; a dump folder is the one line NoContainer.
func (c *Checkpoint) Text(w io.Writer) error {
	if !c.IsContainer() {
		_, err := fmt.Fprintln(w, NoContainer)
		return err
	}
	top := &node{}
	engine := c.Engine
	if engine == "" {
		engine = "unknown"
	}
	if c.EngineVersion != "" {
		engine += " " + c.EngineVersion
	}
	top.add("engine: %s", engine)
	top.addIf("name", c.Name)
	top.addIf("id", c.ID)
	image := c.Image
	if c.ImageID != "" {
		image = strings.TrimSpace(image + " (id " + c.ImageID + ")")
	}
	top.addIf("image", image)
	if c.ImageRef != "" && c.ImageRef != c.Image {
		top.addIf("image ref", c.ImageRef)
	}
	top.addIf("runtime", c.Runtime)
	top.addIf("created", fmtTime(c.Created))
	top.addIf("checkpointed", fmtTime(c.Checkpointed))
	top.addIf("restored", fmtTime(c.Restored))
	top.addIf("pod", c.Pod)
	top.addIf("pod id", c.PodID)
	top.addIf("namespace", c.Namespace)
	top.addIf("pod uid", c.PodUID)
	if len(c.IPs) > 0 {
		top.add("ip: %s", strings.Join(c.IPs, ", "))
	}
	if len(c.Networks) > 0 {
		nn := top.add("Networks")
		for _, n := range c.Networks {
			k := nn.add("%s", n.Name)
			for _, i := range n.Interfaces {
				var parts []string
				if i.MAC != "" {
					parts = append(parts, "mac "+i.MAC)
				}
				for _, s := range i.Subnets {
					a := s.IPNet
					if s.Gateway != "" {
						a += " via " + s.Gateway
					}
					parts = append(parts, a)
				}
				k.add("%s %s", i.Name, strings.Join(parts, ", "))
			}
		}
	}
	if len(c.Mounts) > 0 {
		mn := top.add("Mounts")
		for _, m := range c.Mounts {
			line := m.Destination
			if m.Type != "" {
				line += " type " + m.Type
			}
			if m.Source != "" {
				line += " from " + m.Source
			}
			if len(m.Options) > 0 {
				line += " (" + strings.Join(m.Options, ",") + ")"
			}
			mn.add("%s", line)
		}
	}
	if len(c.Annotations) > 0 {
		an := top.add("Annotations")
		keys := make([]string, 0, len(c.Annotations))
		for k := range c.Annotations {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			an.add("%s: %s", k, c.Annotations[k])
		}
	}
	sz := top.add("Sizes")
	sz.add("on disk: %s", fmtSize(c.Sizes.Total))
	sz.add("checkpoint: %s", fmtSize(c.Sizes.Checkpoint))
	sz.add("memory pages: %s", fmtSize(c.Sizes.Pages))
	if c.Sizes.AMDGPUPages > 0 {
		sz.add("amdgpu pages: %s", fmtSize(c.Sizes.AMDGPUPages))
	}
	sz.add("rootfs diff: %s", fmtSize(c.Sizes.RootfsDiff))
	if c.Processes >= 0 {
		top.add("processes: %d", c.Processes)
	}
	if c.RootfsFiles >= 0 {
		rn := top.add("Rootfs changes: %d", c.RootfsFiles)
		for _, m := range c.Rootfs {
			rn.add("%s", m.line())
		}
	}
	dn := top.add("Deleted files: %d", len(c.DeletedFiles))
	for _, f := range c.DeletedFiles {
		dn.add("%s", f)
	}
	if len(c.Members) > 0 {
		on := top.add("Other members")
		for _, m := range c.Members {
			name := m.Name
			if m.Dir {
				name += "/"
			}
			on.add("%s %s", name, fmtSize(m.Size))
		}
	}
	for _, w := range c.Warnings {
		top.add("warning: %s", w)
	}
	if _, err := fmt.Fprintln(w, "Container"); err != nil {
		return err
	}
	top.write(w, "")
	return nil
}

// JSON writes the section as indented JSON; a dump folder is null.
func (c *Checkpoint) JSON(w io.Writer) error {
	var v any = c
	if !c.IsContainer() {
		v = nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// fmtSize prints a byte count in IEC units, with the exact count.
func fmtSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	const units = "KMGTPE"
	f := float64(n)
	i := -1
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB (%d bytes)", f, units[i], n)
}

// FormatSize prints a byte count as the text views do: "12.3 MiB".
func FormatSize(n int64) string {
	s := fmtSize(n)
	if i := strings.Index(s, " ("); i >= 0 {
		return s[:i]
	}
	return s
}

// line is a member as tar -tv prints it: mode, owner, size, time, path.
func (m Member) line() string {
	owner := fmt.Sprintf("%d/%d", m.UID, m.GID)
	if m.User != "" || m.Group != "" {
		owner = m.User + "/" + m.Group
	}
	s := fmt.Sprintf("%s %s %d %s %s", m.ModeString(), owner, m.Size, m.MTime.Format("2006-01-02 15:04"), m.Path)
	switch m.Type {
	case "symlink":
		s += " -> " + m.Link
	case "hardlink":
		s += " link to " + m.Link
	}
	return s
}

// Line is the member as tar -tv prints it.
func (m Member) Line() string { return m.line() }

// ModeString is the member's mode as ls -l prints it.
func (m Member) ModeString() string {
	mode := fs.FileMode(m.Mode & 0o777)
	if m.Mode&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m.Mode&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m.Mode&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	switch m.Type {
	case "dir":
		mode |= fs.ModeDir
	case "symlink":
		mode |= fs.ModeSymlink
	case "char":
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case "block":
		mode |= fs.ModeDevice
	case "fifo":
		mode |= fs.ModeNamedPipe
	case "hardlink":
		mode |= fs.ModeIrregular // tar -tv's 'h'
	}
	return tarMode(mode)
}

// tarMode is ls -l's mode string (Go's FileMode.String differs for
// devices and setuid).
func tarMode(m fs.FileMode) string {
	b := []byte("----------")
	switch {
	case m&fs.ModeDir != 0:
		b[0] = 'd'
	case m&fs.ModeSymlink != 0:
		b[0] = 'l'
	case m&fs.ModeCharDevice != 0:
		b[0] = 'c'
	case m&fs.ModeDevice != 0:
		b[0] = 'b'
	case m&fs.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&fs.ModeIrregular != 0:
		b[0] = 'h'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<uint(8-i)) != 0 {
			b[1+i] = rwx[i]
		}
	}
	special := func(i int, set bool, on, off byte) {
		if set {
			if b[i] == '-' {
				b[i] = off
			} else {
				b[i] = on
			}
		}
	}
	special(3, m&fs.ModeSetuid != 0, 's', 'S')
	special(6, m&fs.ModeSetgid != 0, 's', 'S')
	special(9, m&fs.ModeSticky != 0, 't', 'T')
	return string(b)
}
