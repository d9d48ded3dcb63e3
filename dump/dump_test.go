package dump_test

import (
	"errors"
	"os"
	"sort"
	"sync"
	"testing"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/proto/images"
)

func TestOpenLazy(t *testing.T) {
	d, err := dump.Open("../testdata/dumps/sleep-plain")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var opened []string
	d.SetHook(func(name string) { mu.Lock(); opened = append(opened, name); mu.Unlock() })
	if len(opened) != 0 {
		t.Fatalf("Open read %v", opened)
	}
	cores := d.Kind("CORE")
	if len(cores) != 1 || cores[0].Name != "core-19635.img" || cores[0].ID != "19635" {
		t.Fatalf("Kind(CORE) = %v", cores)
	}
	if f := d.FileFor("CORE", 19635); f != cores[0] {
		t.Errorf("FileFor(CORE, 19635) = %v", f)
	}
	// Concurrent first reads decode once.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs, err := d.File("pstree.img").Messages()
			if err != nil || len(msgs) != 1 || msgs[0].(*images.PstreeEntry).GetPid() != 19635 {
				t.Errorf("pstree: %v, %v", msgs, err)
			}
		}()
	}
	wg.Wait()
	if len(opened) != 1 || opened[0] != "pstree.img" {
		t.Errorf("opened %v, want [pstree.img]", opened)
	}
	if _, err := d.File("pages-1.img").Image(); !errors.Is(err, dump.ErrRaw) {
		t.Errorf("pages-1.img: Image() = %v, want ErrRaw", err)
	}
	if p, err := d.Parent(); p != nil || err != nil {
		t.Errorf("Parent() = %v, %v for a dump without parent", p, err)
	}
}

func TestParentChain(t *testing.T) {
	const dir = "../../shared/corpus/predump-chain-splice/dump"
	if _, err := os.Stat(dir); err != nil {
		t.Skip("corpus not present")
	}
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var chain []string
	for d != nil {
		chain = append(chain, d.Name)
		if d, err = d.Parent(); err != nil {
			t.Fatal(err)
		}
	}
	if len(chain) != 3 {
		t.Errorf("chain = %v, want dump -> pre2 -> pre1", chain)
	}
}

func TestCorpusImages(t *testing.T) {
	dirs := []string{"../testdata/dumps/tcp", "../testdata/dumps/zdtm-msgque-ns", "../testdata/dumps/zdtm-ghost_holes00"}
	for _, dir := range dirs {
		d, err := dump.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, f := range d.Files() {
			if f.Kind == nil || f.Kind.Raw {
				continue
			}
			if _, err := f.Messages(); err != nil {
				t.Errorf("%s: %v", f.Name, err)
			}
			kinds = append(kinds, f.Kind.Name)
		}
		sort.Strings(kinds)
		if len(kinds) == 0 {
			t.Errorf("%s: no images", dir)
		}
	}
}

func TestNotADump(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/notes.txt", []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := dump.Open(dir); !errors.Is(err, dump.ErrNotDump) {
		t.Errorf("Open(a folder of no images) = %v, want ErrNotDump", err)
	}
}
