package model_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
)

func open(t *testing.T, dir string) *dump.Dump {
	t.Helper()
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestOnceAndShared checks that the model of a dump is one value and that
// each part is built once, also when many goroutines ask at once (run with
// -race), reading each image once.
func TestOnceAndShared(t *testing.T) {
	d := open(t, filepath.Join(testcorpus.Testdata(t), "unix-sockets"))
	reads := map[string]int{}
	var mu sync.Mutex
	d.SetHook(func(name string) { mu.Lock(); reads[name]++; mu.Unlock() })
	var wg sync.WaitGroup
	models := make([]*model.Model, 8)
	for i := range models {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := model.Of(d)
			if _, err := m.FdTables(); err != nil {
				t.Error(err)
			}
			if _, err := m.Files(); err != nil {
				t.Error(err)
			}
			models[i] = m
		}()
	}
	wg.Wait()
	for _, m := range models {
		if m != models[0] {
			t.Fatal("model.Of gave two models of one dump")
		}
	}
	for name, n := range reads {
		if n != 1 {
			t.Errorf("%s read %d times", name, n)
		}
	}
	if len(models[0].Missing()) != 0 {
		t.Errorf("a whole dump misses %v", models[0].Missing())
	}
}

// TestUnixName checks the one rule for unix socket names against the
// names the kernel gives (ss prints the same): a path bound with its NUL
// counted, a path without, an abstract name, no name.
func TestUnixName(t *testing.T) {
	for in, want := range map[string]string{"srv.sock\x00": "srv.sock", "srv.sock": "srv.sock", "\x00abs": "@abs", "\x00abs\x00": "@abs\x00", "": ""} {
		if got := model.UnixName([]byte(in)); got != want {
			t.Errorf("UnixName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFileRules checks the path, flags and deleted rules on the corpus
// dumps that have FIFOs and remaps: a FIFO's flags and path are its
// regular file's; only LINKED and GHOST remaps are deleted.
func TestFileRules(t *testing.T) {
	fifos, remapped := 0, 0
	for _, dir := range testcorpus.Dumps(t) {
		d := open(t, dir)
		m := model.Of(d)
		idx, err := m.Files()
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		rs, err := m.Remaps()
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, f := range idx.List {
			if ff := f.GetFifo(); ff != nil {
				fifos++
				reg := idx.ByID[ff.GetRegfId()]
				flags, ok := idx.Flags(f)
				if reg == nil || !ok || flags != reg.GetReg().GetFlags() || idx.Path(f) != reg.GetReg().GetName() {
					t.Errorf("%s: fifo %d: flags %d %v, path %q; its file %v", dir, f.GetId(), flags, ok, idx.Path(f), reg)
				}
			}
			del, err := m.Deleted(f.GetId())
			if err != nil {
				t.Fatal(err)
			}
			typ, has := rs[f.GetId()]
			if has {
				remapped++
			}
			if want := has && (typ == images.RemapType_LINKED || typ == images.RemapType_GHOST); del != want {
				t.Errorf("%s: file %d: deleted %v with remap %v (%v)", dir, f.GetId(), del, typ, has)
			}
		}
	}
	if testcorpus.Root(t) != "" && (fifos == 0 || remapped == 0) {
		t.Errorf("the corpus gave %d fifos and %d remaps: the rules were not tried", fifos, remapped)
	}
}

// TestMissingRecorded checks that a missing image a value needs is a
// *MissingError naming it and is listed once, and that a zombie's missing
// mm is none.
func TestMissingRecorded(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(testcorpus.Testdata(t), "sleep-plain")
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || e.Name() == "mm-19635.img" || e.Name() == "fdinfo-2.img" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := model.Of(open(t, dir))
	tree, err := m.Tree()
	if err != nil {
		t.Fatal(err)
	}
	task := tree.ByPID[19635]
	for i := 0; i < 2; i++ {
		if _, err := m.MM(task); !model.IsMissing(err) {
			t.Errorf("MM: %v", err)
		}
		if _, err := m.Fds(task); !model.IsMissing(err) {
			t.Errorf("Fds: %v", err)
		}
	}
	got := m.Missing()
	if len(got) != 2 || got[0].Image != "fdinfo-2.img" || got[1].Image != "mm-19635.img" {
		t.Errorf("Missing() = %v", got)
	}

	if root := testcorpus.Root(t); root != "" {
		z := model.Of(open(t, filepath.Join(root, "zdtm-zombie00")))
		tree, err := z.Tree()
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tree.Tasks {
			if _, err := z.MM(task); err != nil {
				t.Errorf("zombie-or-not %d: %v", task.PID, err)
			}
		}
		if len(z.Missing()) != 0 {
			t.Errorf("zdtm-zombie00 misses %v", z.Missing())
		}
	}
}
