package mem

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/proto/images"
)

// ErrCompressed is the error (matched with errors.Is) of every memory read
// of a dump whose pages may be LZ4-compressed: CRIU's development branch
// (criu pull requests 2895 and 3115) compresses pages and records the sizes
// of the compressed blocks in new pagemap_entry fields, with new pagemap
// and inventory flags. critq reads CRIU 4.2's format, where the pages file
// holds pages as they are, so it refuses to read such memory rather than
// return compressed bytes as memory. Decoding the images (decode, info,
// queries over the other images) still works: the codec keeps the fields it
// does not know.
var ErrCompressed = errors.New("memory pages in CRIU's LZ4-compressed format (criu-dev), which critq does not read")

// CompressedError says which image shows the compressed format.
type CompressedError struct {
	File   string
	Entry  int   // the entry's index in the image
	Offset int64 // the entry's offset
	What   string
}

func (e *CompressedError) Error() string {
	return fmt.Sprintf("%s: entry %d at offset %d: %s: %v: memory reads refused", e.File, e.Entry, e.Offset, e.What, ErrCompressed)
}

func (e *CompressedError) Is(target error) bool { return target == ErrCompressed }

// knownPEFlags are the pagemap flags of CRIU 4.2.
const knownPEFlags = PEParent | PELazy | PEPresent

var (
	pagemapHeadFields  = (&images.PagemapHead{}).ProtoReflect().Descriptor().Fields()
	pagemapEntryFields = (&images.PagemapEntry{}).ProtoReflect().Descriptor().Fields()
	inventoryFields    = (&images.InventoryEntry{}).ProtoReflect().Descriptor().Fields()
)

// checkedIndex builds the page index of a pagemap after checking that
// neither it nor the dump's inventory is in the compressed format.
func (m *Memory) checkedIndex(name string, entries []*codec.Entry, pageSize uint64) (*pageIndex, error) {
	if err := m.checkInventory(); err != nil {
		return nil, err
	}
	if err := checkPagemap(name, entries); err != nil {
		return nil, err
	}
	return buildIndex(name, entries, pageSize)
}

// checkInventory looks for fields of inventory_entry that CRIU 4.2 does not
// write.
func (m *Memory) checkInventory() error {
	for _, f := range m.d.Kind("INVENTORY") {
		img, err := f.Image()
		if err != nil || len(img.Entries) == 0 {
			return nil // the inventory's own errors are reported where it is read
		}
		e := img.Entries[0]
		if num, _ := unknownField(e.Payload, inventoryFields); num != 0 {
			return &CompressedError{File: f.Name, Entry: e.Index, Offset: e.Offset,
				What: fmt.Sprintf("inventory_entry field %d, unknown to CRIU 4.2", num)}
		}
	}
	return nil
}

// checkPagemap looks for fields of pagemap_head and pagemap_entry that
// CRIU 4.2 does not write, and for flags it does not set.
func checkPagemap(name string, entries []*codec.Entry) error {
	for i, e := range entries {
		fields := pagemapEntryFields
		what := "pagemap_entry"
		if i == 0 {
			fields, what = pagemapHeadFields, "pagemap_head"
		}
		num, flags := unknownField(e.Payload, fields)
		switch {
		case num != 0:
			return &CompressedError{File: name, Entry: e.Index, Offset: e.Offset, What: fmt.Sprintf("%s field %d, unknown to CRIU 4.2", what, num)}
		case i > 0 && flags&^knownPEFlags != 0:
			return &CompressedError{File: name, Entry: e.Index, Offset: e.Offset, What: fmt.Sprintf("pagemap flags 0x%x, unknown to CRIU 4.2", flags&^knownPEFlags)}
		}
	}
	return nil
}

// unknownField returns the number of the first field of payload that
// fields does not declare (0 if none), and the value of a varint field 4
// (pagemap_entry.flags). Malformed data is left to the decoder that reads
// it.
func unknownField(b []byte, fields protoreflect.FieldDescriptors) (num protowire.Number, flags uint64) {
	for len(b) > 0 {
		n, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return 0, flags
		}
		b = b[k:]
		if fields.ByNumber(n) == nil {
			return n, flags
		}
		if n == 4 && typ == protowire.VarintType {
			v, k := protowire.ConsumeVarint(b)
			if k < 0 {
				return 0, flags
			}
			flags = v
			b = b[k:]
			continue
		}
		k = protowire.ConsumeFieldValue(n, typ, b)
		if k < 0 {
			return 0, flags
		}
		b = b[k:]
	}
	return 0, flags
}
