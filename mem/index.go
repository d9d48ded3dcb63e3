package mem

import (
	"errors"
	"fmt"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/critq/critq/codec"
)

// Pagemap flags (criu/include/pagemap.h).
const (
	PEParent  = 1 << 0 // the pages are in the parent dump
	PELazy    = 1 << 1 // the pages may be fetched lazily at restore
	PEPresent = 1 << 2 // the pages are in this dump's pages file
)

// Where a run of pages is.
const (
	inPages  uint8 = iota // in the pages file, at off
	inParent              // in the parent dump, same address
	lazyOnly              // not in the dump: served by a lazy-pages daemon
	noData                // an entry without any of the flags above
)

// run is a span of addresses covered by one pagemap entry.
type run struct {
	start, end uint64 // [start, end): addresses, or offsets for shmem
	off        int64  // offset in the pages file when where == inPages
	where      uint8
}

// pageIndex is the page index of one pagemap image: its runs sorted by
// address, and the id of its pages file.
type pageIndex struct {
	pagesID uint32
	runs    []run
	present int64 // bytes of the pages file the runs use
}

// pmEntry is a pagemap_entry decoded and normalised as CRIU does
// (criu/pagemap.c init_compat_pagemap_entry).
type pmEntry struct {
	vaddr uint64
	nr    uint64
	flags uint32
}

// parsePagemapEntry decodes the fields of a pagemap_entry that the index
// needs, applying CRIU's normalisation: in_parent sets PE_PARENT, absent
// flags mean PE_PRESENT, absent nr_pages means compat_nr_pages.
func parsePagemapEntry(b []byte) (pmEntry, error) {
	var (
		e                    pmEntry
		compat               uint64
		hasFlags, hasNr, inP bool
	)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return e, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.VarintType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return e, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return e, protowire.ParseError(n)
		}
		b = b[n:]
		switch num {
		case 1:
			e.vaddr = v
		case 2:
			compat = uint64(uint32(v))
		case 3:
			inP = v != 0
		case 4:
			e.flags, hasFlags = uint32(v), true
		case 5:
			e.nr, hasNr = v, true
		}
	}
	if inP {
		e.flags |= PEParent
	} else if !hasFlags {
		e.flags = PEPresent
	}
	if !hasNr {
		e.nr = compat
	}
	return e, nil
}

// parsePagesID decodes pagemap_head.pages_id.
func parsePagesID(b []byte) (uint32, error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, protowire.ParseError(n)
			}
			return uint32(v), nil
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return 0, errors.New("pagemap head has no pages_id")
}

// buildIndex builds the page index of a pagemap image from its entries
// (entry 0 is the pagemap_head). Pages of PE_PRESENT entries follow each
// other in the pages file in entry order; other entries take no room there.
// The runs must not overlap.
func buildIndex(name string, entries []*codec.Entry, pageSize uint64) (*pageIndex, error) {
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s: no pagemap head", name)
	}
	if pageSize == 0 || pageSize&(pageSize-1) != 0 {
		return nil, fmt.Errorf("%s: bad page size %d", name, pageSize)
	}
	id, err := parsePagesID(entries[0].Payload)
	if err != nil {
		return nil, &codec.Error{File: name, Kind: "PAGEMAP", Entry: 0, Offset: entries[0].Offset, Err: err}
	}
	ix := &pageIndex{pagesID: id, runs: make([]run, 0, len(entries)-1)}
	var off uint64
	sorted := true
	for _, ce := range entries[1:] {
		fail := func(err error) error {
			return &codec.Error{File: name, Kind: "PAGEMAP", Entry: ce.Index, Offset: ce.Offset, Err: err}
		}
		e, err := parsePagemapEntry(ce.Payload)
		if err != nil {
			return nil, fail(err)
		}
		if e.nr == 0 {
			continue
		}
		if e.vaddr%pageSize != 0 {
			return nil, fail(fmt.Errorf("vaddr 0x%x is not page aligned", e.vaddr))
		}
		size := e.nr * pageSize
		if size/pageSize != e.nr || e.vaddr+size < e.vaddr {
			return nil, fail(fmt.Errorf("%d pages at 0x%x overflow the address space", e.nr, e.vaddr))
		}
		r := run{start: e.vaddr, end: e.vaddr + size}
		switch {
		case e.flags&PEPresent != 0:
			if off+size < off || off+size > 1<<62 {
				return nil, fail(errors.New("pages file offset overflows"))
			}
			r.where, r.off = inPages, int64(off)
			off += size
		case e.flags&PEParent != 0:
			r.where = inParent
		case e.flags&PELazy != 0:
			r.where = lazyOnly
		default:
			r.where = noData
		}
		if n := len(ix.runs); n > 0 && ix.runs[n-1].end > r.start {
			sorted = false
		}
		ix.runs = append(ix.runs, r)
	}
	if !sorted {
		sort.SliceStable(ix.runs, func(i, j int) bool { return ix.runs[i].start < ix.runs[j].start })
		for i := 1; i < len(ix.runs); i++ {
			if ix.runs[i-1].end > ix.runs[i].start {
				return nil, fmt.Errorf("%s: pagemap entries overlap at 0x%x", name, ix.runs[i].start)
			}
		}
	}
	ix.present = int64(off)
	return ix, nil
}

// find returns the index of the first run that ends after addr: the run
// holding addr when runs[i].start <= addr, or the next run. It returns
// len(runs) when no run ends after addr.
func (ix *pageIndex) find(addr uint64) int {
	return sort.Search(len(ix.runs), func(i int) bool { return ix.runs[i].end > addr })
}

// countPresent returns the pages id of a pagemap and the number of pages
// its PE_PRESENT entries put in the pages file. It needs no page size.
func countPresent(entries []*codec.Entry) (uint32, uint64, error) {
	if len(entries) == 0 {
		return 0, 0, errors.New("no pagemap head")
	}
	id, err := parsePagesID(entries[0].Payload)
	if err != nil {
		return 0, 0, err
	}
	var n uint64
	for _, ce := range entries[1:] {
		e, err := parsePagemapEntry(ce.Payload)
		if err != nil {
			return 0, 0, err
		}
		if e.flags&PEPresent != 0 {
			n += e.nr
		}
	}
	return id, n, nil
}
