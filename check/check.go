// Package check predicts whether a CRIU dump will restore on a host, and if
// not, why: before the restore, from the images and the host, instead of
// after it, from a restore.log.
//
// Each check is a small function over the dump (its images, through package
// query's views) and a Host, the interface to the machine the restore will
// run on: OSHost reads the real one under a root directory, and tests give
// a fake. A check reports Problems, each naming the task, the image and the
// entry it comes from, and what CRIU would do: fail (Blocking), or restore
// something that differs (a warning). The checks restate CRIU 4.2's own
// restore-time checks (criu/files-reg.c open_path and validate_file,
// sk-unix.c, tty.c, pstree restore, mount.c get_mp_root, cgroup.c
// prepare_cgroup_sfd, arch/x86/cpu.c cpu_validate_cpuinfo, the clone of
// namespaces) as far as they depend on the host: files, cwd, network,
// pids, mounts, cgroups, namespaces, cpu, tty and options.
//
// Run also works out the options the restore will need (--tcp-established,
// --shell-job, --ext-unix-sk, --file-locks, --network-lock), as a suggested
// command line; given the options the restore will use (Options.CRIU), a
// needed one that is missing is a blocking problem.
package check

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
	"github.com/critq/critq/proto/views"
	"github.com/critq/critq/query"
)

// Problem is one thing that stops a restore or makes it differ.
type Problem struct {
	// Check names the check: files, cwd, network, pids, mounts, cgroups,
	// namespaces, cpu, tty, options, images.
	Check string `json:"check"`
	// PID is the task it concerns, 0 for the dump as a whole.
	PID uint32 `json:"pid,omitempty"`
	// Image and Entry name where in the dump it comes from.
	Image string `json:"image"`
	Entry string `json:"entry,omitempty"`
	// Blocking says that CRIU would fail the restore; otherwise it would
	// restore something that differs from the dump.
	Blocking bool   `json:"blocking"`
	Message  string `json:"message"`
	// CRIU is what CRIU does about it, in its words where it has them.
	CRIU string `json:"criu"`
}

// Report is what Run found.
type Report struct {
	Dump     string    `json:"dump"`
	Problems []Problem `json:"problems"`
	// Options are the CRIU options the restore needs, in a suggested
	// command line: criu restore -D DUMP OPTIONS.
	Options []string `json:"options"`
	// Checked counts what was looked at, by check.
	Checked map[string]int `json:"checked"`
}

// Blocking reports whether any problem would stop the restore.
func (r *Report) Blocking() bool {
	return slices.ContainsFunc(r.Problems, func(p Problem) bool { return p.Blocking })
}

// FileInfo is what a Host says of a path.
type FileInfo struct {
	// Mode is the file's st_mode: type and permission bits as Linux has them.
	Mode uint32
	Size int64
}

// Unix file types of st_mode.
const (
	ModeType = 0o170000
	ModeSock = 0o140000
	ModeReg  = 0o100000
	ModeDir  = 0o040000
)

// Listener is a socket bound on the host.
type Listener struct {
	Proto string // "tcp" or "udp"
	Addr  string // "127.0.0.1", "::", ...
	Port  uint32
}

// Host is the machine the restore will run on.
type Host interface {
	// Stat describes the file at path as the restored tasks will see it
	// (under the restore's root), following symbolic links; a missing
	// file is an error for which errors.Is(err, fs.ErrNotExist).
	Stat(path string) (FileInfo, error)
	// BuildID returns the GNU build-id of the ELF file at path, nil when
	// it has none or is not ELF.
	BuildID(path string) ([]byte, error)
	// Listeners returns the TCP sockets listening and the UDP sockets bound.
	Listeners() ([]Listener, error)
	// PIDInUse reports whether a process or thread has the pid.
	PIDInUse(pid uint32) (bool, error)
	// CPU describes the host's CPU (its /proc/cpuinfo flags and xsave
	// figures).
	CPU() (*CPU, error)
	// Cgroups describes the host's cgroup controllers.
	Cgroups() (*Cgroups, error)
	// Namespaces returns the kinds of namespace tasks can create on the
	// host, by their /proc/PID/ns names ("user", "time", ...).
	Namespaces() (map[string]bool, error)
}

// Options configure Run.
type Options struct {
	// CRIU are the options the restore will be given ("--shell-job", ...).
	// Nil means unknown: the options the dump needs are suggested, not
	// required.
	CRIU []string
	// SkipFileRWXCheck is CRIU's --skip-file-rwx-check: compare only the
	// type of files, not their permission bits.
	SkipFileRWXCheck bool
}

// state is one run of the checks.
type state struct {
	ctx  context.Context
	d    *dump.Dump
	qd   *query.Dump
	host Host
	opts Options
	rep  *Report
	need map[string]string // option -> why
	// suggested are options listed in the suggested command line that
	// the checks that suggest them enforce themselves (they have values).
	suggested map[string]string
	// users are the tasks that use each file id: open, mapped, as their
	// executable, working or root directory; dirs are the file ids of
	// working and root directories, which checkDirs checks.
	users map[uint32][]uint32
	dirs  map[uint32]bool
	fs    map[uint32]*images.FsEntry // fs-PID.img of each task that has one
}

// fileUsers finds, for each file id, the tasks that use it, the ids of
// the tasks' working and root directories, and their fs entries by pid.
func fileUsers(d *dump.Dump, tasks []*views.Task) (map[uint32][]uint32, map[uint32]bool, map[uint32]*images.FsEntry, error) {
	const vmaFile = 1<<6 | 1<<7 // VMA_FILE_PRIVATE | VMA_FILE_SHARED
	users := map[uint32][]uint32{}
	dirs := map[uint32]bool{}
	fs := map[uint32]*images.FsEntry{}
	add := func(id, pid uint32) {
		if l := users[id]; len(l) == 0 || l[len(l)-1] != pid {
			users[id] = append(l, pid)
		}
	}
	for _, t := range tasks {
		pid := t.GetPid()
		for _, f := range t.GetFds() {
			add(f.GetId(), pid)
		}
		if mm := t.GetMm(); mm != nil && mm.ExeFileId != nil {
			add(mm.GetExeFileId(), pid)
		}
		for _, v := range t.GetVmas() {
			if v.GetStatus()&vmaFile != 0 {
				add(uint32(v.GetShmid()), pid)
			}
		}
		fe, err := model.First[*images.FsEntry](d.FileFor("FS", uint64(pid)))
		if err != nil {
			return nil, nil, nil, err
		}
		if fe != nil {
			fs[pid] = fe
			add(fe.GetCwdId(), pid)
			add(fe.GetRootId(), pid)
			dirs[fe.GetCwdId()], dirs[fe.GetRootId()] = true, true
		}
	}
	return users, dirs, fs, nil
}

func (s *state) add(p Problem) { s.rep.Problems = append(s.rep.Problems, p) }

func (s *state) needs(opt, why string) {
	if _, ok := s.need[opt]; !ok {
		s.need[opt] = why
	}
}

// suggest lists opt in the suggested command line without requiring it
// of the restore's options: the check that suggests it checks them.
func (s *state) suggest(opt, why string) {
	if _, ok := s.suggested[opt]; !ok {
		s.suggested[opt] = why
	}
}

// Run checks the dump d against host.
func Run(ctx context.Context, d *dump.Dump, host Host, opts Options) (*Report, error) {
	return RunQuery(ctx, query.NewDump(d), host, opts)
}

// RunQuery checks the dump d, opened for queries, against host: the views
// it reads are those d keeps for every query (the problems view of cli).
func RunQuery(ctx context.Context, qd *query.Dump, host Host, opts Options) (*Report, error) {
	d := qd.Images()
	s := &state{ctx: ctx, d: d, qd: qd, host: host, opts: opts,
		rep: &Report{Dump: d.Name, Problems: []Problem{}, Checked: map[string]int{}}, need: map[string]string{}, suggested: map[string]string{}}
	tasks, err := query.ViewList[*views.Task](s.ctx, s.qd, "tasks")
	if err != nil {
		return nil, err
	}
	files, err := query.ViewList[*views.File](s.ctx, s.qd, "files")
	if err != nil {
		return nil, err
	}
	sockets, err := query.ViewList[*views.Socket](s.ctx, s.qd, "sockets")
	if err != nil {
		return nil, err
	}
	s.users, s.dirs, s.fs, err = fileUsers(s.d, tasks)
	if err != nil {
		return nil, badImage(d, err)
	}
	for _, c := range []func() error{
		func() error { return s.checkFiles(files) },
		func() error { return s.checkDirs(tasks, files) },
		func() error { return s.checkNetwork(sockets) },
		func() error { return s.checkPIDs(tasks) },
		func() error { return s.checkSession(tasks) },
		func() error { return s.checkFileLocks() },
		func() error { return s.checkMounts() },
		func() error { return s.checkCgroups() },
		func() error { return s.checkNamespaces(tasks) },
		func() error { return s.checkCPU() },
		func() error { return s.checkTTY(files) },
	} {
		if err := c(); err != nil {
			return nil, badImage(d, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	s.damaged()
	s.options()
	sort.SliceStable(s.rep.Problems, func(i, j int) bool {
		a, b := s.rep.Problems[i], s.rep.Problems[j]
		if a.PID != b.PID {
			return a.PID < b.PID
		}
		return a.Check < b.Check
	})
	return s.rep, nil
}

func pidList(pids []uint32) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.FormatUint(uint64(p), 10)
	}
	return strings.Join(s, ",")
}

// checkFiles checks every regular file, directory, executable and mapped
// file that CRIU will open by its path, as open_path and validate_file do.
// Files that are deleted (ghost or linked remaps) are restored from the
// dump or from their link, which has an entry of its own.
//
// The path of a terminal (the reg entry a tty entry names by regf_id) is
// not such a file: CRIU makes a pty pair afresh, or inherits its own
// terminal (--shell-job), and opens no such path as recorded.
func (s *state) checkFiles(files []*views.File) error {
	ttyPaths := map[uint32]bool{}
	for _, f := range files {
		if tty := f.GetEntry().GetTty(); tty != nil {
			ttyPaths[tty.GetRegfId()] = true
		}
	}
	for _, f := range files {
		reg := f.GetEntry().GetReg()
		if reg == nil || f.GetDeleted() || ttyPaths[reg.GetId()] {
			continue
		}
		s.rep.Checked["files"]++
		entry := fmt.Sprintf("reg id %#x", reg.GetId())
		pids := s.users[f.GetId()]
		var pid uint32
		if len(pids) > 0 {
			pid = pids[0]
		}
		name := reg.GetName()
		if reg.GetExt() {
			s.needs("--external", "file "+name+" is external")
			continue
		}
		fi, err := s.host.Stat(name)
		if err != nil && s.dirs[f.GetId()] && isNotExist(err) {
			continue // a missing working or root directory: checkDirs names the task
		}
		if err != nil {
			msg := fmt.Sprintf("%s: %v", name, err)
			if isNotExist(err) {
				msg = name + " does not exist"
			}
			s.add(Problem{Check: "files", PID: pid, Image: "files.img", Entry: entry, Blocking: true,
				Message: msg + usedBy(pids), CRIU: "Can't open file " + name + " on restore"})
			continue
		}
		if reg.Size != nil && fi.Size != int64(reg.GetSize()) {
			s.add(Problem{Check: "files", PID: pid, Image: "files.img", Entry: entry, Blocking: true,
				Message: fmt.Sprintf("%s is %d bytes, the dump recorded %d%s", name, fi.Size, reg.GetSize(), usedBy(pids)),
				CRIU:    fmt.Sprintf("File %s has bad size %d (expect %d)", name, fi.Size, reg.GetSize())})
			continue
		}
		if reg.Mode != nil {
			cur, saved := fi.Mode, reg.GetMode()
			if s.opts.SkipFileRWXCheck {
				cur &^= 0o777
				saved &^= 0o777
			}
			if cur != saved {
				s.add(Problem{Check: "files", PID: pid, Image: "files.img", Entry: entry, Blocking: true,
					Message: fmt.Sprintf("%s has mode 0%o, the dump recorded 0%o%s", name, fi.Mode, reg.GetMode(), usedBy(pids)),
					CRIU:    fmt.Sprintf("File %s has bad mode 0%o (expect 0%o)", name, fi.Mode, reg.GetMode())})
				continue
			}
		}
		if want := reg.GetBuildId(); len(want) > 0 && reg.Size != nil && fi.Mode&ModeType == ModeReg {
			got, err := s.host.BuildID(name)
			if err == nil && got != nil && !sameBuildID(got, want) {
				s.add(Problem{Check: "files", PID: pid, Image: "files.img", Entry: entry, Blocking: true,
					Message: fmt.Sprintf("%s was rebuilt: its build-id differs from the dump's%s", name, usedBy(pids)),
					CRIU:    "File " + name + " has bad build-ID"})
			}
		}
	}
	return nil
}

func usedBy(pids []uint32) string {
	if len(pids) == 0 {
		return ""
	}
	return " (used by " + pidList(pids) + ")"
}

// sameBuildID compares a build-id with the words CRIU stored (the bytes
// padded to whole uint32s, little-endian as on the dumping host).
func sameBuildID(got []byte, words []uint32) bool {
	if (len(got)+3)/4 != len(words) {
		return false
	}
	for i, b := range got {
		if byte(words[i/4]>>(8*(i%4))) != b {
			return false
		}
	}
	return true
}

// checkDirs names the working and root directories of the tasks that are
// missing: the restore of those tasks fails at their fs image.
func (s *state) checkDirs(tasks []*views.Task, files []*views.File) error {
	byID := map[uint32]*views.File{}
	for _, f := range files {
		byID[f.GetId()] = f
	}
	for _, t := range tasks {
		fe := s.fs[t.GetPid()]
		if fe == nil {
			continue
		}
		fsImg := s.d.FileFor("FS", uint64(t.GetPid()))
		for _, d := range []struct {
			what string
			id   uint32
		}{{"working directory", fe.GetCwdId()}, {"root directory", fe.GetRootId()}} {
			s.rep.Checked["cwd"]++
			f := byID[d.id]
			if f == nil || f.GetEntry().GetReg() == nil || f.GetDeleted() {
				continue
			}
			name := f.GetEntry().GetReg().GetName()
			fi, err := s.host.Stat(name)
			switch {
			case err != nil && isNotExist(err):
				s.add(Problem{Check: "cwd", PID: t.GetPid(), Image: fsImg.Name, Entry: fmt.Sprintf("%s id %#x", strings.Fields(d.what)[0], d.id),
					Blocking: true, Message: fmt.Sprintf("the %s %s does not exist", d.what, name), CRIU: "Can't open file " + name + " on restore"})
			case err == nil && fi.Mode&ModeType != ModeDir:
				s.add(Problem{Check: "cwd", PID: t.GetPid(), Image: fsImg.Name, Entry: fmt.Sprintf("%s id %#x", strings.Fields(d.what)[0], d.id),
					Blocking: true, Message: fmt.Sprintf("the %s %s is not a directory", d.what, name), CRIU: "Can't change working directory"})
			}
		}
	}
	return nil
}

// damaged turns the images the views needed and the dump lacks (or has
// damaged) into problems: CRIU reads them all at restore, and what the
// checks could not see through them was not checked.
func (s *state) damaged() {
	for _, w := range s.qd.Warnings() {
		img, _, _ := strings.Cut(w, " ")
		if !strings.Contains(img, ".img") && img != "stats-dump" {
			img = ""
		}
		s.add(Problem{Check: "images", Image: img, Blocking: true, Message: w,
			CRIU: "restore fails: an image of the dump is missing or damaged"})
	}
}

// ownNetNS reports whether the dump restores its own network namespace.
func (s *state) ownNetNS() bool { return len(s.d.Kind("NETNS")) > 0 }

// checkNetwork checks that the TCP ports the dump listens on and the UDP
// ports it binds are free on the host (unless it brings its own network
// namespace), that its bound unix socket paths can be bound, and works out
// the options that connections need.
func (s *state) checkNetwork(sockets []*views.Socket) error {
	const (
		afUnix, afInet, afInet6 = 1, 2, 10
		sockStream, sockDgram   = 1, 2
		tcpEstablished, listen  = 1, 10
	)
	inos := map[uint32]bool{}
	for _, sk := range sockets {
		inos[sk.GetIno()] = true
	}
	var hostListeners []Listener
	loaded := false
	for _, sk := range sockets {
		pid := uint32(0)
		if len(sk.GetPids()) > 0 {
			pid = sk.GetPids()[0]
		}
		entry := fmt.Sprintf("socket ino %d", sk.GetIno())
		switch sk.GetFamily() {
		case afInet, afInet6:
			proto := ""
			switch {
			case sk.GetType() == sockStream && sk.GetState() == listen:
				proto = "tcp"
			case sk.GetType() == sockDgram && sk.GetLocalPort() != 0:
				proto = "udp"
			case sk.GetType() == sockStream && sk.GetState() == tcpEstablished:
				s.needs("--tcp-established", fmt.Sprintf("TCP connection %s:%d -> %s:%d", sk.GetLocalAddr(), sk.GetLocalPort(), sk.GetPeerAddr(), sk.GetPeerPort()))
			}
			if proto == "" || s.ownNetNS() {
				continue
			}
			s.rep.Checked["network"]++
			if !loaded {
				var err error
				if hostListeners, err = s.host.Listeners(); err != nil {
					return err
				}
				loaded = true
			}
			for _, l := range hostListeners {
				if l.Proto == proto && l.Port == sk.GetLocalPort() && addrOverlap(l.Addr, sk.GetLocalAddr()) {
					s.add(Problem{Check: "network", PID: pid, Image: "files.img", Entry: entry, Blocking: true,
						Message: fmt.Sprintf("%s port %s:%d is taken on this host (by a socket bound to %s)", strings.ToUpper(proto), sk.GetLocalAddr(), sk.GetLocalPort(), l.Addr),
						CRIU:    "Can't bind inet socket: Address already in use"})
					break
				}
			}
		case afUnix:
			if sk.GetPeerIno() != 0 && !inos[sk.GetPeerIno()] {
				s.needs("--ext-unix-sk", fmt.Sprintf("unix socket %d is connected to %d outside the dump", sk.GetIno(), sk.GetPeerIno()))
			}
			name := unixPath(sk)
			if name == "" || s.ownMntNS() {
				continue
			}
			s.rep.Checked["network"]++
			fi, err := s.host.Stat(name)
			if err == nil && fi.Mode&ModeType != ModeSock {
				s.add(Problem{Check: "network", PID: pid, Image: "files.img", Entry: entry, Blocking: true,
					Message: fmt.Sprintf("unix socket path %s is taken by a file that is not a socket", name),
					CRIU:    "Can't bind id ... addr " + name + ": Address already in use (CRIU removes stale sockets only)"})
			}
		}
	}
	return nil
}

// unixPath is the file system path a unix socket is bound to, "" for an
// unbound or abstract one. A relative name is relative to the directory
// the socket was bound in (unix_sk_entry.name_dir).
func unixPath(sk *views.Socket) string {
	usk := sk.GetFile().GetUsk()
	if usk == nil {
		return ""
	}
	p := model.UnixName(usk.GetName())
	if p == "" || strings.HasPrefix(p, "@") {
		return "" // unnamed or abstract
	}
	if !strings.HasPrefix(p, "/") {
		if usk.GetNameDir() == "" {
			return ""
		}
		p = path.Join(usk.GetNameDir(), p)
	}
	return p
}

func (s *state) ownMntNS() bool { return len(s.d.Kind("MNTS")) > 0 }

// addrOverlap reports whether two bound addresses conflict for one port:
// equal, or either a wildcard.
func addrOverlap(a, b string) bool {
	wild := func(x string) bool { return x == "" || x == "0.0.0.0" || x == "::" }
	return a == b || wild(a) || wild(b)
}

// checkPIDs checks, for a dump without its own pid namespace, that no pid
// or tid of the dump is in use on the host: CRIU restores every task with
// its pid.
func (s *state) checkPIDs(tasks []*views.Task) error {
	if len(tasks) == 0 || tasks[0].GetPid() == 1 {
		return nil // the tree has its own pid namespace
	}
	for _, t := range tasks {
		ids := t.GetThreads()
		if len(ids) == 0 {
			ids = []uint32{t.GetPid()}
		}
		for _, id := range ids {
			s.rep.Checked["pids"]++
			used, err := s.host.PIDInUse(id)
			if err != nil {
				return err
			}
			if used {
				what := "pid"
				if id != t.GetPid() {
					what = "thread id"
				}
				s.add(Problem{Check: "pids", PID: t.GetPid(), Image: "pstree.img", Entry: fmt.Sprintf("pid %d", t.GetPid()), Blocking: true,
					Message: fmt.Sprintf("%s %d is in use on this host", what, id),
					CRIU:    "Can't fork for " + strconv.FormatUint(uint64(id), 10) + ": File exists (clone3 set_tid)"})
			}
		}
	}
	return nil
}

// checkSession: a tree whose root task does not lead its session was
// dumped from a shell and restores only with --shell-job.
func (s *state) checkSession(tasks []*views.Task) error {
	if len(tasks) == 0 {
		return nil
	}
	s.rep.Checked["shell-job"]++
	root := tasks[0]
	if root.GetSid() != root.GetPid() {
		inTree := slices.ContainsFunc(tasks, func(t *views.Task) bool { return t.GetPid() == root.GetSid() })
		if !inTree {
			s.needs("--shell-job", fmt.Sprintf("the root task %d is not a session leader (session %d is outside the dump)", root.GetPid(), root.GetSid()))
		}
	}
	return nil
}

// checkFileLocks: held file locks restore only with --file-locks.
func (s *state) checkFileLocks() error {
	for _, f := range s.d.Kind("FILE_LOCKS") {
		msgs, err := f.Messages()
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			s.needs("--file-locks", fmt.Sprintf("%d file locks in %s", len(msgs), f.Name))
		}
	}
	return nil
}

// options turns the needed options into the suggested command line, and,
// when the options of the restore are known, missing ones into problems.
func (s *state) options() {
	if _, ok := s.need["--tcp-established"]; ok {
		ie, err := model.First[*images.InventoryEntry](s.d.File("inventory.img"))
		if err == nil && ie != nil && ie.NetworkLockMethod != nil {
			method := map[uint32]string{0: "iptables", 1: "nftables", 2: "skip"}[ie.GetNetworkLockMethod()]
			if method != "" && method != "iptables" {
				s.need["--network-lock "+method] = "the dump locked the network with " + method
			}
		}
	}
	s.rep.Options = []string{}
	for opt := range s.need {
		s.rep.Options = append(s.rep.Options, opt)
	}
	for opt := range s.suggested {
		if _, ok := s.need[opt]; !ok {
			s.rep.Options = append(s.rep.Options, opt)
		}
	}
	sort.Strings(s.rep.Options)
	if s.opts.CRIU == nil {
		return
	}
	given := strings.Join(s.opts.CRIU, " ")
	for _, opt := range s.rep.Options {
		if strings.Contains(" "+given+" ", " "+opt+" ") {
			continue
		}
		if strings.HasPrefix(opt, "--network-lock") {
			// The method must work on the restoring host: a suggestion.
			s.add(Problem{Check: "options", Message: fmt.Sprintf("the restore should use %s: %s", opt, s.need[opt]),
				CRIU: "the network is unlocked with the restore's method"})
			continue
		}
		s.add(Problem{Check: "options", Blocking: true,
			Message: fmt.Sprintf("the restore needs %s: %s", opt, s.need[opt]),
			CRIU:    "restore fails without " + opt})
	}
}

// badImage marks an error of reading an image of d (damaged, or of
// another kind than its name says) as query's views do, a *query.DumpError
// (exit 4 in cli); the host's errors stay as they are.
func badImage(d *dump.Dump, err error) error {
	var ce *codec.Error
	var ke *dump.KindError
	if errors.As(err, &ce) || errors.As(err, &ke) {
		return &query.DumpError{Dump: d.Name, Err: err}
	}
	return err
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
