package check_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/check"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/proto/images"
)

// withImages copies the testdata dump name into a temporary folder, lets
// add write images into it, and opens it.
func withImages(t *testing.T, name string, add func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	testcorpus.CopyFiles(t, filepath.Join(testcorpus.Testdata(t), name), dir)
	if add != nil {
		add(dir)
	}
	return dir
}

// cpuinfo is an x86 cpuinfo entry (capability version 2, 19 words) with
// the FPU bits, sse2 and avx2, and xsave figures.
func cpuinfo() *images.CpuinfoX86Entry {
	w := make([]uint32, 19)
	w[0] = 1<<0 | 1<<24 | 1<<26 // fpu, fxsr, sse2
	w[4] = 1<<26 | 1<<27        // xsave, osxsave
	w[9] = 1 << 5               // avx2
	return &images.CpuinfoX86Entry{VendorId: images.CpuinfoX86Entry_INTEL.Enum(), CpuFamily: proto.Uint32(6),
		Model: proto.Uint32(1), Stepping: proto.Uint32(1), CapabilityVer: proto.Uint32(2), Capability: w,
		XfeaturesMask: proto.Uint64(7), XsaveSize: proto.Uint32(832), XsaveSizeMax: proto.Uint32(832)}
}

// TestKernelProblems: one problem of each check of the kernel and the
// machine (cpu, cgroups, namespaces, mounts, tty), on a fake host, with
// its task, image and entry; and no problem where CRIU would restore.
func TestKernelProblems(t *testing.T) {
	sleep := withImages(t, "sleep-plain", func(dir string) {
		writeImage(t, dir, "CPUINFO", "cpuinfo.img", &images.CpuinfoEntry{X86Entry: []*images.CpuinfoX86Entry{cpuinfo()}})
		writeImage(t, dir, "CGROUP", "cgroup.img", &images.CgroupEntry{Controllers: []*images.CgControllerEntry{
			{Cnames: []string{"cpu", "cpuacct"}, Dirs: []*images.CgroupDirEntry{{DirName: proto.String("app")}}},
			{Cnames: []string{"name=systemd"}}}})
	})
	ns := filepath.Join(testcorpus.Testdata(t), "zdtm-msgque-ns") // own ipc, net, uts, mnt, pid namespaces; /dev external as ZDTM_DEV
	tty := withImages(t, "sleep-plain", func(dir string) { addTTY(t, dir) })
	for _, tc := range []struct {
		name     string
		dir      string
		change   func(*fakeHost)
		opts     []string // nil: unknown
		check    string
		pid      uint32
		image    string
		entry    string
		msg      string
		blocking bool
	}{
		{"cpu: instruction missing, --cpu-cap", sleep, func(h *fakeHost) { delete(h.cpu.Flags, "avx2") }, []string{"--cpu-cap"},
			"cpu", 0, "cpuinfo.img", "x86_entry 0", "instructions avx2 are missing", true},
		{"cpu: instruction missing, default options", sleep, func(h *fakeHost) { delete(h.cpu.Flags, "avx2") }, []string{},
			"cpu", 0, "cpuinfo.img", "x86_entry 0", "compares them only with --cpu-cap", false},
		{"cpu: xsave size, --cpu-cap=fpu", sleep, func(h *fakeHost) { h.cpu.XSaveSize = 2432 }, []string{"--cpu-cap=fpu"},
			"cpu", 0, "cpuinfo.img", "x86_entry 0", "the xsave area is 2432 bytes here, 832 in the dump", true},
		{"cpu: xsave size ignored by --cpu-cap=^fpu", sleep, func(h *fakeHost) { h.cpu.XSaveSize = 2432 }, []string{"--cpu-cap=^fpu"},
			"", 0, "", "", "", false},
		{"cpu: --cpu-cap=^fpu,^ins leaves nothing to check", sleep, func(h *fakeHost) { delete(h.cpu.Flags, "avx2"); h.cpu.XSaveSize = 2432 },
			[]string{"--cpu-cap=^fpu,^ins"}, "cpu", 0, "cpuinfo.img", "x86_entry 0", "compares them only with --cpu-cap", false},
		{"cgroups: controller missing", sleep, func(h *fakeHost) { delete(h.cgroups.Hierarchy, "cpuacct") }, nil,
			"cgroups", 0, "cgroup.img", "controllers[0] cpu,cpuacct", "controller cpuacct, which this kernel does not have", true},
		{"cgroups: controller on cgroup v2", sleep, func(h *fakeHost) {
			h.cgroups.Hierarchy["cpu"], h.cgroups.Hierarchy["cpuacct"] = 0, 0
			h.cgroups.V2["cpu"] = true
		}, nil, "cgroups", 0, "cgroup.img", "controllers[0]", "which this host binds to cgroup v2", true},
		{"cgroups: other combination", sleep, func(h *fakeHost) { h.cgroups.Hierarchy["cpuacct"] = 7 }, nil,
			"cgroups", 0, "cgroup.img", "controllers[0]", "the dump mounts the cgroup v1 controllers cpu,cpuacct together, this host mounts cpu together", true},
		{"cgroups: missing dir with --manage-cgroups=none", sleep, nil, []string{"--manage-cgroups=none"},
			"cgroups", 0, "cgroup.img", "controllers[0]", "cgroup /sys/fs/cgroup/cpu,cpuacct/app does not exist", true},
		{"cgroups: missing dir, default soft mode", sleep, nil, []string{}, "", 0, "", "", "", false},
		{"cgroups: ignored", sleep, func(h *fakeHost) { delete(h.cgroups.Hierarchy, "cpuacct") }, []string{"--manage-cgroups=ignore"},
			"", 0, "", "", "", false},
		{"namespaces: no ipc namespaces", ns, func(h *fakeHost) { h.ns["ipc"] = false }, nil,
			"namespaces", 1, "ids-1.img", "ipc_ns_id", "task 1 has its own ipc namespace", true},
		{"namespaces: user namespaces off", withImages(t, "zdtm-msgque-ns", nil), nil, nil, "", 0, "", "", "", false}, // the dump has none of its own
		{"mounts: external mount without --external", ns, nil, []string{},
			"mounts", 0, "mountpoints-14.img", "mnt_id 98", "the restore needs --external mnt[ZDTM_DEV]:PATH", true},
		{"mounts: external path missing", ns, nil, []string{"--external", "mnt[ZDTM_DEV]:/srv/dev"},
			"mounts", 0, "mountpoints-14.img", "mnt_id 98", "/srv/dev does not exist", true},
		{"mounts: external path in place", ns, func(h *fakeHost) { h.files["/srv/dev"] = check.FileInfo{Mode: check.ModeDir | 0o755} },
			[]string{"--external=mnt[ZDTM_DEV]:/srv/dev"}, "", 0, "", "", "", false},
		{"tty: pty slave without master", tty, nil, []string{},
			"options", 0, "", "", "needs --shell-job: task 19635 has /dev/pts/3 open, whose master is outside the dump (tty-info.img id 0x7)", true},
		{"tty: --shell-job given", tty, nil, []string{"--shell-job"}, "", 0, "", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := open(t, tc.dir)
			h := prepared(t, d)
			if tc.name == "namespaces: user namespaces off" {
				h.ns["user"] = false
			}
			if tc.change != nil {
				tc.change(h)
			}
			opts := check.Options{CRIU: tc.opts}
			rep, err := check.Run(context.Background(), d, h, opts)
			if err != nil {
				t.Fatal(err)
			}
			var others []check.Problem
			for _, p := range rep.Problems {
				if p.Check != "files" && p.Check != "cwd" && p.Check != "options" || p.Check == tc.check {
					others = append(others, p)
				}
			}
			if tc.check == "" {
				for _, p := range others {
					if p.Check != "files" && p.Check != "cwd" {
						t.Errorf("a problem where CRIU restores: %+v", p)
					}
				}
				return
			}
			p := pick(t, rep, tc.check, tc.msg)
			if p.PID != tc.pid || p.Image != tc.image || !strings.Contains(p.Entry, tc.entry) || !strings.Contains(p.Message, tc.msg) || p.Blocking != tc.blocking {
				t.Errorf("got %+v; want pid %d image %q entry ~%q message ~%q blocking %v", p, tc.pid, tc.image, tc.entry, tc.msg, tc.blocking)
			}
			if p.CRIU == "" {
				t.Error("no CRIU consequence")
			}
		})
	}
}

// addTTY gives the sleep-plain dump's task an fd on /dev/pts/3, whose
// master (/dev/ptmx) is not in the dump: a tty-info entry, a files entry
// and an fdinfo entry.
func addTTY(t *testing.T, dir string) {
	t.Helper()
	files := messages(t, dir, "files.img")
	files = append(files, &images.FileEntry{Type: images.FdTypes_TTY.Enum(), Id: proto.Uint32(0x999),
		Tty: &images.TtyFileEntry{Id: proto.Uint32(0x999), TtyInfoId: proto.Uint32(7), Flags: proto.Uint32(2),
			Fown: &images.FownEntry{Uid: proto.Uint32(0), Euid: proto.Uint32(0), Signum: proto.Uint32(0), PidType: proto.Uint32(0), Pid: proto.Uint32(0)}}})
	writeImage(t, dir, "FILES", "files.img", files...)
	fds := messages(t, dir, "fdinfo-2.img")
	fds = append(fds, &images.FdinfoEntry{Id: proto.Uint32(0x999), Flags: proto.Uint32(0), Type: images.FdTypes_TTY.Enum(), Fd: proto.Uint32(9)})
	writeImage(t, dir, "FDINFO", "fdinfo-2.img", fds...)
	writeImage(t, dir, "TTY_INFO", "tty-info.img", &images.TtyInfoEntry{Id: proto.Uint32(7), Type: images.TtyType_PTY.Enum(),
		Locked: proto.Bool(false), Exclusive: proto.Bool(false), PacketMode: proto.Bool(false), Sid: proto.Uint32(0), Pgrp: proto.Uint32(0),
		Rdev: proto.Uint32(136<<8 | 3), Pty: &images.TtyPtyEntry{Index: proto.Uint32(3)}})
}

func messages(t *testing.T, dir, name string) []proto.Message {
	t.Helper()
	d := open(t, dir)
	msgs, err := d.File(name).Messages()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}
