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
	"google.golang.org/protobuf/proto"
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
	m, task := sleepWithout(t, "mm-19635.img", "fdinfo-2.img")
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

// TestListenAgain checks that a listener hears of a missing image each
// time a value needs it (a use may tell it more than once), also from the
// parts built before it listened
// (the fd tables, a task's core), and nothing once stopped.
func TestListenAgain(t *testing.T) {
	for _, c := range []struct {
		remove string
		use    func(m *model.Model, task *model.Task)
	}{
		{"fdinfo-2.img", func(m *model.Model, _ *model.Task) { m.FdTables() }},
		{"core-19635.img", func(m *model.Model, task *model.Task) { m.Core(task) }},
		{"core-19635.img", func(m *model.Model, task *model.Task) { m.Threads(task) }},
	} {
		m, task := sleepWithout(t, c.remove)
		c.use(m, task) // built before anyone listens
		var heard []string
		stop := m.Listen(func(ms model.Missing) { heard = append(heard, ms.Image) })
		c.use(m, task)
		once := len(heard)
		c.use(m, task)
		stop()
		c.use(m, task)
		if once == 0 || len(heard) != 2*once {
			t.Errorf("without %s: heard %q, wanted it on each use", c.remove, heard)
		}
		for _, h := range heard {
			if h != c.remove {
				t.Errorf("without %s: heard of %s", c.remove, h)
			}
		}
	}
}

// sleepWithout returns the model of a copy of sleep-plain without the
// named images, and its task.
func sleepWithout(t *testing.T, names ...string) (*model.Model, *model.Task) {
	t.Helper()
	dir := t.TempDir()
	testcorpus.CopyFiles(t, filepath.Join(testcorpus.Testdata(t), "sleep-plain"), dir)
	for _, n := range names {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	m := model.Of(open(t, dir))
	tree, err := m.Tree()
	if err != nil {
		t.Fatal(err)
	}
	return m, tree.ByPID[19635]
}

// TestMountType: fsname names an AUTO mount; other types by their enum
// name, fsname or not.
func TestMountType(t *testing.T) {
	for _, c := range []struct {
		typ    images.Fstype
		fsname string
		want   string
	}{
		{images.Fstype_AUTO, "fuse.sshfs", "fuse.sshfs"},
		{images.Fstype_AUTO, "", "AUTO"},
		{images.Fstype_PROC, "", "PROC"},
		{images.Fstype_TMPFS, "tmpfs", "TMPFS"},
	} {
		e := &images.MntEntry{Fstype: proto.Uint32(uint32(c.typ))}
		if c.fsname != "" {
			e.Fsname = proto.String(c.fsname)
		}
		if got := model.MountType(e); got != c.want {
			t.Errorf("MountType(%v, %q) = %q, want %q", c.typ, c.fsname, got, c.want)
		}
	}
}
