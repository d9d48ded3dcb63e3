package diff

import (
	"sort"

	"google.golang.org/protobuf/proto"
	"strconv"
	"strings"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/query"
)

// coveredKinds are the image kinds whose contents other sections compare
// (through the views and the page indexes), or that hold only what changes
// with every dump: the dump's run id and statistics (INVENTORY, STATS), the
// clocks at dump time (TIMENS), a cache of path lookups (IRMAP_CACHE).
var coveredKinds = map[string]bool{
	"CORE": true, "MM": true, "PSTREE": true, "FDINFO": true, "FILES": true, "FS": true, "IDS": true,
	"PAGEMAP": true, "SHMEM_PAGEMAP": true, "PAGES": true, "TCP_STREAM": true, "MNTS": true,
	"INVENTORY": true, "STATS": true, "TIMENS": true, "IRMAP_CACHE": true,
}

// imageFiles returns the files of d that are images of a known kind, by name.
func imageFiles(d *dump.Dump) map[string]*dump.File {
	out := map[string]*dump.File{}
	for _, f := range d.Files() {
		if f.Kind != nil {
			out[f.Name] = f
		}
	}
	return out
}

// images records the images that exist in one dump only.
func (c *collector) images(a, b *query.Dump) {
	if c.opts.PID != 0 {
		return
	}
	fa, fb := imageFiles(a.Images()), imageFiles(b.Images())
	for name, f := range fa {
		if fb[name] == nil {
			c.add("images", 0, name, 0, "", Removed, f.Kind.Name, "")
		}
	}
	for name, f := range fb {
		if fa[name] == nil {
			c.add("images", 0, name, 0, "", Added, "", f.Kind.Name)
		}
	}
}

// other compares, entry by entry, the images of the kinds no other section
// covers (timers, file locks, namespaces, signal queues, ...), matched by
// file name. Their section is the kind's name in lower case.
func (c *collector) other(a, b *query.Dump) error {
	if c.opts.PID != 0 {
		return nil
	}
	fa, fb := imageFiles(a.Images()), imageFiles(b.Images())
	names := make([]string, 0, len(fa))
	for name, f := range fa {
		if fb[name] != nil && !coveredKinds[f.Kind.Name] && f.Kind.Decodable() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		ma, err := fa[name].Messages()
		if err != nil {
			return &query.DumpError{Dump: a.Name(), Err: err}
		}
		mb, err := fb[name].Messages()
		if err != nil {
			return &query.DumpError{Dump: b.Name(), Err: err}
		}
		section := strings.ToLower(fa[name].Kind.Name)
		ea := make([]elem, len(ma))
		for i, m := range ma {
			k := name + "[" + strconv.Itoa(i) + "]"
			ea[i] = elem{keys: [2]mkey{skey(k)}, key: k, ord: uint64(i), msg: m}
		}
		eb := make([]elem, len(mb))
		for i, m := range mb {
			k := name + "[" + strconv.Itoa(i) + "]"
			eb[i] = elem{keys: [2]mkey{skey(k)}, key: k, ord: uint64(i), msg: m}
		}
		c.compareSet(section, ea, eb, func(m proto.Message) string { return renderMessage(m.ProtoReflect()) }, nil, nil)
	}
	return nil
}
