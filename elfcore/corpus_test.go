package elfcore_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/elfcore"
	"github.com/critq/critq/explore"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/mem"
)

// goldenDirs returns the dumps of the corpus that have golden-core/ with
// at least one core (criu-coredump's outputs).
func goldenDirs(t *testing.T) []string {
	root := testcorpus.Root(t)
	if root == "" {
		t.Skip("no corpus")
	}
	var out []string
	filepath.WalkDir(root, func(p string, de os.DirEntry, err error) error {
		if err == nil && de.IsDir() && de.Name() == "golden-core" {
			if m, _ := filepath.Glob(filepath.Join(p, "core-*.readelf.txt")); len(m) > 0 {
				out = append(out, filepath.Dir(p))
			}
			return filepath.SkipDir
		}
		return nil
	})
	if len(out) == 0 {
		t.Fatal("no golden-core folders in the corpus")
	}
	sort.Strings(out)
	return out
}

// writeCore writes the core of pid of the dump in dir to memory.
func writeCore(t testing.TB, d *dump.Dump, pid uint32, opts elfcore.Options) ([]byte, *elfcore.Plan) {
	t.Helper()
	m := mem.Open(d)
	defer m.Close()
	w := elfcore.New(d, m, opts)
	defer w.Close()
	p, err := w.Plan(pid)
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	buf := bytes.NewBuffer(make([]byte, 0, p.Size))
	if err := w.WritePlan(buf, p); err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	if int64(buf.Len()) != p.Size {
		t.Fatalf("pid %d: wrote %d bytes, plan says %d", pid, buf.Len(), p.Size)
	}
	return buf.Bytes(), p
}

type goldLoad struct {
	vaddr, filesz, memsz uint64
	flags                elf.ProgFlag
}

type goldNote struct {
	typ  string
	size uint64
	data []byte // description data readelf printed, if any
}

var (
	loadRE = regexp.MustCompile(`^\s+LOAD\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+([RWE ]*?)\s+0x[0-9a-f]+$`)
	noteRE = regexp.MustCompile(`^\s+(?:CORE|LINUX)\s+(0x[0-9a-f]+)\s+(NT_\w+)(?:.*description data: ([0-9a-f ]+))?`)
	hdrRE  = regexp.MustCompile(`^\s+(Class|Type|Machine):\s+(.*)$`)
)

func parseReadelf(t *testing.T, path string) (hdr map[string]string, loads []goldLoad, notes []goldNote) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hdr = map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if m := hdrRE.FindStringSubmatch(l); m != nil {
			hdr[m[1]] = strings.TrimSpace(m[2])
		}
		if m := loadRE.FindStringSubmatch(l); m != nil {
			var g goldLoad
			g.vaddr, _ = strconv.ParseUint(m[1], 0, 64)
			g.filesz, _ = strconv.ParseUint(m[2], 0, 64)
			g.memsz, _ = strconv.ParseUint(m[3], 0, 64)
			for _, c := range m[4] {
				switch c {
				case 'R':
					g.flags |= elf.PF_R
				case 'W':
					g.flags |= elf.PF_W
				case 'E':
					g.flags |= elf.PF_X
				}
			}
			loads = append(loads, g)
		}
		if m := noteRE.FindStringSubmatch(l); m != nil {
			n := goldNote{typ: m[2]}
			n.size, _ = strconv.ParseUint(m[1], 0, 64)
			if m[3] != "" {
				n.data, _ = hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(m[3]), " ", ""))
			}
			notes = append(notes, n)
		}
	}
	return hdr, loads, notes
}

type coreNote struct {
	name string
	typ  uint32
	desc []byte
}

func parseNotes(t *testing.T, f *elf.File) []coreNote {
	var out []coreNote
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		for len(b) >= 12 {
			nsz, dsz, typ := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])
			no := 12 + (int(nsz)+3)&^3
			end := no + (int(dsz)+3)&^3
			if end > len(b) {
				t.Fatalf("note runs past PT_NOTE")
			}
			out = append(out, coreNote{strings.TrimRight(string(b[12:12+nsz]), "\x00"), typ, b[no : no+int(dsz)]})
			b = b[end:]
		}
	}
	return out
}

var noteNames = map[uint32]string{
	1: "NT_PRSTATUS", 2: "NT_FPREGSET", 3: "NT_PRPSINFO", 6: "NT_AUXV",
	0x53494749: "NT_SIGINFO", 0x46494c45: "NT_FILE", 0x202: "NT_X86_XSTATE",
}

// TestGoldenCores checks the cores of every task that criu-coredump wrote
// a core for against its golden: ELF header, PT_LOAD ranges and flags,
// note types and sizes (deliberate differences explained), XSAVE bytes,
// the sha256 of the segments that came from the dump's pages, and gdb's
// registers.
func TestGoldenCores(t *testing.T) {
	long := os.Getenv("CRITQ_LONG") != ""
	_, gdbErr := exec.LookPath("gdb")
	for _, dir := range goldenDirs(t) {
		name, _ := filepath.Rel(testcorpus.Root(t), dir)
		t.Run(name, func(t *testing.T) {
			d, err := dump.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			goldens, _ := filepath.Glob(filepath.Join(dir, "golden-core", "core-*.readelf.txt"))
			for i, g := range goldens {
				pid64, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(g), "core-"), ".readelf.txt"), 10, 32)
				if err != nil {
					t.Fatal(err)
				}
				pid := uint32(pid64)
				core, _ := writeCore(t, d, pid, elfcore.Options{})
				checkGolden(t, pid, core, g)
				checkSegments(t, pid, core, strings.TrimSuffix(g, ".readelf.txt")+".segments.tsv")
				// gdb on a core of 12,000 segments takes seconds: with
				// CRITQ_LONG only, as gdb on the other tasks of a dump.
				if gdbErr == nil && ((i == 0 && name != "many-vmas") || long) {
					checkGDBRegisters(t, pid, core, strings.TrimSuffix(g, ".readelf.txt")+".gdb.txt")
				}
			}
		})
	}
}

func checkGolden(t *testing.T, pid uint32, core []byte, golden string) {
	t.Helper()
	hdr, loads, gnotes := parseReadelf(t, golden)
	f, err := elf.NewFile(bytes.NewReader(core))
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	if hdr["Class"] != "ELF64" || f.Class != elf.ELFCLASS64 || hdr["Type"] != "CORE (Core file)" || f.Type != elf.ET_CORE {
		t.Errorf("pid %d: header %v, ours %v %v", pid, hdr, f.Class, f.Type)
	}
	if hdr["Machine"] != "Advanced Micro Devices X86-64" || f.Machine != elf.EM_X86_64 {
		t.Errorf("pid %d: machine %q, ours %v", pid, hdr["Machine"], f.Machine)
	}
	// PT_LOADs: ours may split a VMA where file pages are left out between
	// pages that are written; together they cover the golden's range.
	var ours []*elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			ours = append(ours, p)
		}
	}
	j := 0
	for _, g := range loads {
		if j >= len(ours) || ours[j].Vaddr != g.vaddr {
			t.Fatalf("pid %d: golden PT_LOAD 0x%x: ours starts at %v", pid, g.vaddr, progAt(ours, j))
		}
		end := g.vaddr + g.memsz
		for j < len(ours) && ours[j].Vaddr < end {
			if ours[j].Flags != g.flags {
				t.Errorf("pid %d: PT_LOAD 0x%x flags %v, golden %v", pid, ours[j].Vaddr, ours[j].Flags, g.flags)
			}
			if ours[j].Vaddr+ours[j].Memsz > end {
				t.Errorf("pid %d: PT_LOAD 0x%x runs past the golden's 0x%x", pid, ours[j].Vaddr, end)
			}
			j++
		}
		if last := ours[j-1]; last.Vaddr+last.Memsz != end {
			t.Errorf("pid %d: PT_LOADs of 0x%x end at 0x%x, golden 0x%x", pid, g.vaddr, last.Vaddr+last.Memsz, end)
		}
	}
	if j != len(ours) {
		t.Errorf("pid %d: %d PT_LOADs beyond the golden's", pid, len(ours)-j)
	}
	notes := parseNotes(t, f)
	if len(notes) != len(gnotes) {
		t.Fatalf("pid %d: %d notes, golden %d", pid, len(notes), len(gnotes))
	}
	for i, n := range notes {
		g := gnotes[i]
		if noteNames[n.typ] != g.typ {
			t.Errorf("pid %d: note %d is %s, golden %s", pid, i, noteNames[n.typ], g.typ)
			continue
		}
		size := uint64(len(n.desc))
		switch g.typ {
		case "NT_X86_XSTATE":
			// Deliberate: XCR0 is set (criu-coredump leaves it zero) and the
			// size is the one gdb expects for it, with the AVX-512 and PKRU
			// components the images hold.
			if size != 832 && size != 2688 && size != 2696 {
				t.Errorf("pid %d: NT_X86_XSTATE of %d bytes", pid, size)
			}
			if len(g.data) != 832 {
				t.Fatalf("pid %d: golden XSTATE data of %d bytes", pid, len(g.data))
			}
			got := append([]byte(nil), n.desc[:832]...)
			copy(got[464:472], g.data[464:472]) // XCR0
			if !bytes.Equal(got, g.data) {
				t.Errorf("pid %d: NT_X86_XSTATE bytes differ from the golden's (XCR0 aside)", pid)
			}
			if xcr0 := binary.LittleEndian.Uint64(n.desc[464:]); xcr0&7 != 7 {
				t.Errorf("pid %d: XCR0 0x%x", pid, xcr0)
			}
		case "NT_AUXV":
			// Deliberate: the vector ends with AT_NULL, as the kernel writes
			// it; CRIU's saved vector lacks it.
			if size != g.size+16 && size != g.size {
				t.Errorf("pid %d: NT_AUXV %d bytes, golden %d", pid, size, g.size)
			}
			if binary.LittleEndian.Uint64(n.desc[size-16:]) != 0 || binary.LittleEndian.Uint64(n.desc[0:]) == 0 {
				t.Errorf("pid %d: NT_AUXV does not end with AT_NULL or is empty", pid)
			}
		case "NT_FILE":
			// Deliberate: criu-coredump's size includes the ctypes struct's
			// tail padding (gdb: "filename area is too big").
			if (size+7)&^7 != g.size {
				t.Errorf("pid %d: NT_FILE %d bytes, golden %d", pid, size, g.size)
			}
		default:
			if size != g.size {
				t.Errorf("pid %d: %s %d bytes, golden %d", pid, g.typ, size, g.size)
			}
		}
	}
}

func progAt(ps []*elf.Prog, i int) string {
	if i >= len(ps) {
		return "nothing"
	}
	return fmt.Sprintf("0x%x", ps[i].Vaddr)
}

// checkSegments compares the sha256 of the golden's segments whose bytes
// all came from the dump's pages (or are anonymous zero pages) and sit
// where the program header says (criu-coredump's short host-file reads
// shift every later segment: those are skipped).
func checkSegments(t *testing.T, pid uint32, core []byte, tsv string) {
	t.Helper()
	b, err := os.ReadFile(tsv)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(core))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "\t")
		if len(fs) < 10 || fs[0] == "vaddr" || strings.HasPrefix(fs[0], "#") {
			continue
		}
		if fs[6] != "0" || fs[8] != "0" || strings.Contains(fs[9], "p_offset points") ||
			strings.Contains(fs[9], "core file ends") || strings.Contains(fs[9], "zero-filled by criu-coredump") {
			continue
		}
		vaddr, _ := strconv.ParseUint(fs[0], 0, 64)
		filesz, _ := strconv.ParseUint(fs[2], 10, 64)
		got := make([]byte, filesz)
		n, err := readCore(f, vaddr, got)
		if err != nil || n != len(got) {
			t.Errorf("pid %d: segment 0x%x: %d of %d bytes in our core: %v", pid, vaddr, n, filesz, err)
			continue
		}
		if sum := fmt.Sprintf("%x", sha256.Sum256(got)); sum != fs[4] {
			t.Errorf("pid %d: segment 0x%x (%s): sha256 %s, golden %s", pid, vaddr, fs[9], sum, fs[4])
		}
		checked++
	}
	if checked == 0 {
		t.Errorf("pid %d: no segment of %s could be compared", pid, filepath.Base(tsv))
	}
}

// readCore reads the bytes at vaddr that the core's PT_LOADs hold.
func readCore(f *elf.File, vaddr uint64, b []byte) (int, error) {
	got := 0
	for got < len(b) {
		a := vaddr + uint64(got)
		// The PT_LOADs are in address order (the program header of the
		// note comes first).
		i := sort.Search(len(f.Progs), func(i int) bool {
			q := f.Progs[i]
			return q.Type == elf.PT_LOAD && q.Vaddr+q.Memsz > a
		})
		var p *elf.Prog
		if i < len(f.Progs) && f.Progs[i].Vaddr <= a && a < f.Progs[i].Vaddr+f.Progs[i].Filesz {
			p = f.Progs[i]
		}
		if p == nil {
			return got, fmt.Errorf("0x%x not in the core", a)
		}
		n := min(uint64(len(b)-got), p.Vaddr+p.Filesz-a)
		if _, err := p.ReadAt(b[got:got+int(n)], int64(a-p.Vaddr)); err != nil {
			return got, err
		}
		got += int(n)
	}
	return got, nil
}

var regLineRE = regexp.MustCompile(`^(r[a-z0-9]+|eflags|cs|ss|ds|es|fs|gs)\s+0x`)

// gdbRegisters returns the register lines of gdb's `info registers`.
func gdbRegisters(out string) []string {
	var regs []string
	for _, l := range strings.Split(out, "\n") {
		if regLineRE.MatchString(l) {
			regs = append(regs, strings.Join(strings.Fields(l), " "))
		}
	}
	return regs
}

func runGDB(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("gdb", append([]string{"-batch", "-nx"}, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TERM=dumb"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gdb %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func checkGDBRegisters(t *testing.T, pid uint32, core []byte, golden string) {
	t.Helper()
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	run1, _, _ := strings.Cut(string(b), "### run 2")
	want := gdbRegisters(run1)
	if len(want) < 20 {
		t.Fatalf("pid %d: golden gdb output has %d register lines", pid, len(want))
	}
	dir := t.TempDir()
	name := fmt.Sprintf("core.%d", pid)
	if err := os.WriteFile(filepath.Join(dir, name), core, 0o644); err != nil {
		t.Fatal(err)
	}
	out := runGDB(t, dir, "-ex", "info registers", "-c", name)
	got := map[string]bool{}
	for _, l := range gdbRegisters(out) {
		got[l] = true
	}
	for _, l := range want {
		if !got[l] {
			t.Errorf("pid %d: gdb does not print %q\n%s", pid, l, out)
		}
	}
	for _, bad := range []string{"Unexpected size", "malformed note", "past end of file", "Cannot access memory"} {
		if strings.Contains(out, bad) {
			t.Errorf("pid %d: gdb warns: %s\n%s", pid, bad, out)
		}
	}
}

// TestArchiveSameCores checks that the cores of a dump read from a tar.gz
// archive are byte-identical to those from its folder.
func TestArchiveSameCores(t *testing.T) {
	dir := filepath.Join(testcorpus.Testdata(t), "sleep-plain")
	if root := testcorpus.Root(t); root != "" {
		dir = filepath.Join(root, "proc-tree")
	}
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	arc := filepath.Join(t.TempDir(), "checkpoint.tar.gz")
	if err := writeTarGz(arc, dir); err != nil {
		t.Fatal(err)
	}
	da, err := dump.OpenAny(arc, dump.ArchiveOptions{SpoolPages: true})
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	tasks, err := explore.New(d, mem.Open(d)).Tasks()
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		a, _ := writeCore(t, d, task.PID, elfcore.Options{})
		b, _ := writeCore(t, da, task.PID, elfcore.Options{})
		if !bytes.Equal(a, b) {
			t.Errorf("pid %d: the core from the archive differs from the folder's", task.PID)
		}
		// Written to a file, zero pages are holes: the same bytes.
		f, err := os.Create(filepath.Join(t.TempDir(), "core"))
		if err != nil {
			t.Fatal(err)
		}
		m := mem.Open(d)
		w := elfcore.New(d, m, elfcore.Options{})
		if _, err := w.Write(f, task.PID); err != nil {
			t.Fatal(err)
		}
		w.Close()
		m.Close()
		f.Close()
		if c, err := os.ReadFile(f.Name()); err != nil || !bytes.Equal(c, a) {
			t.Errorf("pid %d: the core written to a file differs (%v)", task.PID, err)
		}
	}
}
