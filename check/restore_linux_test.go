package check_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/check"
	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/proto/images"
)

// restoreScenario is one real restore: a process tree started on this
// machine, dumped by CRIU, the host changed in one way (or not), critq
// check's prediction, then CRIU's restore.
type restoreScenario struct {
	name string
	// setup prepares the working directory before the tree starts.
	setup func(t *testing.T, work string)
	// cmd starts the tree (in work, as a new session); pid picks the
	// task to dump (default: the started process).
	cmd  string
	pid  func(t *testing.T, work string, started int) int
	dump []string // criu dump options
	// leave keeps the dumped tree running (--leave-running).
	leave bool
	// change changes the host (or, for the CPU, the image as another
	// host would have written it) between the dump and the restore.
	change  func(t *testing.T, work, dir string)
	restore []string // criu restore options; also critq check's
	// terminal runs the restore on a terminal (script(1)), which a
	// --shell-job restore of a pty session needs.
	terminal bool
}

// TestRestoreOracle is critq check's oracle: real restores with CRIU 4.2
// under controlled changes of the host. For every scenario, check (in
// process, against this host) must predict a blocking problem exactly
// when `criu restore` then fails. It runs only as root with CRITQ_CRIU
// naming a CRIU 4.2 binary (scripts/build-criu.sh); it needs python3,
// gcc and script(1). CRITQ_RESTORE_TABLE=FILE writes the table of
// scenario, prediction and outcome.
func TestRestoreOracle(t *testing.T) {
	criu := os.Getenv("CRITQ_CRIU")
	if criu == "" {
		t.Skip("set CRITQ_CRIU to a CRIU 4.2 binary (scripts/build-criu.sh) and run as root")
	}
	if os.Geteuid() != 0 {
		t.Skip("restoring needs root")
	}
	for _, tool := range []string{"python3", "gcc", "script"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s: %v", tool, err)
		}
	}
	if out, err := exec.Command(criu, "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), "Version: 4.2") {
		t.Fatalf("%s is not CRIU 4.2: %s %v", criu, out, err)
	}
	py := func(src string) string { return "exec python3 -c '" + src + "'" }
	listen := func(port int) string {
		return py(fmt.Sprintf(`import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", %d)); s.listen(); time.sleep(1000)`, port))
	}
	tcp := func(port int) string {
		return py(fmt.Sprintf(`import socket,time
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("127.0.0.1", %d)); l.listen()
c=socket.create_connection(("127.0.0.1", %d)); a,_=l.accept(); c.send(b"hello"); time.sleep(1000)`, port, port))
	}
	data := func(t *testing.T, work string) { write(t, filepath.Join(work, "data.txt"), "data\n") }
	child := func(t *testing.T, work string, _ int) int { return readPID(t, filepath.Join(work, "child")) }
	// A shell job: the session leader sh stays (as sleep) after its
	// child, the dumped task, is gone, as an interactive shell would.
	const shellJob = "sleep 1000 & echo $! > child; wait; exec sleep 1000"
	scriptChild := func(t *testing.T, _ string, started int) int {
		// script(1) runs the program on a new pty: its one child.
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", started, started))
		if err != nil {
			t.Fatal(err)
		}
		return atoi(t, strings.Fields(string(b))[0])
	}
	const cg = "/sys/fs/cgroup/cpu/critq-oracle"
	inCgroup := func(t *testing.T, work string, started int) int {
		if err := os.WriteFile(cg+"/cgroup.procs", []byte(strconv.Itoa(started)), 0); err != nil {
			t.Fatal(err)
		}
		return started
	}
	cgSetup := func(t *testing.T, work string) {
		if err := os.MkdirAll(cg, 0o755); err != nil {
			t.Skipf("no cgroup v1 cpu hierarchy here: %v", err)
		}
		t.Cleanup(func() { _ = os.Remove(cg) }) // after the tree is killed
	}
	rmCgroup := func(t *testing.T, _, _ string) {
		if err := os.Remove(cg); err != nil {
			t.Fatal(err)
		}
	}
	otherXSave := func(t *testing.T, _, dir string) {
		// The image as a host with a larger xsave area would have written it.
		d, err := dump.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := d.File("cpuinfo.img").Messages()
		if err != nil {
			t.Fatal(err)
		}
		ci := msgs[0].(*images.CpuinfoEntry)
		x := ci.GetX86Entry()[0]
		x.XsaveSize = proto.Uint32(x.GetXsaveSize() + 64)
		writeImage(t, dir, "CPUINFO", "cpuinfo.img", ci)
	}
	scenarios := []restoreScenario{
		{name: "ok-plain", cmd: "exec sleep 1000"},
		{name: "file-renamed", setup: data, cmd: "exec 3<data.txt; exec sleep 1000", change: func(t *testing.T, work, _ string) {
			must(t, os.Rename(filepath.Join(work, "data.txt"), filepath.Join(work, "data.old")))
		}},
		{name: "file-grown", setup: data, cmd: "exec 3<data.txt; exec sleep 1000", change: func(t *testing.T, work, _ string) {
			write(t, filepath.Join(work, "data.txt"), "data\nmore\n")
		}},
		{name: "file-chmod", setup: data, cmd: "exec 3<data.txt; exec sleep 1000", change: func(t *testing.T, work, _ string) {
			must(t, os.Chmod(filepath.Join(work, "data.txt"), 0o600))
		}},
		{name: "cwd-removed", setup: func(t *testing.T, work string) { must(t, os.Mkdir(filepath.Join(work, "sub"), 0o755)) },
			cmd: "cd sub && exec sleep 1000", change: func(t *testing.T, work, _ string) { must(t, os.Remove(filepath.Join(work, "sub"))) }},
		{name: "port-taken", cmd: listen(47601), change: func(t *testing.T, work, _ string) {
			squat := exec.Command("python3", "-c", `import socket,time
s=socket.socket(); s.bind(("127.0.0.1", 47601)); s.listen(); time.sleep(60)`)
			must(t, squat.Start())
			t.Cleanup(func() { _ = squat.Process.Kill(); _ = squat.Wait() })
			waitListening(t, 47601)
		}},
		{name: "port-free", cmd: listen(47602)},
		{name: "pid-in-use", cmd: "exec sleep 1000", leave: true},
		{name: "shell-job (restore without --shell-job)", cmd: shellJob, pid: child, dump: []string{"--shell-job"}},
		{name: "shell-job-opt", cmd: shellJob, pid: child, dump: []string{"--shell-job"}, restore: []string{"--shell-job"}},
		{name: "tcp-no-opt (without --tcp-established)", cmd: tcp(47603), dump: []string{"--tcp-established", "--network-lock", "skip"},
			restore: []string{"--network-lock", "skip"}},
		{name: "tcp-opt", cmd: tcp(47604), dump: []string{"--tcp-established", "--network-lock", "skip"},
			restore: []string{"--tcp-established", "--network-lock", "skip"}},
		{name: "unix-path-taken", cmd: py(`import socket,time
s=socket.socket(socket.AF_UNIX); s.bind("srv.sock"); s.listen(); time.sleep(1000)`), change: func(t *testing.T, work, _ string) {
			must(t, os.Remove(filepath.Join(work, "srv.sock")))
			write(t, filepath.Join(work, "srv.sock"), "x\n")
		}},
		{name: "exe-rebuilt", setup: func(t *testing.T, work string) {
			gcc(t, work, "#include <unistd.h>\nint main(void){for(;;)sleep(1000);}\n")
		}, cmd: "exec ./prog", change: func(t *testing.T, work, _ string) {
			gcc(t, work, "#include <unistd.h>\nint main(void){for(;;)pause();return 1;}\n")
		}},
		{name: "tty (pty of script(1), restore without --shell-job)", cmd: "exec script -qfc 'exec sleep 1000' /dev/null",
			pid: scriptChild, dump: []string{"--shell-job"}},
		{name: "tty-opt (--shell-job, restored on a terminal)", cmd: "exec script -qfc 'exec sleep 1000' /dev/null",
			pid: scriptChild, dump: []string{"--shell-job"}, restore: []string{"--shell-job"}, terminal: true},
		{name: "cgroup-none (cgroup removed, --manage-cgroups=none)", setup: cgSetup, cmd: "exec sleep 1000", pid: inCgroup,
			change: rmCgroup, restore: []string{"--manage-cgroups=none"}},
		{name: "cgroup-soft (cgroup removed, default mode)", setup: cgSetup, cmd: "exec sleep 1000", pid: inCgroup, change: rmCgroup},
		{name: "cpu-cap (another xsave size, --cpu-cap)", cmd: "exec sleep 1000", dump: []string{"--cpu-cap"}, change: otherXSave,
			restore: []string{"--cpu-cap"}},
		{name: "cpu-default (another xsave size, no --cpu-cap)", cmd: "exec sleep 1000", dump: []string{"--cpu-cap"}, change: otherXSave},
	}
	base := t.TempDir()
	var table []string
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			work := filepath.Join(base, strconv.Itoa(i), "work")
			dir := filepath.Join(base, strconv.Itoa(i), "dump")
			must(t, os.MkdirAll(work, 0o755))
			must(t, os.MkdirAll(dir, 0o755))
			if sc.setup != nil {
				sc.setup(t, work)
			}
			started := startTree(t, work, sc.cmd)
			pid := started
			if sc.pid != nil {
				pid = sc.pid(t, work, started)
			}
			args := append([]string{"dump", "-t", strconv.Itoa(pid), "-D", dir, "-o", "dump.log", "-v4"}, sc.dump...)
			if sc.leave {
				args = append(args, "--leave-running")
				t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			}
			if out, err := runBounded(exec.Command(criu, args...)); err != nil {
				t.Fatalf("criu dump: %v %s; %s", err, out, firstError(filepath.Join(dir, "dump.log")))
			}
			if !sc.leave {
				waitGone(t, pid, false)
			}
			if sc.change != nil {
				sc.change(t, work, dir)
			}
			// The prediction, in process, against this host.
			d, err := dump.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := check.Run(context.Background(), d, check.OSHost{}, check.Options{CRIU: append([]string{}, sc.restore...)})
			d.Close()
			if err != nil {
				t.Fatal(err)
			}
			predicted, why := "restores", ""
			for _, p := range rep.Problems {
				if p.Blocking {
					predicted, why = "FAIL", p.Check+": "+p.Message
					break
				}
			}
			// The outcome.
			rargs := append([]string{"restore", "-D", dir, "-d", "-o", "restore.log", "-v4"}, sc.restore...)
			cmd := exec.Command(criu, rargs...)
			if sc.terminal {
				cmd = exec.Command("script", "-qec", shellQuote(append([]string{criu}, rargs...)), "/dev/null")
			}
			out, rerr := runBounded(cmd)
			outcome, criuErr := "restores", ""
			if rerr != nil {
				outcome, criuErr = "FAIL", firstError(filepath.Join(dir, "restore.log"))
				if criuErr == "" {
					criuErr = strings.TrimSpace(string(out))
				}
			} else {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				waitGone(t, pid, true)
			}
			table = append(table, fmt.Sprintf("| %s | %s%s | %s%s |", sc.name, predicted, prefixed(why), outcome, prefixed(criuErr)))
			if predicted != outcome {
				t.Errorf("critq check predicted %q (%s), CRIU %q (%s)", predicted, why, outcome, criuErr)
			}
		})
	}
	t.Logf("\n| scenario | critq check | CRIU 4.2 restore |\n|---|---|---|\n%s", strings.Join(table, "\n"))
	if f := os.Getenv("CRITQ_RESTORE_TABLE"); f != "" {
		write(t, f, strings.Join(table, "\n")+"\n")
	}
}

// runBounded runs cmd in a process group of its own, killing the group
// after a minute: a restore that hangs is an outcome, not a stuck test.
func runBounded(cmd *exec.Cmd) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	out, err := c.CombinedOutput()
	if ctx.Err() != nil {
		return out, fmt.Errorf("hung for a minute (killed)")
	}
	return out, err
}

func prefixed(s string) string {
	if s == "" {
		return ""
	}
	return ": " + strings.ReplaceAll(s, "|", "/")
}

// startTree runs sh -c cmd in work as a new session, output discarded,
// and returns its pid; the tree is killed when the test ends.
func startTree(t *testing.T, work, cmd string) int {
	t.Helper()
	c := exec.Command("sh", "-c", cmd)
	c.Dir = work
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	must(t, c.Start())
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	})
	time.Sleep(1500 * time.Millisecond) // the program sets itself up
	return c.Process.Pid
}

// waitGone waits until pid is gone: a dumped tree is killed by CRIU and
// reaped by its parent. A restored tree's parent is init, which may not
// reap here: for it (zombie) a zombie counts as gone.
func waitGone(t *testing.T, pid int, zombie bool) {
	t.Helper()
	for range 100 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || zombie && strings.Contains(string(b), ") Z ") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pid %d still exists", pid)
}

func waitListening(t *testing.T, port int) {
	t.Helper()
	want := fmt.Sprintf(":%04X ", port)
	for range 50 {
		b, _ := os.ReadFile("/proc/net/tcp")
		if strings.Contains(string(b), want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %d", port)
}

var errorLine = regexp.MustCompile(`Error \([^)]*\): (.*)`)

// firstError returns CRIU's first error of a log, less the rlimit notice
// of an unprivileged container.
func firstError(log string) string {
	f, err := os.Open(log)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := errorLine.FindStringSubmatch(sc.Text())
		if m != nil && !strings.Contains(m[1], "rlimit: ") && !strings.Contains(m[1], "Restoring FAILED") {
			return strings.TrimSpace(m[1])
		}
	}
	return ""
}

func gcc(t *testing.T, work, src string) {
	t.Helper()
	write(t, filepath.Join(work, "prog.c"), src)
	if out, err := exec.Command("gcc", "-O1", "-o", filepath.Join(work, "prog"), filepath.Join(work, "prog.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v %s", err, out)
	}
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func readPID(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return atoi(t, strings.TrimSpace(string(b)))
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func write(t *testing.T, file, s string) {
	t.Helper()
	must(t, os.WriteFile(file, []byte(s), 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCPUInfoOracle: `criu cpuinfo check` of the corpus's cpuinfo image
// (another machine's CPU) under CRIU's --cpu-cap modes, against critq
// check's prediction for a restore given the same option. Root and
// CRITQ_CRIU as TestRestoreOracle; the corpus must be there.
func TestCPUInfoOracle(t *testing.T) {
	criu := os.Getenv("CRITQ_CRIU")
	if criu == "" || os.Geteuid() != 0 {
		t.Skip("set CRITQ_CRIU to a CRIU 4.2 binary and run as root")
	}
	src := filepath.Join(testcorpus.Root(t), "cpuinfo")
	if testcorpus.Root(t) == "" {
		t.Skip("no corpus")
	}
	// (Not none or ^fpu,^ins: with no capability left, cpuinfo check
	// checks all, where a restore checks nothing.)
	// This machine's own cpuinfo image passes.
	own := t.TempDir()
	if out, err := runBounded(exec.Command(criu, "cpuinfo", "dump", "-D", own, "-o", "dump.log")); err != nil {
		t.Fatalf("criu cpuinfo dump: %v %s", err, out)
	}
	for i, opt := range []string{"--cpu-cap", "--cpu-cap=fpu", "--cpu-cap=^fpu", "--cpu-cap=ins,^fpu", "--cpu-cap=cpu", "--cpu-cap"} {
		dir := t.TempDir()
		if i < 5 {
			testcorpus.CopyFiles(t, src, dir)
		} else {
			testcorpus.CopyFiles(t, own, dir)
			opt += " (this machine's image)"
		}
		opt, _, _ = strings.Cut(opt, " ")
		_, err := runBounded(exec.Command(criu, "cpuinfo", "check", "-D", dir, "-o", "check.log", "-v4", opt))
		outcome := "passes"
		if err != nil {
			outcome = "FAIL: " + firstError(filepath.Join(dir, "check.log"))
		}
		d, err := dump.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := check.Run(context.Background(), d, check.OSHost{}, check.Options{CRIU: []string{opt}})
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		predicted := "passes"
		if ps := find(rep, "cpu"); len(ps) > 0 && ps[0].Blocking {
			predicted = "FAIL: " + ps[0].Message
		}
		t.Logf("| cpuinfo check %s | %s | %s |", opt, predicted, outcome)
		if (predicted == "passes") != (outcome == "passes") {
			t.Errorf("%s: critq check %q, criu cpuinfo check %q", opt, predicted, outcome)
		}
	}
}
