package check_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/check"
	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/internal/testcpu"
	"github.com/critq/critq/internal/testimg"
	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
)

// fakeHost is a host prepared for a dump: every file the dump opens by
// its path exists with the size and mode the images recorded; no port and
// no pid is taken. Tests then change it.
type fakeHost struct {
	files     map[string]check.FileInfo
	buildIDs  map[string][]byte
	listeners []check.Listener
	pids      map[uint32]bool
	cpu       *check.CPU
	cgroups   *check.Cgroups
	ns        map[string]bool
}

func (h *fakeHost) CPU() (*check.CPU, error)             { return h.cpu, nil }
func (h *fakeHost) Cgroups() (*check.Cgroups, error)     { return h.cgroups, nil }
func (h *fakeHost) Namespaces() (map[string]bool, error) { return h.ns, nil }

func (h *fakeHost) Stat(p string) (check.FileInfo, error) {
	fi, ok := h.files[p]
	if !ok {
		return check.FileInfo{}, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
	}
	return fi, nil
}

func (h *fakeHost) BuildID(p string) ([]byte, error) { return h.buildIDs[p], nil }
func (h *fakeHost) Listeners() ([]check.Listener, error) {
	return h.listeners, nil
}
func (h *fakeHost) PIDInUse(pid uint32) (bool, error) { return h.pids[pid], nil }

// prepared returns a fake host as the dump's MANIFEST describes the
// dumping host: the dump's files in place, as they were.
func prepared(t *testing.T, d *dump.Dump) *fakeHost {
	t.Helper()
	h := &fakeHost{files: map[string]check.FileInfo{}, buildIDs: map[string][]byte{}, pids: map[uint32]bool{},
		cpu: &check.CPU{Flags: map[string]bool{}}, cgroups: &check.Cgroups{Hierarchy: map[string]int{}, V2: map[string]bool{}},
		ns: map[string]bool{"user": true, "pid": true, "net": true, "ipc": true, "uts": true, "mnt": true, "cgroup": true, "time": true}}
	if ci, err := model.First[*images.CpuinfoEntry](d.File("cpuinfo.img")); err == nil && ci != nil && len(ci.GetX86Entry()) == 1 {
		h.cpu = check.ImageCPU(ci.GetX86Entry()[0])
	}
	if ce, err := model.First[*images.CgroupEntry](d.File("cgroup.img")); err == nil && ce != nil {
		for i, c := range ce.GetControllers() {
			for _, n := range c.GetCnames() {
				h.cgroups.Hierarchy[n] = i + 1
			}
		}
	}
	f := d.File("files.img")
	if f == nil {
		return h
	}
	msgs, err := f.Messages()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		reg := m.(*images.FileEntry).GetReg()
		if reg == nil {
			continue
		}
		mode := reg.GetMode()
		if reg.Mode == nil {
			mode = check.ModeReg | 0o644
		}
		h.files[reg.GetName()] = check.FileInfo{Mode: mode, Size: int64(reg.GetSize())}
	}
	return h
}

func open(t *testing.T, dir string) *dump.Dump {
	t.Helper()
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var restoreOpts = regexp.MustCompile(`(?m)^(?:\S+: )?restore OK \S+ opts: *(.*?)\s*(?:\(|$)`)

// TestCorpusPreparedHost: on a host prepared as each dump's MANIFEST
// describes, nothing blocks the restore, and the suggested options include
// every option the corpus's real restore was given.
func TestCorpusPreparedHost(t *testing.T) {
	n := 0
	for _, dir := range testcorpus.Dumps(t) {
		d := open(t, dir)
		if d.File("pstree.img") == nil {
			continue // cpuinfo: no process tree to restore
		}
		rep, err := check.Run(context.Background(), d, prepared(t, d), check.Options{})
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, p := range rep.Problems {
			if p.Blocking {
				t.Errorf("%s: blocking problem on a prepared host: %+v", dir, p)
			}
		}
		manifest := filepath.Join(dir, "MANIFEST.txt")
		if filepath.Base(dir) == "dump" {
			manifest = filepath.Join(filepath.Dir(dir), "MANIFEST.txt")
		}
		b, err := os.ReadFile(manifest)
		if err != nil {
			continue // testdata has no MANIFEST
		}
		ms := restoreOpts.FindAllSubmatch(b, -1)
		if len(ms) == 0 {
			continue
		}
		want := strings.Fields(string(ms[len(ms)-1][1]))
		got := " " + strings.Join(rep.Options, " ") + " "
		for _, o := range want {
			if !strings.Contains(got, " "+o+" ") && !strings.Contains(got, " "+o) {
				t.Errorf("%s: the real restore used %s; critq check suggests %q", dir, o, rep.Options)
			}
		}
		// Given the options of the real restore, nothing blocks either.
		rep, err = check.Run(context.Background(), d, prepared(t, d), check.Options{CRIU: want})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Blocking() {
			t.Errorf("%s: with the real restore's options %q: %+v", dir, want, rep.Problems)
		}
		n++
	}
	t.Logf("%d dumps with a recorded restore agree", n)
}

// find returns the problems of the check named.
func find(rep *check.Report, name string) []check.Problem {
	var out []check.Problem
	for _, p := range rep.Problems {
		if p.Check == name {
			out = append(out, p)
		}
	}
	return out
}

func TestProblems(t *testing.T) {
	td := testcorpus.Testdata(t)
	sleep := filepath.Join(td, "sleep-plain") // pid 19635, cwd /srv/critq-cases/run/sleep-plain
	tcp := filepath.Join(td, "tcp")           // pid 19347, listeners on 127.0.0.1:47310..
	unix := filepath.Join(td, "unix-sockets")
	for _, tc := range []struct {
		name   string
		dir    string
		change func(*fakeHost)
		opts   check.Options
		check  string
		pid    uint32
		image  string
		entry  string
		msg    string
	}{
		{"missing executable", sleep, func(h *fakeHost) { delete(h.files, "/usr/bin/sleep") },
			check.Options{}, "files", 19635, "files.img", "reg id", "/usr/bin/sleep does not exist"},
		{"file changed size", sleep, func(h *fakeHost) {
			fi := h.files["/usr/bin/sleep"]
			fi.Size++
			h.files["/usr/bin/sleep"] = fi
		}, check.Options{}, "files", 19635, "files.img", "reg id", "bytes, the dump recorded"},
		{"file changed mode", sleep, func(h *fakeHost) {
			fi := h.files["/usr/bin/sleep"]
			fi.Mode ^= 0o111
			h.files["/usr/bin/sleep"] = fi
		}, check.Options{}, "files", 19635, "files.img", "reg id", "has mode"},
		{"executable rebuilt", tcp, func(h *fakeHost) { h.buildIDs["/srv/critq-cases/bin/tcp"] = bytes.Repeat([]byte{0xab}, 20) },
			check.Options{}, "files", 19347, "files.img", "reg id", "build-id differs"},
		{"working directory removed", sleep, func(h *fakeHost) { delete(h.files, "/srv/critq-cases/run/sleep-plain") },
			check.Options{}, "cwd", 19635, "fs-19635.img", "working id", "working directory /srv/critq-cases/run/sleep-plain does not exist"},
		{"port taken", tcp, func(h *fakeHost) { h.listeners = []check.Listener{{Proto: "tcp", Addr: "0.0.0.0", Port: 47310}} },
			check.Options{}, "network", 19347, "files.img", "socket ino", "port 127.0.0.1:47310 is taken"},
		{"unix path taken", unix, nil, check.Options{}, "network", 0, "files.img", "socket ino", "is taken by a file that is not a socket"},
		{"pid in use", sleep, func(h *fakeHost) { h.pids[19635] = true },
			check.Options{}, "pids", 19635, "pstree.img", "pid 19635", "pid 19635 is in use"},
		{"tcp without --tcp-established", tcp, nil,
			check.Options{CRIU: []string{}}, "options", 0, "", "", "needs --tcp-established"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The check names one problem; pick it among the others.
			d := open(t, tc.dir)
			h := prepared(t, d)
			if tc.change != nil {
				tc.change(h)
			}
			if tc.name == "unix path taken" {
				for p := range unixPaths(t, d) {
					h.files[p] = check.FileInfo{Mode: check.ModeReg | 0o644}
				}
			}
			rep, err := check.Run(context.Background(), d, h, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Blocking() {
				t.Fatalf("not blocking: %+v", rep.Problems)
			}
			p := pick(t, rep, tc.check, tc.msg)
			if (tc.pid != 0 && p.PID != tc.pid) || p.Image != tc.image || !strings.Contains(p.Entry, tc.entry) || !strings.Contains(p.Message, tc.msg) {
				t.Errorf("got %+v; want pid %d image %q entry ~%q message ~%q", p, tc.pid, tc.image, tc.entry, tc.msg)
			}
			if p.CRIU == "" {
				t.Error("no CRIU consequence")
			}
		})
	}
}

// pick returns the problem of the check named whose message has msg, or
// else its first problem; none is a fatal error.
func pick(t *testing.T, rep *check.Report, name, msg string) check.Problem {
	t.Helper()
	ps := find(rep, name)
	if len(ps) == 0 {
		t.Fatalf("no %s problem: %+v", name, rep.Problems)
	}
	for _, q := range ps {
		if strings.Contains(q.Message, msg) {
			return q
		}
	}
	return ps[0]
}

// unixPaths returns the bound unix socket paths of a dump.
func unixPaths(t *testing.T, d *dump.Dump) map[string]bool {
	msgs, err := d.File("files.img").Messages()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range msgs {
		if u := m.(*images.FileEntry).GetUsk(); u != nil && len(u.GetName()) > 0 && u.GetName()[0] != 0 {
			out[filepath.Join(u.GetNameDir(), strings.TrimRight(string(u.GetName()), "\x00"))] = true
		}
	}
	if len(out) == 0 {
		t.Skip("no bound unix socket path")
	}
	return out
}

// TestShellJob: a tree whose root task does not lead its session restores
// only with --shell-job.
func TestShellJob(t *testing.T) {
	src := filepath.Join(testcorpus.Testdata(t), "sleep-plain")
	dir := t.TempDir()
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "pstree.img" {
			b = setSID(t, b, 1)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := open(t, dir)
	rep, err := check.Run(context.Background(), d, prepared(t, d), check.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Blocking() || !strings.Contains(strings.Join(rep.Options, " "), "--shell-job") {
		t.Errorf("options %q, problems %+v", rep.Options, rep.Problems)
	}
	rep, err = check.Run(context.Background(), d, prepared(t, d), check.Options{CRIU: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if ps := find(rep, "options"); len(ps) != 1 || !strings.Contains(ps[0].Message, "--shell-job") || !ps[0].Blocking {
		t.Errorf("without --shell-job: %+v", rep.Problems)
	}
}

// setSID rewrites the sid of every entry of a pstree image.
func setSID(t *testing.T, b []byte, sid uint32) []byte {
	r, err := codec.NewBytesReader(b, codec.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := codec.NewWriter(&out, r.Header())
	if err != nil {
		t.Fatal(err)
	}
	for {
		e, err := r.Next()
		if err != nil {
			break
		}
		m, err := e.Message()
		if err != nil {
			t.Fatal(err)
		}
		m.(*images.PstreeEntry).Sid = &sid
		if err := w.WriteMessage(m, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestOSHost: the real host under a root folder made by the test.
func TestOSHost(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "srv/data"), 0o755))
	must(os.WriteFile(filepath.Join(root, "srv/data/f"), []byte("hello"), 0o640))
	must(os.Symlink("/srv/data", filepath.Join(root, "link"))) // absolute: resolved inside root
	h := check.OSHost{Root: root}
	fi, err := h.Stat("/link/f")
	if err != nil || fi.Size != 5 || fi.Mode != check.ModeReg|0o640 {
		t.Errorf("Stat through an absolute link: %+v, %v", fi, err)
	}
	if _, err := h.Stat("/srv/missing"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if fi, err := h.Stat("/srv"); err != nil || fi.Mode&check.ModeType != check.ModeDir {
		t.Errorf("dir: %+v, %v", fi, err)
	}
	if _, err := (check.OSHost{}).Listeners(); err != nil {
		t.Errorf("Listeners: %v", err)
	}
	if used, err := (check.OSHost{}).PIDInUse(uint32(os.Getpid())); err != nil || !used {
		t.Errorf("own pid not in use: %v %v", used, err)
	}
	if id, err := (check.OSHost{}).BuildID(os.Args[0]); err != nil || len(id) == 0 {
		t.Logf("test binary build-id: %x, %v", id, err) // Go binaries carry one when linked with -buildid
	}
}

func BenchmarkCheck(b *testing.B) {
	d, err := dump.Open(filepath.Join(testcorpus.Testdata(b), "tcp"))
	if err != nil {
		b.Fatal(err)
	}
	h := &fakeHost{files: map[string]check.FileInfo{}, pids: map[uint32]bool{}}
	for b.Loop() {
		if _, err := check.Run(context.Background(), d, h, check.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// writeImage writes the messages of one kind into dir/name.
func writeImage(t testing.TB, dir, kind, name string, msgs ...proto.Message) {
	t.Helper()
	testimg.Write(t, dir, name, kind, msgs...)
}

// TestSpeed100kFiles: a dump with 100,000 files entries, each opened by
// its one task, is checked in under a second (issue 16).
func TestSpeed100kFiles(t *testing.T) {
	const n = 100_000
	dir := t.TempDir()
	pid := uint32(4242)
	writeImage(t, dir, "PSTREE", "pstree.img", &images.PstreeEntry{Pid: proto.Uint32(pid), Ppid: proto.Uint32(0),
		Pgid: proto.Uint32(pid), Sid: proto.Uint32(pid), Threads: []uint32{pid}})
	writeImage(t, dir, "IDS", "ids-4242.img", &images.TaskKobjIdsEntry{VmId: proto.Uint32(1), FilesId: proto.Uint32(1),
		FsId: proto.Uint32(1), SighandId: proto.Uint32(1)})
	files := make([]proto.Message, n)
	fds := make([]proto.Message, n)
	h := &fakeHost{files: map[string]check.FileInfo{}, pids: map[uint32]bool{}}
	for i := range n {
		name := fmt.Sprintf("/data/file-%06d", i)
		files[i] = &images.FileEntry{Type: images.FdTypes_REG.Enum(), Id: proto.Uint32(uint32(i + 1)),
			Reg: &images.RegFileEntry{Id: proto.Uint32(uint32(i + 1)), Flags: proto.Uint32(2), Pos: proto.Uint64(0),
				Fown: &images.FownEntry{Uid: proto.Uint32(0), Euid: proto.Uint32(0), Signum: proto.Uint32(0),
					PidType: proto.Uint32(0), Pid: proto.Uint32(0)},
				Name: proto.String(name), Size: proto.Uint64(uint64(i)), Mode: proto.Uint32(check.ModeReg | 0o644)}}
		fds[i] = &images.FdinfoEntry{Id: proto.Uint32(uint32(i + 1)), Flags: proto.Uint32(0), Type: images.FdTypes_REG.Enum(),
			Fd: proto.Uint32(uint32(i + 3))}
		h.files[name] = check.FileInfo{Mode: check.ModeReg | 0o644, Size: int64(i)}
	}
	delete(h.files, "/data/file-054321")
	writeImage(t, dir, "FILES", "files.img", files...)
	writeImage(t, dir, "FDINFO", "fdinfo-1.img", fds...)
	d := open(t, dir)
	start, cpu0 := time.Now(), testcpu.Used()
	rep, err := check.Run(context.Background(), d, h, check.Options{})
	took, cpu := time.Since(start), testcpu.Used()-cpu0
	if err != nil {
		t.Fatal(err)
	}
	if ps := find(rep, "files"); len(ps) != 1 || !strings.Contains(ps[0].Message, "/data/file-054321 does not exist (used by 4242)") {
		t.Errorf("problems %+v", rep.Problems)
	}
	t.Logf("checked %d files: %v of CPU (user+system, all threads), %v of wall time", rep.Checked["files"], cpu, took)
	// CPU time, not wall time: a loaded machine gives the test a fraction
	// of a core. It bounds the wall time on one idle core.
	if !raceEnabled && cpu > time.Second {
		t.Errorf("check of %d files took %v of CPU (limit 1 s)", n, cpu)
	}
}
