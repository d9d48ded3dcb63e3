package magic_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/magic"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		v    uint32
		name string
	}{
		{0x58313116, "INVENTORY"},
		{0x56084025, "PAGEMAP"}, // shared with SHMEM_PAGEMAP, PAGES_OLD, SHM_PAGES_OLD
		{0x59255647, "SIGNAL"},  // shared with PSIGNAL
		{0x67343323, "BINFMT_MISC"},
		{0x54435556, "PIDFD"},
		{0x57093306, "STATS"},
		{0x57023458, "KDAT"},
		{2, "CRTOOLS_IMAGES_V1_1"},
	}
	for _, tt := range tests {
		k, ok := magic.Lookup(tt.v)
		if !ok || k.Name != tt.name {
			t.Errorf("Lookup(%#x) = %v, %v; want %s", tt.v, k, ok, tt.name)
		}
	}
	for _, v := range []uint32{0, 1, magic.ImgCommon, magic.ImgService, 0xdeadbeef} {
		if k, ok := magic.Lookup(v); ok {
			t.Errorf("Lookup(%#x) = %v, want none", v, k)
		}
	}
}

func TestForFile(t *testing.T) {
	tests := []struct {
		file, kind, id string
	}{
		{"core-42.img", "CORE", "42"},
		{"pagemap-42.img", "PAGEMAP", "42"},
		{"pagemap-shmem-2197.img", "SHMEM_PAGEMAP", "2197"},
		{"pages-1.img", "PAGES", "1"},
		{"pages-shmem-3.img", "SHM_PAGES_OLD", "3"},
		{"ghost-file-1a.img", "GHOST_FILE", "1a"},
		{"tcp-stream-5b3f.img", "TCP_STREAM", "5b3f"},
		{"stats-dump", "STATS", "dump"},
		{"stats-restore", "STATS", "restore"},
		{"irmap-cache", "IRMAP_CACHE", ""},
		{"inventory.img", "INVENTORY", ""},
		{"eventpoll-tfd.img", "EVENTPOLL_TFD", ""},
		{"eventpoll.img", "EVENTPOLL_FILE", ""},
		{"netns-10.img", "NETNS", "10"},
		{"netns-ct-10.img", "NETNF_CT", "10"},
		{"route6-10.img", "ROUTE6", "10"},
		{"tmpfs-dev-46.tar.gz.img", "TMPFS_DEV", "46"},
		{"tmpfs-46.tar.gz.img", "TMPFS_IMG", "46"},
		{"binfmt-misc.img", "BINFMT_MISC", ""},
		{"binfmt-misc-3.img", "BINFMT_MISC_OLD", "3"},
		{"signal-p-7.img", "PSIGNAL", "7"},
		{"ip6tables-10.img", "IP6TABLES", "10"},
	}
	for _, tt := range tests {
		k, id, ok := magic.ForFile(tt.file)
		if !ok || k.Name != tt.kind || id != tt.id {
			t.Errorf("ForFile(%q) = %v, %q, %v; want %s, %q", tt.file, k, id, ok, tt.kind, tt.id)
		}
		if got := k.FileName(tt.id); ok && got != tt.file {
			t.Errorf("%s.FileName(%q) = %q, want %q", k, tt.id, got, tt.file)
		}
	}
	for _, f := range []string{"dump.log", "core-x.img", "core-.img", "parent", "MANIFEST.txt", "ghost-file-zz.img"} {
		if k, _, ok := magic.ForFile(f); ok {
			t.Errorf("ForFile(%q) = %v, want none", f, k)
		}
	}
}

// TestCorpusFiles checks that every file of every corpus dump is claimed by
// a kind, except files that are not images.
func TestCorpusFiles(t *testing.T) {
	var dirs []string
	for _, root := range []string{testcorpus.Root(t), testcorpus.Testdata(t)} {
		if root == "" {
			continue
		}
		ds, _ := filepath.Glob(filepath.Join(root, "[a-z]*"))
		chains, _ := filepath.Glob(filepath.Join(root, "predump-*", "[a-z]*")) // pre1, pre2, dump, proc
		dirs = append(dirs, ds...)
		dirs = append(dirs, chains...)
	}
	checked := 0
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() || e.Name()[0] == '.' || e.Name() == "MANIFEST.txt" || filepath.Ext(e.Name()) == ".log" ||
				filepath.Ext(e.Name()) == ".txt" || filepath.Ext(e.Name()) == ".tsv" || filepath.Ext(e.Name()) == ".json" || e.Type()&os.ModeSymlink != 0 {
				continue
			}
			if _, _, ok := magic.ForFile(e.Name()); !ok && e.Name() != "parent" {
				t.Errorf("%s: no kind claims it", filepath.Join(dir, e.Name()))
			}
			checked++
		}
	}
	if checked < 100 {
		t.Errorf("checked %d files: the dumps were not found", checked)
	}
}

func TestTable(t *testing.T) {
	for _, k := range magic.Kinds() {
		if k.Raw && (k.Magic != 0 || k.Entry != nil) {
			t.Errorf("%s: raw kind with a magic or entry type", k)
		}
		if !k.Raw && k.Magic == 0 {
			t.Errorf("%s: no magic", k)
		}
		if k.Extra != magic.ExtraNone && k.Entry == nil {
			t.Errorf("%s: extra rule without entries", k)
		}
		if k.What == "" {
			t.Errorf("%s: no description", k)
		}
	}
	// magic.h of CRIU 4.2 defines 87 names besides the head magics,
	// RAW_IMAGE_MAGIC and CRTOOLS_IMAGES_V1 (checked against the header).
	if got := len(magic.Kinds()); got != 87 {
		t.Errorf("%d kinds, want the 87 of magic.h", got)
	}
}

func ExampleForFile() {
	k, id, _ := magic.ForFile("pagemap-shmem-2197.img")
	fmt.Println(k.Name, id, k.Entry.Descriptor().Name(), k.First.Descriptor().Name())
	// Output: SHMEM_PAGEMAP 2197 pagemap_entry pagemap_head
}
