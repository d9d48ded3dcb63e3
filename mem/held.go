package mem

import "fmt"

// HeldRuns returns the ranges [start, end) that the pagemap of task pid
// (shm false) or of shared memory object id (shm true) holds, in this dump's
// pages file or in a parent dump, sorted: addresses for a task, offsets in the
// object for shared memory. It needs no VMA (a pre-dump has none); nil when
// the dump has no such pagemap.
func (m *Memory) HeldRuns(id uint64, shm bool) ([][2]uint64, error) {
	ix, err := m.keyIndex(key{id: id, shm: shm})
	if ix == nil || err != nil {
		return nil, err
	}
	var out [][2]uint64
	for _, r := range ix.runs {
		if r.where == inPages || r.where == inParent {
			out = append(out, [2]uint64{r.start, r.end})
		}
	}
	return out, nil
}

// ReadHeld fills buf with the bytes at addr of a range HeldRuns returned,
// following parent dumps, with ReadAt on the pages files. Bytes the pagemaps
// do not hold are an error.
func (m *Memory) ReadHeld(id uint64, shm bool, addr uint64, buf []byte) error {
	for got := 0; got < len(buf); {
		n, gap, err := m.held(key{id: id, shm: shm}, addr+uint64(got), buf[got:])
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%s: 0x%x: %d bytes not in the dump", m.d.Name, addr+uint64(got), gap)
		}
		got += n
	}
	return nil
}
