// Package magic is the table of CRIU image kinds: every magic number of CRIU
// 4.2's criu/include/magic.h with the name crit prints for it, the head magic
// written before it, the protobuf message of its entries, the rule for the
// raw bytes that follow an entry, and the file names that carry it.
//
// The table is the single place where critq knows about kinds. The codec reads
// and writes images from it, the JSON encoder names kinds from it, and the
// dump loader classifies the files of a dump directory with it. Kinds that
// share a magic number (PAGEMAP and SHMEM_PAGEMAP, SIGNAL and PSIGNAL, the
// RAW kinds) are told apart by file name; [Lookup] by number returns the
// kind crit would name.
package magic

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/critq/critq/proto/images" // registers the schema
)

// Head magics and image versions from magic.h.
const (
	ImgCommon  uint32 = 0x54564319 // IMG_COMMON_MAGIC, Sarov
	ImgService uint32 = 0x55105940 // IMG_SERVICE_MAGIC, Zlatoust
	Raw        uint32 = 0          // RAW_IMAGE_MAGIC: no magic is written
	ImagesV1   uint32 = 1          // CRTOOLS_IMAGES_V1: images have no head magic
	ImagesV1_1 uint32 = 2          // CRTOOLS_IMAGES_V1_1: head magics present
)

// Head says which head magic precedes a kind's own magic.
type Head uint8

const (
	HeadCommon  Head = iota // IMG_COMMON, the usual case
	HeadService             // IMG_SERVICE (stats, irmap-cache)
	HeadNone                // no head magic (inventory.img)
)

// Extra names the rule for the raw bytes that follow each entry of a kind
// (format.md section 4). The codec implements each rule once.
type Extra uint8

const (
	ExtraNone      Extra = iota
	ExtraPipeData        // pipe_data_entry.bytes bytes
	ExtraSkQueue         // sk_packet_entry.length bytes
	ExtraTCPStream       // inq_len bytes, then outq_len bytes
	ExtraGhostFile       // entry 0: rest of file unless chunks; chunk entries: len bytes
	ExtraBPFMap          // keys_bytes + values_bytes bytes
	ExtraIPCSem          // nsems u16 values padded to 8 bytes
	ExtraIPCMsg          // qnum times: u32 size, ipc_msg, msize bytes padded to 8
	ExtraIPCShm          // legacy images only: round_up(size, 4) bytes unless in_pagemaps
)

var extraNames = [...]string{"none", "pipe-data", "sk-queue", "tcp-stream", "ghost-file", "bpfmap-data", "ipc-sem", "ipc-msg", "ipc-shm"}

func (e Extra) String() string {
	if int(e) < len(extraNames) {
		return extraNames[e]
	}
	return fmt.Sprintf("Extra(%d)", e)
}

// Kind describes one image kind.
type Kind struct {
	// Name is the name crit prints ("PSTREE"): magic.h's name without _MAGIC.
	Name string
	// Magic is the kind's magic number; 0 for RAW kinds.
	Magic uint32
	// Head is the head magic written before Magic in version 2 images.
	Head Head
	// Files are the file-name patterns of the kind, as in CRIU's
	// image-desc.c: a literal name, or one verb %d (decimal id), %x (hex id)
	// or %s (any word).
	Files []string
	// Entry is the message type of the entries; nil where CRIU knows the
	// name but writes no entries crit could decode (KDAT) or for RAW kinds.
	Entry protoreflect.MessageType
	// First is the message type of entry 0 where it differs from Entry
	// (PAGEMAP: pagemap_head; GHOST_FILE: ghost_file_entry).
	First protoreflect.MessageType
	// Extra is the rule for bytes that follow each entry.
	Extra Extra
	// Raw kinds have no magic and no framing: the file is data.
	Raw bool
	// Legacy kinds are read by CRIU's restore of old dumps but no longer
	// written.
	Legacy bool
	// Alias is set on kinds that share their magic with an earlier kind
	// of the table (SHMEM_PAGEMAP shares PAGEMAP's). Lookup never returns one.
	Alias bool
	// What says in a few words what the kind holds.
	What string
}

// MessageFor returns the message type of entry i.
func (k *Kind) MessageFor(i int) protoreflect.MessageType {
	if i == 0 && k.First != nil {
		return k.First
	}
	return k.Entry
}

// Decodable reports whether the kind's entries have a message type.
func (k *Kind) Decodable() bool { return k.Entry != nil }

// HeadMagic returns the head magic written before the kind's magic in
// version 2 images, or 0 when none is written.
func (k *Kind) HeadMagic() uint32 {
	switch {
	case k.Raw:
		return 0
	case k.Head == HeadService:
		return ImgService
	case k.Head == HeadCommon:
		return ImgCommon
	}
	return 0
}

func (k *Kind) String() string { return k.Name }

var (
	byMagic = map[uint32]*Kind{}
	byName  = map[string]*Kind{}
	sorted  []*Kind
)

func init() {
	for i := range table {
		k := &table[i]
		if k.entryName != "" {
			k.Entry = mustFind(k.entryName)
		}
		if k.firstName != "" {
			k.First = mustFind(k.firstName)
		}
		if _, dup := byName[k.Name]; dup {
			panic("magic: duplicate name " + k.Name)
		}
		byName[k.Name] = &k.Kind
		if !k.Raw {
			if _, ok := byMagic[k.Magic]; ok {
				k.Alias = true
			} else {
				byMagic[k.Magic] = &k.Kind
			}
		}
		sorted = append(sorted, &k.Kind)
	}
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
}

func mustFind(name string) protoreflect.MessageType {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName("critq.images." + name))
	if err != nil {
		panic("magic: message " + name + " is not in the schema: " + err.Error())
	}
	return mt
}

// Lookup returns the kind with magic number v, as crit names it. It reports
// false for unknown numbers, for 0 (RAW) and for the image versions 1 and 2.
func Lookup(v uint32) (*Kind, bool) {
	k, ok := byMagic[v]
	return k, ok
}

// ByName returns the kind crit calls name ("PSTREE", "SHMEM_PAGEMAP").
func ByName(name string) (*Kind, bool) {
	k, ok := byName[name]
	return k, ok
}

// Kinds returns every kind, sorted by name. The slice is shared: do not
// modify it.
func Kinds() []*Kind { return sorted }

// ForFile returns the kind that CRIU writes under the base name of a file
// ("core-42.img" is CORE, "pagemap-shmem-7.img" SHMEM_PAGEMAP, "pages-1.img"
// PAGES) and the id the name carries ("42"; "" for names without one).
// It reports false for names that no kind uses.
func ForFile(base string) (k *Kind, id string, ok bool) {
	best := -1
	for i := range table {
		for _, p := range table[i].Files {
			if s, ok := matchPattern(p, base); ok {
				// A longer literal part wins: pagemap-shmem-%d over pagemap-%d.
				if n := len(p); n > best {
					best, k, id = n, &table[i].Kind, s
				}
			}
		}
	}
	return k, id, best >= 0
}

// matchPattern matches a file name against a pattern with at most one verb.
func matchPattern(pattern, name string) (string, bool) {
	i := strings.IndexByte(pattern, '%')
	if i < 0 {
		return "", pattern == name
	}
	prefix, verb, suffix := pattern[:i], pattern[i+1], pattern[i+2:]
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) || len(name) <= len(prefix)+len(suffix) {
		return "", false
	}
	id := name[len(prefix) : len(name)-len(suffix)]
	for _, c := range id {
		switch {
		case c >= '0' && c <= '9':
		case verb == 'x' && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'):
		case verb == 's' && c != '/':
		case verb == 'd' && c == '-' && len(id) > 1 && id[0] == '-':
		default:
			return "", false
		}
	}
	return id, true
}

// FileName returns the file name CRIU gives a kind's image for an id, using
// the kind's first pattern ("core-%d.img" and "42" give "core-42.img").
func (k *Kind) FileName(id string) string {
	if len(k.Files) == 0 {
		return ""
	}
	p := k.Files[0]
	if i := strings.IndexByte(p, '%'); i >= 0 {
		return p[:i] + id + p[i+2:]
	}
	return p
}

type entry struct {
	Kind
	entryName string
	firstName string
}
