package diff

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/query"
)

func openDump(t testing.TB, dir string) *query.Dump {
	t.Helper()
	d, err := query.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Images().Close() })
	return d
}

func diffDirs(t testing.TB, a, b string, opts Options) []*Change {
	t.Helper()
	cs, err := Dumps(context.Background(), openDump(t, a), openDump(t, b), opts)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func show(c *Change) string {
	return fmt.Sprintf("%s pid %d %s %s %s: %q -> %q", c.GetSection(), c.GetPid(), c.GetKey(), c.GetPath(), c.GetOp(), c.GetOld(), c.GetNew())
}

// expectation is one difference the MANIFEST of evolve-pair lists.
type expectation struct {
	section string
	pid     uint32
	key     string
	path    string
	op      string
	old     string // substring of Old
	new     string // substring of New
	line    string // the MANIFEST line
}

func (e expectation) matches(c *Change) bool {
	return c.GetSection() == e.section && c.GetPid() == e.pid && c.GetKey() == e.key && c.GetPath() == e.path &&
		c.GetOp() == e.op && strings.Contains(c.GetOld(), e.old) && strings.Contains(c.GetNew(), e.new)
}

// protName turns the protection of /proc/PID/maps ("rw-p") into crit's
// flag names ("PROT_READ | PROT_WRITE").
func protName(s string) string {
	var v uint64
	for i, r := range "rwx" {
		if s[i] == byte(r) {
			v |= 1 << i
		}
	}
	return flagnames.Format(flagnames.Table("mmap.prot"), v)
}

// manifestExpectations reads the "Differences between dump1 and dump"
// part of evolve-pair's MANIFEST: what must be reported, the pids whose VMAs
// and fds must not change, and the markers (pid, address, appears or
// disappears).
func manifestExpectations(t *testing.T, manifest string) (want []expectation, sameVMAs, sameFDs, sameCwd []uint32, markers []marker) {
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "== Differences between dump1 and dump")
	if i < 0 {
		t.Fatal("MANIFEST has no differences part")
	}
	// cases/ is /srv/critq-cases on the machine that made the corpus.
	abs := func(p string) string { return strings.Replace(p, "cases/", "/srv/critq-cases/", 1) }
	var (
		pidAdded  = regexp.MustCompile(`^\s*pid added: (\d+) \(comm (\S+), ppid (\d+)\)`)
		pidHead   = regexp.MustCompile(`^\s*pid (\d+): `)
		vmaChange = regexp.MustCompile(`^\s*VMA changed\s+([0-9a-f]+)-[0-9a-f]+ .*: protection (\S+) -> (\S+)`)
		vmaAdded  = regexp.MustCompile(`^\s*VMA added\s+([0-9a-f]+)-([0-9a-f]+) (\S+)`)
		fdClosed  = regexp.MustCompile(`^\s*fd (\d+) closed: (\S+)`)
		fdSocket  = regexp.MustCompile(`^\s*fd (\d+) opened: socket:\[(\d+)\]`)
		fdOpened  = regexp.MustCompile(`^\s*fd (\d+) opened: (\S+)`)
		cwdChange = regexp.MustCompile(`^\s*pid (\d+): cwd (\S+) -> (\S+)`)
		cwdSame   = regexp.MustCompile(`^\s*pid (\d+): cwd unchanged`)
		noVMA     = regexp.MustCompile(`^\s*pid (\d+): no VMA differs`)
		noFD      = regexp.MustCompile(`^\s*pid (\d+): no fd differs`)
		markerRe  = regexp.MustCompile(`^\s*pid (\d+): CRITQ-MARKER-\S+ (appears|disappears \(was) @ 0x([0-9a-f]+)`)
	)
	num := func(s string) uint32 {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		return uint32(n)
	}
	var pid uint32
	for _, line := range strings.Split(text[i:], "\n") {
		if strings.HasPrefix(line, "-- program log") {
			break
		}
		var m []string
		switch {
		case match(pidAdded, line, &m):
			want = append(want, expectation{section: "processes", pid: num(m[1]), key: m[1], op: Added, new: m[2] + " (ppid " + m[3] + ")", line: line},
				// the parent gains a child
				expectation{section: "processes", pid: num(m[3]), key: m[3], path: "children", op: Changed, new: m[1], line: line})
		case match(cwdChange, line, &m):
			want = append(want, expectation{section: "processes", pid: num(m[1]), key: m[1], path: "cwd", op: Changed, old: abs(m[2]), new: abs(m[3]), line: line})
		case match(cwdSame, line, &m):
			sameCwd = append(sameCwd, num(m[1]))
		case match(noVMA, line, &m):
			sameVMAs = append(sameVMAs, num(m[1]))
		case match(noFD, line, &m):
			sameFDs = append(sameFDs, num(m[1]))
		case match(markerRe, line, &m):
			a, _ := strconv.ParseUint(m[3], 16, 64)
			markers = append(markers, marker{pid: num(m[1]), addr: a, appears: m[2] == "appears", line: line})
		case match(pidHead, line, &m):
			pid = num(m[1])
		case match(vmaChange, line, &m):
			want = append(want, expectation{section: "vmas", pid: pid, key: "0x" + m[1], path: "prot", op: Changed, old: protName(m[2]), new: protName(m[3]), line: line})
		case match(vmaAdded, line, &m):
			want = append(want, expectation{section: "vmas", pid: pid, key: "0x" + m[1], op: Added, new: m[1] + "-" + m[2] + " " + m[3][:3], line: line})
		case match(fdClosed, line, &m):
			want = append(want, expectation{section: "fds", pid: pid, key: m[1], op: Removed, old: "REG " + abs(m[2]), line: line},
				expectation{section: "files", key: "REG " + abs(m[2]), op: Removed, line: line})
		case match(fdSocket, line, &m):
			want = append(want, expectation{section: "fds", pid: pid, key: m[1], op: Added, new: "socket:[" + m[2] + "]", line: line},
				expectation{section: "sockets", key: "ino " + m[2], op: Added, line: line})
		case match(fdOpened, line, &m):
			want = append(want, expectation{section: "fds", pid: pid, key: m[1], op: Added, new: "REG " + abs(m[2]), line: line},
				expectation{section: "files", key: "REG " + abs(m[2]), op: Added, line: line})
		}
	}
	return want, sameVMAs, sameFDs, sameCwd, markers
}

type marker struct {
	pid     uint32
	addr    uint64
	appears bool
	line    string
}

func match(re *regexp.Regexp, line string, m *[]string) bool {
	*m = re.FindStringSubmatch(line)
	return *m != nil
}

// TestEvolvePair checks critq diff against the MANIFEST of evolve-pair:
// every difference it lists is reported with its section, pid, key, old
// and new value, and nothing is reported of what it says stayed the same.
func TestEvolvePair(t *testing.T) {
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	dir := filepath.Join(root, "evolve-pair")
	want, sameVMAs, sameFDs, sameCwd, markers := manifestExpectations(t, filepath.Join(dir, "MANIFEST.txt"))
	if len(want) < 10 || len(markers) < 3 || len(sameVMAs) == 0 || len(sameFDs) == 0 || len(sameCwd) == 0 {
		t.Fatalf("MANIFEST parsed to too little: %d expectations, %d markers, same vmas %v fds %v cwd %v", len(want), len(markers), sameVMAs, sameFDs, sameCwd)
	}
	a, b := filepath.Join(dir, "dump1"), filepath.Join(dir, "dump")
	cs := diffDirs(t, a, b, Options{Pages: true, Bytes: true})
	explained := make([]bool, len(cs))
	for _, e := range want {
		found := false
		for i, c := range cs {
			if e.matches(c) {
				found, explained[i] = true, true
			}
		}
		if !found {
			t.Errorf("MANIFEST %q: no change %+v", strings.TrimSpace(e.line), e)
		}
	}
	// The markers: each appears or disappears in a range of pages that
	// changed (in place) or was added, and its bytes differ there.
	for _, m := range markers {
		found := false
		for i, c := range cs {
			if strings.Contains(m.line, "(task added)") && c.GetSection() == "processes" && c.GetPid() == m.pid && c.GetOp() == Added {
				found, explained[i] = true, true // an added task's memory is not compared
			}
			if c.GetSection() == "memory" && c.GetPid() == m.pid && c.GetAddr() <= m.addr && m.addr < c.GetEnd() &&
				(c.GetOp() == Changed || m.appears && c.GetOp() == Added) {
				found, explained[i] = true, true
			}
		}
		if !found {
			t.Errorf("MANIFEST %q: no memory change at 0x%x", strings.TrimSpace(m.line), m.addr)
		}
	}
	for i, c := range cs {
		s, p := c.GetSection(), c.GetPid()
		switch {
		case s == "vmas" && contains(sameVMAs, p), s == "fds" && contains(sameFDs, p),
			s == "processes" && c.GetPath() == "cwd" && contains(sameCwd, p):
			t.Errorf("MANIFEST says it stayed the same: %s", show(c))
		case s == "memory" && p == 0 && c.GetKey() == "total":
			// neither dump has a parent: what each holds is its pages files
			if want := [2]string{pagesTotal(t, a), pagesTotal(t, b)}; c.GetOld() != want[0] || c.GetNew() != want[1] {
				t.Errorf("total %s, want %q -> %q (the sizes of the pages files)", show(c), want[0], want[1])
			}
		case s == "memory" && p != 6812:
			// Only the tree's root (6812) ran while the dumps were taken
			// apart; child1 only waited (its markers are the same).
			t.Errorf("memory of a task that only waited changed: %s", show(c))
		case s == "images":
			// pages-N and fdinfo-N are dump numbering; the others are the
			// images of the added task and of the TCP connection.
			if !strings.Contains(c.GetKey(), "7138") && !strings.HasPrefix(c.GetKey(), "tcp-stream-4d97") &&
				!strings.HasPrefix(c.GetKey(), "pages-") && !strings.HasPrefix(c.GetKey(), "fdinfo-") {
				t.Errorf("unexplained image: %s", show(c))
			}
		case s == "files" && (strings.HasSuffix(c.GetKey(), "/evolve/sub") || strings.HasPrefix(c.GetKey(), "REG /#")):
			// the new cwd of 6812 and the root of the added task 7138
		case s == "memory":
			// stack and heap bytes the program touched: the MANIFEST's
			// "Nothing else ... differs except"
		case !explained[i]:
			t.Errorf("not in the MANIFEST: %s", show(c))
		}
	}
	if t.Failed() {
		for _, c := range cs {
			t.Log(show(c))
		}
	}
}

// pagesTotal returns the size of the pages files of dump folder dir as the
// memory total shows it.
func pagesTotal(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "pages-*.img"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return fmt.Sprintf("%d pages (%d bytes)", n/4096, n)
}

func contains(l []uint32, v uint32) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// TestSelfDiff diffs every dump of the corpus against itself (opened
// twice): no change.
func TestSelfDiff(t *testing.T) {
	for _, dir := range testcorpus.Dumps(t) {
		t.Run(filepath.Base(filepath.Dir(dir))+"/"+filepath.Base(dir), func(t *testing.T) {
			cs := diffDirs(t, dir, dir, Options{Registers: true})
			for _, c := range cs {
				t.Errorf("%s", show(c))
			}
		})
	}
}

// TestPredumpChain compares the steps of a pre-dump chain: the pages the
// dirtier task wrote between the steps change, and a step against itself
// does not.
func TestPredumpChain(t *testing.T) {
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	dir := filepath.Join(root, "predump-chain-splice")
	for _, pair := range [][2]string{{"pre1", "pre2"}, {"pre2", "dump"}, {"pre1", "dump"}} {
		cs := diffDirs(t, filepath.Join(dir, pair[0]), filepath.Join(dir, pair[1]), Options{Pages: true, Bytes: true})
		changed := 0
		for _, c := range cs {
			if c.GetSection() == "memory" && c.GetOp() == Changed {
				changed++
			}
			if c.GetSection() != "memory" && c.GetSection() != "images" {
				t.Errorf("%s -> %s: a pre-dump has memory only: %s", pair[0], pair[1], show(c))
			}
		}
		if changed == 0 {
			t.Errorf("%s -> %s: no page changed: %v", pair[0], pair[1], cs)
		}
	}
}
