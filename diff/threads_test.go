package diff

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/proto/images"
)

// rewriteImage rewrites the image name of the dump folder dir (kind kind)
// with edit applied to each of its entries.
func rewriteImage(t *testing.T, dir, name, kind string, edit func(proto.Message)) {
	t.Helper()
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f := d.File(name)
	if f == nil {
		t.Fatalf("%s: no %s", dir, name)
	}
	msgs, err := f.Messages()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]proto.Message, len(msgs))
	for i, m := range msgs {
		out[i] = proto.Clone(m)
		edit(out[i])
	}
	if err := writeImage(filepath.Join(dir, name), kind, out...); err != nil {
		t.Fatal(err)
	}
}

// corpusCopy returns the folder of corpus dump name and a copy of its
// images to change.
func corpusCopy(t *testing.T, name string) (src, dst string) {
	t.Helper()
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	src, dst = filepath.Join(root, name), t.TempDir()
	testcorpus.CopyFiles(t, src, dst)
	return src, dst
}

// TestThreads diffs the threads dump of the corpus against a copy in which
// thread thr-sleeper (tid 20635; /proc SigBlk 0000000000000800, SIGUSR1
// blocked, in proc/20631/task/20635/status) also blocks SIGTERM and thread
// thr-idle (tid 20638) is gone: the threads section reports exactly these
// two, the processes section the task's thread list.
func TestThreads(t *testing.T) {
	src, dst := corpusCopy(t, "threads")
	rewriteImage(t, dst, "core-20635.img", "CORE", func(m proto.Message) {
		tc := m.(*images.CoreEntry).GetThreadCore()
		tc.BlkSigset = proto.Uint64(tc.GetBlkSigset() | 1<<(15-1))
	})
	rewriteImage(t, dst, "pstree.img", "PSTREE", func(m proto.Message) {
		p := m.(*images.PstreeEntry)
		p.Threads = slices.DeleteFunc(p.Threads, func(tid uint32) bool { return tid == 20638 })
	})
	cs := diffDirs(t, src, dst, Options{})
	var got []string
	for _, c := range cs {
		got = append(got, show(c))
	}
	want := []string{
		`processes pid 20631 20631 threads changed: "[20631,20634,20635,20636,20637,20638]" -> "[20631,20634,20635,20636,20637]"`,
		`threads pid 20631 20635 sigmask changed: "0x800" -> "0x4800"`,
		`threads pid 20631 20638  removed: "tid 20638 thr-idle sigmask 0x0" -> ""`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	// The same with the thread's image gone as well.
	if err := os.Remove(filepath.Join(dst, "core-20638.img")); err != nil {
		t.Fatal(err)
	}
	cs = diffDirs(t, src, dst, Options{Only: []string{"images"}})
	if len(cs) != 1 || show(cs[0]) != `images pid 0 core-20638.img  removed: "CORE" -> ""` {
		t.Errorf("images: %v", cs)
	}
}

// TestLoadCommandLines: the tasks Load returns carry the command line and
// environment read from memory, as /proc/PID/cmdline and environ showed them
// before the dump (evolve-pair/dump1/proc), so that diff compares them.
func TestLoadCommandLines(t *testing.T) {
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	dir := filepath.Join(root, "evolve-pair", "dump1")
	v, err := Load(context.Background(), openDump(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.GetTasks()) == 0 {
		t.Fatal("no tasks")
	}
	for _, task := range v.GetTasks() {
		for _, f := range []struct {
			name string
			got  []string
		}{{"cmdline", task.GetCmdline()}, {"environ", task.GetEnviron()}} {
			b, err := os.ReadFile(filepath.Join(dir, "proc", strconv.FormatUint(uint64(task.GetPid()), 10), f.name))
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
			if !slices.Equal(f.got, want) {
				t.Errorf("pid %d %s: %q, /proc had %q", task.GetPid(), f.name, f.got, want)
			}
		}
	}
}

// TestUnknownFields: a field the schema does not know, added to a thread's
// core, is reported (by size), not lost between proto.Equal and the walk.
func TestUnknownFields(t *testing.T) {
	src, dst := corpusCopy(t, "threads")
	rewriteImage(t, dst, "core-20636.img", "CORE", func(m proto.Message) {
		tc := m.(*images.CoreEntry).GetThreadCore().ProtoReflect()
		tc.SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 999, protowire.VarintType), 7))
	})
	cs := diffDirs(t, src, dst, Options{})
	if len(cs) != 1 || show(cs[0]) != `threads pid 20631 20636 core.thread_core.(unknown fields) changed: "" -> "3 bytes"` {
		t.Errorf("got %v", cs)
	}
}
