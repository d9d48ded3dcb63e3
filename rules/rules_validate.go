package rules

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/mem"
	"github.com/critq/critq/proto/images"
)

// ValidationError is a rewritten entry that CRIU could not restore. It
// names the rule that made the entry what it is.
type ValidationError struct {
	Where string // the rule
	File  string
	Entry int
	Err   error
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("%s: entry %d: %s: %v", e.File, e.Entry, e.Where, e.Err)
}

func (e *ValidationError) Unwrap() error { return e.Err }

// maxValidationErrors bounds the errors Validate reports.
const maxValidationErrors = 10

// Validate checks the changes against what CRIU needs to restore the dump,
// and returns one *ValidationError per entry that fails (joined, at most
// ten), nil when all pass:
//
//   - a file_entry carries the part of its type (reg for REG, usk for
//     UNIXSK, ...) and no part of another type;
//   - an image of a kind CRIU reads one entry of (core, mm, ids, fs, ...)
//     keeps its entry; a task keeps its core;
//   - the pages the PE_PRESENT entries of a pagemap name fit in its pages
//     image.
//
// Required fields are checked when the rules are applied (see
// [ApplyOptions]).
func (r *RuleResult) Validate(d *dump.Dump) error {
	v := &validator{d: d, r: r}
	for _, c := range r.Changes {
		if len(v.errs) >= maxValidationErrors {
			break
		}
		if c.Drop {
			v.dropped(c)
			continue
		}
		if fe, ok := c.New.(*images.FileEntry); ok {
			if err := checkFileEntry(fe); err != nil {
				v.fail(c, c.Index, err)
			}
		}
	}
	v.pagemaps()
	return errors.Join(v.errs...)
}

type validator struct {
	d    *dump.Dump
	r    *RuleResult
	errs []error
}

func (v *validator) fail(c *EntryChange, entry int, err error) {
	where := "the rules"
	if c.Rule != nil {
		where = c.Rule.Source.Where
	}
	v.errs = append(v.errs, &ValidationError{Where: where, File: c.File, Entry: entry, Err: err})
}

// dropped checks a dropped entry.
func (v *validator) dropped(c *EntryChange) {
	// GHOST_FILE counts as one here, as in the views (its chunks' drops
	// are refused as before the move to this package).
	if !c.Kind.OneEntry() && c.Kind.Name != "GHOST_FILE" {
		return
	}
	if c.Kind.Name == "CORE" {
		v.fail(c, c.Index, errors.New("drops the core of a task: CRIU cannot restore a task without its core_entry"))
		return
	}
	v.fail(c, c.Index, fmt.Errorf("drops the entry of a %s image: CRIU reads exactly one entry from it", c.Kind.Name))
}

// fileParts maps each type of file_entry to the field of its part.
var fileParts = map[images.FdTypes]protoreflect.Name{
	images.FdTypes_REG: "reg", images.FdTypes_INETSK: "isk", images.FdTypes_NS: "nsf",
	images.FdTypes_PACKETSK: "psk", images.FdTypes_NETLINKSK: "nlsk", images.FdTypes_EVENTFD: "efd",
	images.FdTypes_EVENTPOLL: "epfd", images.FdTypes_SIGNALFD: "sgfd", images.FdTypes_TUNF: "tunf",
	images.FdTypes_TIMERFD: "tfd", images.FdTypes_INOTIFY: "ify", images.FdTypes_FANOTIFY: "ffy",
	images.FdTypes_EXT: "ext", images.FdTypes_UNIXSK: "usk", images.FdTypes_FIFO: "fifo",
	images.FdTypes_PIPE: "pipe", images.FdTypes_TTY: "tty", images.FdTypes_MEMFD: "memfd",
	images.FdTypes_BPFMAP: "bpf", images.FdTypes_PIDFD: "pidfd",
}

// checkFileEntry checks that a file entry carries the part of its type
// and no other (CRIU's collect_one_file reads only the part of the type,
// and dereferences it).
func checkFileEntry(fe *images.FileEntry) error {
	t := fe.GetType()
	want, ok := fileParts[t]
	if !ok {
		return fmt.Errorf("file_entry.type %s is not a type of files.img", t)
	}
	m := fe.ProtoReflect()
	fields := m.Descriptor().Fields()
	if !m.Has(fields.ByName(want)) {
		return fmt.Errorf("a %s file entry without its %s part: set %s or keep the type", t, want, want)
	}
	var others []string
	for _, name := range fileParts {
		if name != want && m.Has(fields.ByName(name)) {
			others = append(others, string(name))
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("a %s file entry that carries the part of another type (%s): clear it or change the type", t, strings.Join(others, ", "))
	}
	return nil
}

// pagemaps checks that the present pages of each changed pagemap image fit
// in its pages image.
func (v *validator) pagemaps() {
	var ps uint64
	seen := map[string]bool{}
	for _, c := range v.r.Changes {
		if seen[c.File] || c.Kind.Name != "PAGEMAP" && c.Kind.Name != "SHMEM_PAGEMAP" {
			continue
		}
		seen[c.File] = true
		if ps == 0 {
			var err error
			if ps, err = mem.Open(v.d).PageSizeOf(); err != nil {
				v.fail(c, c.Index, fmt.Errorf("cannot check the pagemap against its pages: %v", err))
				return
			}
		}
		v.pagemap(c, finalMessages(v.r, v.d.File(c.File)), ps)
	}
}

func (v *validator) pagemap(c *EntryChange, msgs []proto.Message, ps uint64) {
	if len(msgs) == 0 {
		return
	}
	head, ok := msgs[0].(*images.PagemapHead)
	if !ok {
		return
	}
	pages := v.d.FileFor("PAGES", uint64(head.GetPagesId()))
	var size uint64
	if pages != nil && pages.Size > 0 {
		size = uint64(pages.Size)
	}
	var off uint64
	for i, m := range msgs[1:] {
		e, ok := m.(*images.PagemapEntry)
		if !ok || e == nil {
			continue
		}
		nr, present := pagemapPages(e)
		if !present {
			continue
		}
		bytes := nr * ps
		if bytes/ps != nr || off+bytes < off || off+bytes > size {
			name := "the pages image"
			if pages != nil {
				name = pages.Name
			}
			v.fail(v.changeAt(c.File, i+1, c), i+1, fmt.Errorf("%d pages at 0x%x end at byte %d of the present pages, beyond the %d bytes of %s",
				nr, e.GetVaddr(), off+bytes, size, name))
			return
		}
		off += bytes
	}
}

// changeAt returns the change of entry i of file, or def.
func (v *validator) changeAt(file string, i int, def *EntryChange) *EntryChange {
	for _, c := range v.r.Changes {
		if c.File == file && c.Index == i {
			return c
		}
	}
	return def
}

// pagemapPages returns the pages of a pagemap entry and whether they are in
// the pages image, normalised as CRIU does (in_parent sets PE_PARENT,
// absent flags mean PE_PRESENT, absent nr_pages means compat_nr_pages).
func pagemapPages(e *images.PagemapEntry) (uint64, bool) {
	nr := uint64(e.GetCompatNrPages())
	if e.NrPages != nil {
		nr = e.GetNrPages()
	}
	flags := e.GetFlags()
	switch {
	case e.GetInParent():
		flags |= mem.PEParent
	case e.Flags == nil:
		flags = mem.PEPresent
	}
	return nr, flags&mem.PEPresent != 0
}

// finalMessages returns the messages of an image after the changes, nil for
// dropped entries.
func finalMessages(r *RuleResult, f *dump.File) []proto.Message {
	if f == nil {
		return nil
	}
	msgs, err := f.Messages()
	if err != nil {
		return nil
	}
	out := append([]proto.Message(nil), msgs...)
	for _, c := range r.Changes {
		if c.File == f.Name && c.Index < len(out) {
			out[c.Index] = c.New
		}
	}
	return out
}
