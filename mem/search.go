package mem

import (
	"bytes"
	"errors"
	"regexp"
	"sort"
	"strconv"

	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
)

// Pattern is what Search looks for: a [Literal] or a [Regexp].
type Pattern struct {
	lit      []byte
	re       *regexp.Regexp
	anchored *regexp.Regexp
	prefix   []byte
}

// Literal matches the bytes b exactly (raw bytes: any value, NUL included).
func Literal(b []byte) Pattern { return Pattern{lit: b} }

// Regexp matches a regular expression over raw bytes. A match is at most
// SearchOptions.MaxMatch bytes long.
func Regexp(re *regexp.Regexp) Pattern {
	p := Pattern{re: re}
	prefix, _ := re.LiteralPrefix()
	if prefix != "" {
		p.prefix = []byte(prefix)
		// The expression is known to compile; anchoring keeps it valid.
		p.anchored = regexp.MustCompile(`^(?:` + re.String() + `)`)
	}
	return p
}

// SearchOptions configure Search.
type SearchOptions struct {
	// PIDs limits the search to these tasks; all tasks when empty.
	PIDs []uint32
	// Context is the number of bytes returned before and after a match.
	Context int
	// MaxMatch bounds the length of a regular expression match; 0 means
	// 4096. Longer matches are cut to MaxMatch bytes.
	MaxMatch int
}

// Match is one occurrence of a pattern in a task's memory.
type Match struct {
	PID  uint32
	Addr uint64
	Data []byte
	// Before and After are up to Context bytes around the match, fewer
	// where the readable memory ends.
	Before, After []byte
	// VMA is the mapping that holds the match.
	VMA *images.VmaEntry
}

// chunkSize is how much memory Search reads at a time.
const chunkSize = 1 << 20

// Search calls fn for each match of p in the memory the dump holds of
// every task (or opts.PIDs), in task and address order. It scans the
// pages that are in the dump (this dump's pages, its parents', shared
// memory objects'); memory that is not there (zero pages, file contents)
// is not searched, and no match spans such a hole. An error from fn stops
// the search and is returned.
func (m *Memory) Search(p Pattern, opts SearchOptions, fn func(Match) error) error {
	if len(p.lit) == 0 && p.re == nil {
		return errors.New("empty search pattern")
	}
	pids := opts.PIDs
	if len(pids) == 0 {
		var err error
		if pids, err = m.pids(); err != nil {
			return err
		}
	}
	overlap := len(p.lit) - 1
	if p.re != nil {
		if opts.MaxMatch <= 0 {
			opts.MaxMatch = 4096
		}
		overlap = opts.MaxMatch - 1
	}
	s := &scanner{m: m, p: p, opts: opts, overlap: overlap, fn: fn,
		buf: make([]byte, chunkSize+overlap)}
	for _, pid := range pids {
		t, err := m.task(pid)
		if err != nil {
			return err
		}
		for _, vma := range t.vmas {
			spans, err := m.heldSpans(pid, vma)
			if err != nil {
				return err
			}
			for _, sp := range spans {
				if err := s.scan(pid, vma, sp); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// pids returns the tasks of the dump in pstree order, or the pids of its
// mm images when it has no pstree.
func (m *Memory) pids() ([]uint32, error) {
	var out []uint32
	if m.d.File("pstree.img") != nil {
		tree, err := model.Of(m.d).Tree()
		if err != nil {
			return nil, err
		}
		for _, t := range tree.Tasks {
			out = append(out, t.PID)
		}
		return out, nil
	}
	// No process tree: the pids of the mm images, or of a pre-dump's
	// pagemap images.
	for _, kind := range []string{"MM", "PAGEMAP"} {
		for _, f := range m.d.Kind(kind) {
			if id, err := strconv.ParseUint(f.ID, 10, 32); err == nil {
				out = append(out, uint32(id))
			}
		}
		if len(out) > 0 {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// PIDs returns the tasks whose memory the dump holds: those of its process
// tree in pstree order, or, in a pre-dump (no pstree.img), the pids its
// pagemap images are named after, in order.
func (m *Memory) PIDs() ([]uint32, error) { return m.pids() }

// span is a range of addresses [start, end).
type span struct{ start, end uint64 }

// heldSpans returns the ranges of vma whose bytes the dump holds, merged
// and sorted, from the page indexes alone.
func (m *Memory) heldSpans(pid uint32, vma *images.VmaEntry) ([]span, error) {
	start, end := vma.GetStart(), vma.GetEnd()
	var out []span
	add := func(a, b uint64) {
		a, b = max(a, start), min(b, end)
		if a < b {
			out = append(out, span{a, b})
		}
	}
	shmid, isShm, err := m.shmemID(vma)
	if err != nil {
		return nil, err
	}
	shared := isShm && (vma.GetFlags()&flagnames.MapShared != 0 || vma.GetStatus()&flagnames.VMAAreaSysVIPC != 0)
	if !shared {
		ix, err := m.taskIndex(pid)
		if err != nil {
			return nil, err
		}
		if ix != nil {
			for i := ix.find(start); i < len(ix.runs) && ix.runs[i].start < end; i++ {
				if r := ix.runs[i]; r.where == inPages || r.where == inParent {
					add(r.start, r.end)
				}
			}
		}
	}
	if isShm {
		ix, err := m.shmIndex(shmid)
		if err != nil {
			return nil, err
		}
		if ix != nil {
			// Object offsets map to addresses: a = start + off - pgoff.
			pg := vma.GetPgoff()
			lo := pg
			for i := ix.find(lo); i < len(ix.runs) && ix.runs[i].start < pg+(end-start); i++ {
				r := ix.runs[i]
				if r.where != inPages && r.where != inParent {
					continue
				}
				a := start + (max(r.start, pg) - pg)
				b := start + (r.end - pg)
				add(a, b)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	merged := out[:0]
	for _, s := range out {
		if n := len(merged); n > 0 && s.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, s.end)
			continue
		}
		merged = append(merged, s)
	}
	return merged, nil
}

// scanner streams spans through a pattern in chunks that overlap by the
// longest match less one byte, so that no match is lost at a boundary and
// none is reported twice.
type scanner struct {
	m       *Memory
	p       Pattern
	opts    SearchOptions
	overlap int
	fn      func(Match) error
	buf     []byte
}

func (s *scanner) scan(pid uint32, vma *images.VmaEntry, sp span) error {
	carry := 0
	pos := sp.start
	for pos < sp.end {
		n := uint64(chunkSize)
		if sp.end-pos < n {
			n = sp.end - pos
		}
		k, err := s.m.readIn(pid, vma, pos, s.buf[carry:carry+int(n)])
		if err != nil && k == 0 && carry == 0 {
			return err
		}
		data := s.buf[:carry+k]
		base := pos - uint64(carry)
		last := pos+n >= sp.end || err != nil
		limit := len(data) - s.overlap // matches must start before limit
		if last {
			limit = len(data)
		}
		if err := s.find(data, limit, func(i, j int) error {
			return s.report(pid, vma, base+uint64(i), data[i:j])
		}); err != nil {
			return err
		}
		if err != nil {
			return err
		}
		keep := min(s.overlap, len(data))
		copy(s.buf, data[len(data)-keep:])
		carry = keep
		pos += n
	}
	return nil
}

// find calls hit(i, j) for each non-overlapping match data[i:j] with
// i < limit.
func (s *scanner) find(data []byte, limit int, hit func(i, j int) error) error {
	switch {
	case s.p.re == nil:
		lit := s.p.lit
		for i := 0; i < limit; {
			k := bytes.Index(data[i:], lit)
			if k < 0 || i+k >= limit {
				return nil
			}
			i += k
			if err := hit(i, i+len(lit)); err != nil {
				return err
			}
			i += len(lit)
		}
	case s.p.prefix != nil:
		for i := 0; i < limit; {
			k := bytes.Index(data[i:], s.p.prefix)
			if k < 0 || i+k >= limit {
				return nil
			}
			i += k
			w := data[i:min(len(data), i+s.opts.MaxMatch)]
			loc := s.p.anchored.FindIndex(w)
			if loc == nil {
				i++
				continue
			}
			if err := hit(i, i+loc[1]); err != nil {
				return err
			}
			i += max(loc[1], 1)
		}
	default:
		for i := 0; i < limit; {
			loc := s.p.re.FindIndex(data[i:])
			if loc == nil || i+loc[0] >= limit {
				return nil
			}
			a, b := i+loc[0], i+loc[1]
			if b-a > s.opts.MaxMatch {
				b = a + s.opts.MaxMatch
			}
			if err := hit(a, b); err != nil {
				return err
			}
			i = max(b, a+1)
		}
	}
	return nil
}

func (s *scanner) report(pid uint32, vma *images.VmaEntry, addr uint64, data []byte) error {
	h := Match{PID: pid, Addr: addr, Data: bytes.Clone(data), VMA: vma}
	if c := s.opts.Context; c > 0 {
		from := max(vma.GetStart(), addr-min(addr, uint64(c)))
		h.Before = s.readBack(pid, from, addr)
		end := addr + uint64(len(data))
		h.After, _ = s.m.Read(pid, end, int(min(uint64(c), vma.GetEnd()-end)))
	}
	return s.fn(h)
}

// readBack returns the readable bytes of [from, to) nearest to to.
func (s *scanner) readBack(pid uint32, from, to uint64) []byte {
	for from < to {
		b, err := s.m.Read(pid, from, int(to-from))
		if err == nil {
			return b
		}
		from += uint64(len(b)) + 1
	}
	return nil
}

// Held returns the bytes of memory the dump holds for task pid: private
// (its own pages, in this dump or its parents) and shared (pages of the
// shared memory objects its MAP_SHARED mappings show).
func (m *Memory) Held(pid uint32) (private, shared uint64, err error) {
	t, err := m.task(pid)
	if err != nil {
		return 0, 0, err
	}
	for _, vma := range t.vmas {
		spans, err := m.heldSpans(pid, vma)
		if err != nil {
			return 0, 0, err
		}
		_, isShm, err := m.shmemID(vma)
		if err != nil {
			return 0, 0, err
		}
		for _, s := range spans {
			if isShm && vma.GetFlags()&flagnames.MapShared != 0 {
				shared += s.end - s.start
			} else {
				private += s.end - s.start
			}
		}
	}
	return private, shared, nil
}

// Spans returns the address ranges of pid whose bytes the dump holds, in
// address order: [start, end) pairs.
func (m *Memory) Spans(pid uint32) ([][2]uint64, error) {
	t, err := m.task(pid)
	if err != nil {
		return nil, err
	}
	var out [][2]uint64
	for _, vma := range t.vmas {
		spans, err := m.heldSpans(pid, vma)
		if err != nil {
			return nil, err
		}
		for _, s := range spans {
			out = append(out, [2]uint64{s.start, s.end})
		}
	}
	return out, nil
}
