// Package diff compares two CRIU dumps: what changed between two checkpoints
// of the same processes, down to the page.
//
// Dumps reads both dumps through the typed views of package query (tasks,
// threads, vmas, fds, files, sockets, mounts) and the page indexes of
// package mem,
// and returns change records (views.Change, critq.views.change in CEL):
//
//	{section, pid, key, path, op, old, new}
//
// Elements are matched by a key, so that an element that moved is reported
// as changed, not as removed and added:
//
//	processes  pid
//	threads    pid and tid
//	vmas       pid and start address
//	memory     pid and the start of the VMA holding the pages (pre-dumps,
//	           which have no VMAs: the pagemap); shared memory by shmid;
//	           "total": the pages each dump holds in all
//	fds        pid and fd number
//	files      type and path (pipes: pipe id); file ids are dump numbering
//	sockets    inode, then TCP connections by their 4-tuple
//	mounts     mount id, then mount point
//	images     file name: images that exist in one dump only
//	<kind>     other image kinds (timers, file locks, namespaces, pipe
//	           data, socket queues, TCP streams, ghost files, ...): file
//	           name and entry index; pipe data by pipe id, queued packets
//	           by socket inode; the data after an entry as path "data"
//
// Every field of a view message is compared through protoreflect, except the
// volatile ones listed in [Volatile]: numbering that CRIU gives each dump
// anew (file ids, kernel-object ids), registers and counters, and fields that
// restate another section's.
package diff

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/internal/panics"
	"github.com/critq/critq/proto/views"
	"github.com/critq/critq/query"
)

// Change is one difference between two dumps.
type Change = views.Change

// Ops of a Change.
const (
	Added     = "added"
	Removed   = "removed"
	Changed   = "changed"
	Unchanged = "unchanged" // only with Options.Unchanged
)

// Sections, in the order of the output.
var Sections = []string{"processes", "threads", "vmas", "memory", "fds", "files", "sockets", "mounts", "images", "other"}

// Options select what Dumps compares.
type Options struct {
	// Only limits the comparison to these sections (names of Sections;
	// "other" stands for every image kind that no other section covers).
	Only []string
	// PID limits the per-task sections to one task; 0 means all.
	PID uint32
	// Registers compares the registers, FPU state and TLS of the cores.
	Registers bool
	// Pages reports memory as one change per range of changed pages instead
	// of counts per VMA; Bytes adds a hex excerpt of the first differing
	// bytes of each changed range.
	Pages, Bytes bool
	// Unchanged adds one record with op "unchanged" for each matched element
	// in which nothing changed.
	Unchanged bool
}

func (o *Options) wants(section string) bool {
	return len(o.Only) == 0 || slices.Contains(o.Only, section)
}

func (o *Options) wantsPID(pid uint32) bool { return o.PID == 0 || pid == o.PID }

// CheckSections returns an error naming the first unknown section of names.
func CheckSections(names []string) error {
	for _, n := range names {
		if !slices.Contains(Sections, n) {
			return fmt.Errorf("unknown section %q (sections: %s)", n, strings.Join(Sections, ", "))
		}
	}
	return nil
}

// Load returns the views of d, as the CEL variables of the same names hold
// them. A pre-dump (no pstree.img) has its pagemaps only.
func Load(ctx context.Context, d *query.Dump) (*views.DumpViews, error) {
	out := &views.DumpViews{Name: proto.String(d.Name())}
	var err error
	if out.Pagemaps, err = query.ViewList[*views.Pagemap](ctx, d, "pagemaps"); err != nil || isPreDump(d) {
		return out, err
	}
	if out.Tasks, err = query.ViewList[*views.Task](ctx, d, tasksWithMemory); err != nil {
		return nil, err
	}
	if out.Threads, err = query.ViewList[*views.Thread](ctx, d, "threads"); err != nil {
		return nil, err
	}
	if out.Vmas, err = query.ViewList[*views.Vma](ctx, d, "vmas"); err != nil {
		return nil, err
	}
	if out.Fds, err = query.ViewList[*views.Fd](ctx, d, "fds"); err != nil {
		return nil, err
	}
	if out.Files, err = query.ViewList[*views.File](ctx, d, "files"); err != nil {
		return nil, err
	}
	if out.Sockets, err = query.ViewList[*views.Socket](ctx, d, "sockets"); err != nil {
		return nil, err
	}
	if out.Mounts, err = query.ViewList[*views.Mount](ctx, d, "mounts"); err != nil {
		return nil, err
	}
	return out, nil
}

// tasksWithMemory is the tasks view with the fields read from memory
// (cmdline, environ, mem_error), which the view fills only when a query
// names them: the filter keeps every task.
const tasksWithMemory = "tasks.filter(t, t.cmdline == t.cmdline && t.environ == t.environ && t.mem_error == t.mem_error)"

// isPreDump reports whether d is a pre-dump: memory only, no process tree.
func isPreDump(d *query.Dump) bool {
	return len(d.Images().Kind("PSTREE")) == 0 && len(d.Images().Kind("PAGEMAP")) > 0
}

// Dumps compares dump a (the old one) with dump b and returns the changes,
// sorted by section, pid and key. Either may be a pre-dump or a step of a
// pre-dump chain: its pages are read through its parents.
func Dumps(ctx context.Context, a, b *query.Dump, opts Options) ([]*Change, error) {
	va, vb, err := LoadPair(ctx, a, b)
	if err != nil {
		return nil, err
	}
	return Views(ctx, a, b, va, vb, opts)
}

// LoadPair loads the views of a and b at the same time.
func LoadPair(ctx context.Context, a, b *query.Dump) (va, vb *views.DumpViews, err error) {
	var errB error
	var wg sync.WaitGroup
	wg.Go(func() {
		errB = panics.Call(func() (err error) {
			vb, err = Load(ctx, b)
			return err
		})
	})
	va, err = Load(ctx, a)
	wg.Wait()
	if err == nil {
		err = errB
	}
	return va, vb, err
}

// Views is Dumps over views already loaded with Load.
func Views(ctx context.Context, a, b *query.Dump, va, vb *views.DumpViews, opts Options) ([]*Change, error) {
	c := &collector{opts: &opts, lone: lonePIDs(va, vb)}
	pre := isPreDump(a) || isPreDump(b)
	if !pre {
		if opts.wants("processes") {
			c.processes(va, vb)
		}
		if opts.wants("threads") {
			c.threads(va, vb)
		}
		if opts.wants("vmas") {
			c.vmas(va, vb)
		}
		if opts.wants("fds") {
			c.fds(va, vb)
		}
		if opts.wants("files") {
			c.files(va, vb)
		}
		if opts.wants("sockets") {
			c.sockets(va, vb)
		}
		if opts.wants("mounts") {
			c.mounts(va, vb)
		}
	}
	if opts.wants("memory") {
		if err := c.memory(ctx, a, b, va, vb); err != nil {
			return nil, err
		}
	}
	if opts.wants("images") {
		c.images(a, b)
	}
	if opts.wants("other") && !pre {
		if err := c.other(a, b, va, vb); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rank := map[string]int{}
	for i, s := range Sections {
		rank[s] = i
	}
	sectionRank := func(s string) int {
		if r, ok := rank[s]; ok {
			return r
		}
		return len(Sections)
	}
	sort.SliceStable(c.recs, func(i, j int) bool {
		x, y := c.recs[i], c.recs[j]
		if rx, ry := sectionRank(x.c.GetSection()), sectionRank(y.c.GetSection()); rx != ry {
			return rx < ry
		}
		if x.c.GetSection() != y.c.GetSection() {
			return x.c.GetSection() < y.c.GetSection()
		}
		if x.c.GetPid() != y.c.GetPid() {
			return x.c.GetPid() < y.c.GetPid()
		}
		if x.ord != y.ord {
			return x.ord < y.ord
		}
		return x.c.GetKey() < y.c.GetKey()
	})
	out := make([]*Change, len(c.recs))
	for i, r := range c.recs {
		out[i] = r.c
	}
	return out, nil
}

// record is a change with its sort position within its pid.
type record struct {
	c   *Change
	ord uint64
}

type collector struct {
	opts     *Options
	recs     []record
	pageSize uint64
	// lone are the pids of the tasks in one dump only: the processes
	// section reports them, the per-task sections leave their elements out
	lone map[uint32]bool
}

func (c *collector) add(section string, pid uint32, key string, ord uint64, path, op, old, new string) *Change {
	ch := &Change{Section: &section, Pid: &pid, Key: &key, Op: &op}
	if path != "" {
		ch.Path = &path
	}
	if old != "" {
		ch.Old = &old
	}
	if new != "" {
		ch.New = &new
	}
	c.recs = append(c.recs, record{c: ch, ord: ord})
	return ch
}

// hexKey is the key of an address.
func hexKey(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

// lonePIDs returns the pids of the tasks that only one of va and vb has.
func lonePIDs(va, vb *views.DumpViews) map[uint32]bool {
	count := map[uint32]int{}
	for _, v := range []*views.DumpViews{va, vb} {
		for _, t := range v.GetTasks() {
			count[t.GetPid()]++
		}
	}
	out := map[uint32]bool{}
	for pid, n := range count {
		if n == 1 {
			out[pid] = true
		}
	}
	return out
}
