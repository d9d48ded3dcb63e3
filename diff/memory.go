package diff

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"

	"github.com/critq/critq/mem"
	"github.com/critq/critq/proto/views"
	"github.com/critq/critq/query"
)

// chunk is how many bytes of each dump the memory comparison reads at a time.
const chunk = 1 << 20

// excerpt is the number of bytes --bytes shows.
const excerpt = 16

// memRange is a run of pages of one task (or shared memory object) that was
// added, removed or changed.
type memRange struct {
	start, end uint64
	op         string
	// first differing bytes of a changed range, at diffAt
	diffAt   uint64
	old, new []byte
}

// memory compares the pages each dump holds of every task present in both
// (pagemap-PID.img, parents followed) and of every shared memory object
// (pagemap-shmem-ID.img), page by page.
func (c *collector) memory(ctx context.Context, a, b *query.Dump, va, vb *views.DumpViews) error {
	ma, mb := mem.Open(a.Images()), mem.Open(b.Images())
	defer ma.Close()
	defer mb.Close()
	ids := func(d *query.Dump, kind string) map[uint64]bool {
		out := map[uint64]bool{}
		for _, f := range d.Images().Kind(kind) {
			if id, err := strconv.ParseUint(f.ID, 10, 64); err == nil {
				out[id] = true
			}
		}
		return out
	}
	pa, pb := ids(a, "PAGEMAP"), ids(b, "PAGEMAP")
	sa, sb := ids(a, "SHMEM_PAGEMAP"), ids(b, "SHMEM_PAGEMAP")
	if len(pa)+len(sa) == 0 || len(pb)+len(sb) == 0 {
		return nil
	}
	ps, err := mb.PageSizeOf()
	if err != nil {
		if ps, err = ma.PageSizeOf(); err != nil {
			return err
		}
	}
	c.pageSize = ps
	vmasA, vmasB := vmasByPID(va), vmasByPID(vb)
	pids := make([]uint64, 0, len(pa))
	for id := range pa {
		if pb[id] && c.opts.wantsPID(uint32(id)) {
			pids = append(pids, id)
		}
	}
	sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
	buf := make([]byte, 2*chunk)
	for _, pid := range pids {
		rs, err := compareHeld(ctx, ma, mb, pid, false, ps, c.opts.Bytes, buf)
		if err != nil {
			return err
		}
		c.memRecords(uint32(pid), "", rs, vmasA[uint32(pid)], vmasB[uint32(pid)])
	}
	if c.opts.PID != 0 {
		return nil
	}
	if err := c.memoryTotal(ma, mb, pa, sa, pb, sb, ps); err != nil {
		return err
	}
	shms := make([]uint64, 0, len(sa))
	for id := range sa {
		if sb[id] {
			shms = append(shms, id)
		}
	}
	sort.Slice(shms, func(i, j int) bool { return shms[i] < shms[j] })
	for _, id := range shms {
		rs, err := compareHeld(ctx, ma, mb, id, true, ps, c.opts.Bytes, buf)
		if err != nil {
			return err
		}
		c.memRecords(0, "shmem "+strconv.FormatUint(id, 10), rs, nil, nil)
	}
	return nil
}

// memoryTotal records the change of the number of pages each dump holds in
// all (every task's, those of the tasks in one dump only included, and
// every shared memory object's, parents followed) as memory "total": what
// checkpointctl diff reports as the memory size change.
func (c *collector) memoryTotal(ma, mb *mem.Memory, pa, sa, pb, sb map[uint64]bool, ps uint64) error {
	total := func(m *mem.Memory, tasks, shms map[uint64]bool) (uint64, error) {
		var n uint64
		for _, set := range []struct {
			ids map[uint64]bool
			shm bool
		}{{tasks, false}, {shms, true}} {
			for id := range set.ids {
				runs, err := m.HeldRuns(id, set.shm)
				if err != nil {
					return 0, err
				}
				for _, r := range runs {
					n += (r[1] - r[0]) / ps
				}
			}
		}
		return n, nil
	}
	na, err := total(ma, pa, sa)
	if err != nil {
		return err
	}
	nb, err := total(mb, pb, sb)
	if err != nil {
		return err
	}
	if na == nb && !c.opts.Unchanged {
		return nil
	}
	op := Changed
	if na == nb {
		op = Unchanged
	}
	show := func(n uint64) string { return fmt.Sprintf("%d pages (%d bytes)", n, n*ps) }
	c.add("memory", 0, "total", 0, "pages", op, show(na), show(nb))
	return nil
}

func vmasByPID(v *views.DumpViews) map[uint32][]*views.Vma {
	out := map[uint32][]*views.Vma{}
	for _, x := range v.GetVmas() {
		out[x.GetPid()] = append(out[x.GetPid()], x)
	}
	for _, l := range out {
		sort.Slice(l, func(i, j int) bool { return l[i].GetStart() < l[j].GetStart() })
	}
	return out
}

// compareHeld returns the ranges of pages that one of ma and mb holds and the
// other does not, and those both hold with different contents, in address
// order. buf (2*chunk bytes) is reused for the reads.
func compareHeld(ctx context.Context, ma, mb *mem.Memory, id uint64, shm bool, ps uint64, withBytes bool, buf []byte) ([]memRange, error) {
	ra, err := ma.HeldRuns(id, shm)
	if err != nil {
		return nil, err
	}
	rb, err := mb.HeldRuns(id, shm)
	if err != nil {
		return nil, err
	}
	var out []memRange
	emit := func(start, end uint64, op string) {
		if n := len(out); n > 0 && out[n-1].op == op && out[n-1].end == start {
			out[n-1].end = end
			return
		}
		out = append(out, memRange{start: start, end: end, op: op})
	}
	// Sweep the boundaries of both run lists.
	i, j := 0, 0
	pos := uint64(0)
	for i < len(ra) || j < len(rb) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var inA, inB bool
		next := ^uint64(0)
		// The next interesting address: the smallest start or end at or
		// after pos.
		lo := ^uint64(0)
		if i < len(ra) {
			lo = min(lo, max(pos, ra[i][0]))
		}
		if j < len(rb) {
			lo = min(lo, max(pos, rb[j][0]))
		}
		pos = lo
		inA = i < len(ra) && ra[i][0] <= pos && pos < ra[i][1]
		inB = j < len(rb) && rb[j][0] <= pos && pos < rb[j][1]
		if inA {
			next = min(next, ra[i][1])
		} else if i < len(ra) {
			next = min(next, ra[i][0])
		}
		if inB {
			next = min(next, rb[j][1])
		} else if j < len(rb) {
			next = min(next, rb[j][0])
		}
		switch {
		case inA && inB:
			if err := compareContents(ma, mb, id, shm, pos, next, ps, withBytes, buf, &out); err != nil {
				return nil, err
			}
		case inA:
			emit(pos, next, Removed)
		case inB:
			emit(pos, next, Added)
		}
		pos = next
		for i < len(ra) && ra[i][1] <= pos {
			i++
		}
		for j < len(rb) && rb[j][1] <= pos {
			j++
		}
	}
	return out, nil
}

// compareContents compares [start, end), held by both, page by page.
func compareContents(ma, mb *mem.Memory, id uint64, shm bool, start, end, ps uint64, withBytes bool, buf []byte, out *[]memRange) error {
	ba, bb := buf[:chunk], buf[chunk:2*chunk]
	for a := start; a < end; {
		n := min(uint64(chunk), end-a)
		n -= n % ps
		if n == 0 {
			n = end - a
		}
		if err := ma.ReadHeld(id, shm, a, ba[:n]); err != nil {
			return err
		}
		if err := mb.ReadHeld(id, shm, a, bb[:n]); err != nil {
			return err
		}
		for off := uint64(0); off < n; off += ps {
			e := min(off+ps, n)
			x, y := ba[off:e], bb[off:e]
			if bytes.Equal(x, y) {
				continue
			}
			p := a + off
			if k := len(*out); k > 0 && (*out)[k-1].op == Changed && (*out)[k-1].end == p {
				(*out)[k-1].end = a + e
				continue
			}
			r := memRange{start: p, end: a + e, op: Changed}
			if withBytes {
				d := 0
				for d < len(x) && x[d] == y[d] {
					d++
				}
				r.diffAt = p + uint64(d)
				r.old = append([]byte(nil), x[d:min(d+excerpt, len(x))]...)
				r.new = append([]byte(nil), y[d:min(d+excerpt, len(y))]...)
			}
			*out = append(*out, r)
		}
		a += n
	}
	return nil
}

// memRecords turns the ranges of one task into changes: with Options.Pages
// one per range (split at VMA boundaries), else the number of pages added,
// removed and changed per VMA. Ranges are attributed to the VMAs of b (of a
// for removed pages); key is the shared memory object's, or "" for a task.
func (c *collector) memRecords(pid uint32, key string, rs []memRange, vmasA, vmasB []*views.Vma) {
	ps := c.pageSize
	type agg struct {
		start, end uint64
		op         string
		pages      uint64
	}
	var order []string
	sums := map[string]*agg{}
	for _, r := range rs {
		vl := vmasB
		if r.op == Removed {
			vl = vmasA
		}
		for _, part := range splitAtVMAs(r, vl) {
			k, vs, ve := key, part.start, part.end
			if v := vmaAt(vl, part.start); v != nil {
				k, vs, ve = hexKey(v.GetStart()), v.GetStart(), v.GetEnd()
			} else if k == "" {
				k = "pagemap"
			}
			pages := (part.end - part.start + ps - 1) / ps
			if c.opts.Pages {
				old, new := "", fmt.Sprintf("0x%x-0x%x (%d pages)", part.start, part.end, pages)
				if part.op == Removed {
					old, new = new, ""
				}
				if part.old != nil {
					old = fmt.Sprintf("0x%x: %s", part.diffAt, hex.EncodeToString(part.old))
					new = fmt.Sprintf("0x%x: %s", part.diffAt, hex.EncodeToString(part.new))
				}
				ch := c.add("memory", pid, k, vs, "pages", part.op, old, new)
				ch.Addr, ch.End, ch.Pages = &part.start, &part.end, &pages
				continue
			}
			sk := k + " " + part.op
			s := sums[sk]
			if s == nil {
				s = &agg{start: vs, end: ve, op: part.op}
				sums[sk] = s
				order = append(order, sk)
			}
			s.pages += pages
		}
	}
	for _, sk := range order {
		s := sums[sk]
		k := hexKey(s.start)
		if key != "" && s.end == 0 {
			k = key
		}
		ch := c.add("memory", pid, k, s.start, "pages", s.op, "", "")
		ch.Addr, ch.End, ch.Pages = &s.start, &s.end, &s.pages
	}
}

// vmaAt returns the VMA of vl (sorted) that holds addr, or nil.
func vmaAt(vl []*views.Vma, addr uint64) *views.Vma {
	i := sort.Search(len(vl), func(i int) bool { return vl[i].GetEnd() > addr })
	if i < len(vl) && vl[i].GetStart() <= addr {
		return vl[i]
	}
	return nil
}

// splitAtVMAs cuts r where a VMA of vl starts or ends.
func splitAtVMAs(r memRange, vl []*views.Vma) []memRange {
	var out []memRange
	for r.start < r.end {
		cut := r.end
		if v := vmaAt(vl, r.start); v != nil {
			cut = min(cut, v.GetEnd())
		} else {
			i := sort.Search(len(vl), func(i int) bool { return vl[i].GetStart() > r.start })
			if i < len(vl) {
				cut = min(cut, vl[i].GetStart())
			}
		}
		part := r
		part.end = cut
		if part.diffAt < part.start || part.diffAt >= cut {
			part.old, part.new = nil, nil
		}
		out = append(out, part)
		r.start = cut
	}
	return out
}
