package cli

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/internal/testcpu"
)

// The mutation campaign of issue 9: damaged, partial and hostile dumps
// made from every corpus dump, each run through every command that reads
// a dump. What must hold for every run:
//
//   - no panic, and an exit code in 0..5;
//   - under the race detector nothing about time; otherwise every run
//     under 2 s of CPU (the process's, while the run is the only work;
//     wall time on a shared machine measures the neighbours), and no run
//     allocates more than 256 MB in all (an upper
//     bound of its peak heap);
//   - an image that a command needs and that was deleted is never
//     answered silently: the command fails, or it names the missing
//     image on stderr.
//
// CRITQ_MUTANTS sets the number of mutants (default 5,000; 300 under the
// race detector, where CI runs the full campaign in a step of its own);
// CRITQ_MUTANT_SEED the seed (default: a new one, logged, so that a
// failure can be replayed). Each run's 2 s limit is CPU time, or wall
// time with CRITQ_MUTANT_CLOCK=wall.

// mutation is one way to damage an image.
type mutation struct {
	name string
	// apply returns the damaged bytes of the image b, or nil when the
	// mutation does not apply to it; other holds the images of the dump
	// by name, for swaps.
	apply func(r *rand.Rand, b []byte, other map[string][]byte) []byte
}

// frames returns the offsets of the entries of a framed image (after one
// or two magics) as pairs [start, end), as far as the sizes make sense.
func frames(b []byte) [][2]int {
	off := 8
	if len(b) >= 8 {
		// A head magic (common or service) is followed by the kind's own.
		switch binary.LittleEndian.Uint32(b) {
		case 0x54564319, 0x55105940:
		default:
			off = 4
		}
	}
	var out [][2]int
	for off+4 <= len(b) {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		end := off + 4 + n
		if n < 0 || end > len(b) {
			break
		}
		out = append(out, [2]int{off, end})
		off = end
	}
	return out
}

var mutations = []mutation{
	{"bitflip", func(r *rand.Rand, b []byte, _ map[string][]byte) []byte {
		if len(b) == 0 {
			return nil
		}
		c := bytes.Clone(b)
		for range 1 + r.IntN(4) {
			i := r.IntN(len(c))
			c[i] ^= 1 << r.IntN(8)
		}
		return c
	}},
	{"bytes-ff", func(r *rand.Rand, b []byte, _ map[string][]byte) []byte {
		if len(b) == 0 {
			return nil
		}
		c := bytes.Clone(b)
		i := r.IntN(len(c))
		for j := i; j < len(c) && j < i+1+r.IntN(8); j++ {
			c[j] = 0xff
		}
		return c
	}},
	{"truncate", func(r *rand.Rand, b []byte, _ map[string][]byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return bytes.Clone(b[:r.IntN(len(b))])
	}},
	{"size-large", func(r *rand.Rand, b []byte, _ map[string][]byte) []byte {
		fr := frames(b)
		if len(fr) == 0 {
			return nil
		}
		c := bytes.Clone(b)
		f := fr[r.IntN(len(fr))]
		sizes := []uint32{0xffffffff, 0x7fffffff, 0x10000000, uint32(len(b)), uint32(f[1]-f[0]) + 1}
		binary.LittleEndian.PutUint32(c[f[0]:], sizes[r.IntN(len(sizes))])
		return c
	}},
	{"drop-entry", func(r *rand.Rand, b []byte, _ map[string][]byte) []byte {
		fr := frames(b)
		if len(fr) == 0 {
			return nil
		}
		f := fr[r.IntN(len(fr))]
		return append(bytes.Clone(b[:f[0]]), b[f[1]:]...)
	}},
	{"duplicate-entry", func(r *rand.Rand, b []byte, _ map[string][]byte) []byte {
		fr := frames(b)
		if len(fr) == 0 {
			return nil
		}
		f := fr[r.IntN(len(fr))]
		c := append(bytes.Clone(b[:f[1]]), b[f[0]:f[1]]...)
		return append(c, b[f[1]:]...)
	}},
	{"swap-kind", func(r *rand.Rand, b []byte, other map[string][]byte) []byte {
		names := make([]string, 0, len(other))
		for n, ob := range other {
			if len(ob) >= 8 && !bytes.Equal(ob[:8], b[:min(8, len(b))]) {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return nil
		}
		sort.Strings(names)
		return other[names[r.IntN(len(names))]]
	}},
	{"delete", nil},
}

// needs says which dump-level commands must not answer silently when the
// image name is deleted: the images every task's basic facts come from.
// tasks are the pids of the dump's tasks (a thread's core is not among
// them), pid the task that maps and mem-read show.
func needs(image string, tasks map[string]bool, pid string) []string {
	id := ""
	if i := strings.LastIndexByte(image, '-'); i >= 0 {
		id = strings.TrimSuffix(image[i+1:], ".img")
	}
	perTask := func(cmds ...string) []string {
		if id == pid {
			return cmds
		}
		var out []string
		for _, c := range cmds {
			if c != "maps" && c != "mem-read" {
				out = append(out, c)
			}
		}
		return out
	}
	switch {
	case strings.HasPrefix(image, "core-") && !tasks[id]:
		return nil // a thread's core: the views of tasks do not read it
	case image == "pstree.img":
		return []string{"query", "ps", "maps", "fds", "inspect", "mem", "x-ps"}
	case strings.HasPrefix(image, "core-"):
		return []string{"query", "ps", "inspect", "x-ps"}
	case strings.HasPrefix(image, "mm-"):
		return perTask("query", "ps", "maps", "mem")
	case strings.HasPrefix(image, "pagemap-") && !strings.HasPrefix(image, "pagemap-shmem"):
		return perTask("query", "ps", "mem")
	case image == "files.img":
		return []string{"query", "fds"}
	case strings.HasPrefix(image, "fdinfo-"):
		return []string{"query", "fds"}
	}
	return nil
}

// allViews reads every view of a dump, and the command lines from memory.
const allViews = `[tasks.map(t, [t.pid, t.comm, t.state, t.cmdline]), vmas.size(), fds.map(f, [f.fd, f.path]), ` +
	`files.size(), sockets.size(), mounts.size(), pagemaps.size(), images.size()]`

type mutantRun struct {
	name string // the command's short name, for needs
	args []string
}

func mutantRuns(dir, img string, pid string) []mutantRun {
	runs := []mutantRun{
		{"decode", []string{"decode", "-i", img}},
		{"decode-pretty", []string{"decode", "--pretty", "-i", img}},
		{"info", []string{"info", img}},
		{"query", []string{"--format", "json", allViews, dir}},
		{"ps", []string{"ps", dir}},
		{"fds", []string{"fds", dir}},
		{"sockets", []string{"sockets", dir}},
		{"inspect", []string{"inspect", dir}},
		{"mem", []string{"mem", dir}},
		{"mem-search", []string{"mem", "search", dir, "CRITQ-MARKER"}},
		{"x-ps", []string{"x", dir, "ps"}},
		{"x-fds", []string{"x", dir, "fds"}},
		{"x-mems", []string{"x", dir, "mems"}},
		{"x-rss", []string{"x", dir, "rss"}},
		{"check", []string{"check", "--format", "json", "--root", dir, "--criu-options=--cpu-cap --manage-cgroups=none", dir}},
	}
	if pid != "" {
		runs = append(runs,
			mutantRun{"maps", []string{"maps", dir, pid}},
			mutantRun{"mem-read", []string{"mem", dir, pid}},
		)
	}
	return runs
}

// mirror makes dir a copy of the dump src (a parent link pointing where
// the original's does), and returns the names of its image files with
// their bytes.
func mirror(t *testing.T, src, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	imgs := map[string][]byte{}
	for _, e := range ents {
		p := filepath.Join(src, e.Name())
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "parent" {
			target, err := filepath.EvalSymlinks(abs)
			if err != nil {
				t.Fatal(err)
			}
			abs = target
		}
		if !e.Type().IsRegular() {
			if e.Name() == "parent" {
				if err := os.Symlink(abs, filepath.Join(dir, e.Name())); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		if e.Name() == "MANIFEST.txt" || strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
		imgs[e.Name()] = b
	}
	return imgs
}

func TestMutationCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	total := 5000
	if raceEnabled {
		total = 300
	}
	if s := os.Getenv("CRITQ_MUTANTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		total = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CRITQ_MUTANT_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = n
	}
	t.Logf("%d mutants, CRITQ_MUTANT_SEED=%d", total, seed)
	r := rand.New(rand.NewPCG(seed, 0x6d757461))

	dumps := testcorpus.Dumps(t)
	type dumpState struct {
		src, dir string
		imgs     map[string][]byte
		names    []string
		pid      string
		chained  bool // a dump with a parent, which an archive cannot hold
		tasks    map[string]bool
	}
	states := make([]*dumpState, 0, len(dumps))
	for _, src := range dumps {
		dir := t.TempDir()
		imgs := mirror(t, src, dir)
		if len(imgs) == 0 {
			continue
		}
		names := make([]string, 0, len(imgs))
		for n := range imgs {
			names = append(names, n)
		}
		sort.Strings(names)
		out, _, code := runCLI(t, nil, "--format", "raw", `tasks.map(t, string(t.pid)).join(" ")`, src)
		pid, tasks := "", map[string]bool{}
		if code == exitOK {
			for _, p := range strings.Fields(out) {
				tasks[p] = true
			}
			if f := strings.Fields(out); len(f) > 0 {
				pid = f[0]
			}
		}
		_, err := os.Lstat(filepath.Join(src, "parent"))
		states = append(states, &dumpState{src: src, dir: dir, imgs: imgs, names: names, pid: pid, chained: err == nil, tasks: tasks})
	}

	var (
		runs, exits   = 0, map[int]int{}
		byMutation    = map[string]int{}
		slowest       time.Duration
		slowestRun    string
		mostAlloc     uint64
		mostAllocRun  string
		fives         []string // a few runs that ended in exit 5, for the log
		failures      int
		ms0, ms1      runtime.MemStats
		timeLimit     = 2 * time.Second
		allocLimit    = uint64(256 << 20)
		checkResource = !raceEnabled
		// The time limit applies to the CPU time of a run (all of the
		// process's threads): on a machine shared with other work, wall
		// time mostly measures the neighbours. CRITQ_MUTANT_CLOCK=wall
		// applies it to wall time.
		cpuClock = os.Getenv("CRITQ_MUTANT_CLOCK") != "wall" && testcpu.Used() > 0
	)
	for i := 0; i < total && failures < 20; i++ {
		st := states[r.IntN(len(states))]
		name := st.names[r.IntN(len(st.names))]
		orig := st.imgs[name]
		m := mutations[r.IntN(len(mutations))]
		path := filepath.Join(st.dir, name)
		var bad []byte
		if m.apply != nil {
			if bad = m.apply(r, orig, st.imgs); bad == nil {
				m = mutations[len(mutations)-1] // nothing to mutate: delete it
			}
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if m.apply != nil {
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		byMutation[m.name]++
		must := map[string]bool{}
		if m.apply == nil {
			for _, n := range needs(name, st.tasks, st.pid) {
				must[n] = true
			}
		}
		id := fmt.Sprintf("%s/%s %s", filepath.Base(st.src), name, m.name)
		target := st.dir
		if r.IntN(8) == 0 && !st.chained {
			// One mutant in eight is read from a checkpoint archive.
			target = st.dir + ".tar.gz"
			writeTarGz(t, st.dir, target)
			id += " (tar.gz)"
		}
		for _, run := range mutantRuns(target, path, st.pid) {
			runtime.ReadMemStats(&ms0)
			start, cpu0 := time.Now(), testcpu.Used()
			stdout, stderr, code := runCLIRecover(t, run.args)
			took := time.Since(start)
			if cpuClock {
				took = testcpu.Used() - cpu0
			}
			runtime.ReadMemStats(&ms1)
			runs++
			exits[code]++
			alloc := ms1.TotalAlloc - ms0.TotalAlloc
			what := id + ": critq " + strings.Join(run.args, " ")
			if took > slowest {
				slowest, slowestRun = took, what
			}
			if alloc > mostAlloc {
				mostAlloc, mostAllocRun = alloc, what
			}
			if code == exitError && len(fives) < 5 {
				first, _, _ := strings.Cut(stderr, "\n")
				fives = append(fives, what+": "+first)
			}
			fail := func(format string, args ...any) {
				failures++
				t.Errorf("%s (seed %d, mutant %d): %s\nstderr: %.600s", what, seed, i, fmt.Sprintf(format, args...), stderr)
			}
			switch {
			case code < 0 || code > 5:
				fail("exit %d", code)
			case strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic"):
				fail("panic")
			case checkResource && took > timeLimit:
				fail("took %v", took)
			case checkResource && alloc > allocLimit:
				fail("allocated %d MB", alloc>>20)
			case must[run.name] && code == exitOK && !strings.Contains(stderr, name):
				fail("exit 0 without naming the deleted %s; stdout %.200q", name, stdout)
			}
		}
		// Put the original back.
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d runs; exit codes %v; mutations %v", runs, exits, byMutation)
	t.Logf("slowest run %v of CPU: %s", slowest, slowestRun)
	t.Logf("most allocation %d MB: %s", mostAlloc>>20, mostAllocRun)
	for _, f := range fives {
		t.Logf("exit 5: %s", f)
	}
}

// runCLIRecover runs critq in process; a panic on the calling goroutine
// becomes exit -1 with the panic on stderr (a panic on another goroutine
// still ends the test binary, which fails the campaign as loudly).
func runCLIRecover(t *testing.T, args []string) (stdout, stderr string, code int) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			stderr += fmt.Sprintf("panic: %v", p)
			code = -1
		}
	}()
	return runCLI(t, nil, args...)
}
