package cli

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/critq/critq/explore"
	"github.com/critq/critq/internal/annot"
	"github.com/critq/critq/mem"
)

func init() {
	register(&command{name: "mem", summary: "memory of the tasks: sizes, hexdump, search", run: runMem})
}

const memUsage = `usage: critq mem [flags] DUMP                        memory sizes of every task
       critq mem [flags] DUMP PID [ADDR [LEN]]         hexdump (xxd layout) or --raw bytes
       critq mem search [flags] DUMP PATTERN           find a string, --hex bytes or a --regex

The sizes are the bytes of pages the dump holds: MEMORY SIZE for the
task's own pages, SHARED MEMORY SIZE for the shared memory, memfd and SysV
segments it maps shared. Without ADDR the hexdump shows every page the dump
holds of the task; LEN defaults to 256. A page the dump does not hold is
zero in anonymous memory; in a file mapping it is an error that names the
file and offset. ADDR and LEN take 0x for hex. A run of identical lines
shows as its first line, "*", and (at the end of a range) its last line,
as hexdump -C and xxd -a do; -v shows every line.

search matches raw bytes (any value) in the pages the dump holds, of every
task or of -p PID, and prints pid, address, the VMA and its file, and
--context bytes around the match (escaped).

A read the dump cannot answer (an address in no VMA, bytes of a file
mapping or of a zombie) exits 5; an image that cannot be read exits 4.
` + pidHelp + dumpArgHelp

func runMem(c *cli, args []string) error {
	if len(args) > 0 && args[0] == "search" {
		return runMemSearch(c, args[1:])
	}
	fs := c.newFlags("mem", memUsage)
	c.archiveFlags(fs)
	pageSize := fs.Int("page-size", 0, "page size of the dump (default: from the dump)")
	raw := fs.Bool("raw", false, "write the bytes as they are instead of a hexdump")
	all := fs.Bool("v", false, "show every line of the hexdump (no * for repeated lines)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 4 {
		return usageErrorf("mem: %s", firstLine(memUsage))
	}
	e, done, err := openExplorer(pos[0], *pageSize)
	if err != nil {
		return err
	}
	defer done()
	m := e.Memory()
	if len(pos) == 1 {
		return memTable(c.stdout, e)
	}
	pid, err := parsePID(pos[1])
	if err != nil {
		return err
	}
	if err := checkMemPID(e, pid); err != nil {
		return err
	}
	var spans [][2]uint64
	if len(pos) == 2 {
		if err := noMemory(e, pid); err != nil {
			return err
		}
		if spans, err = m.Spans(pid); err != nil {
			return withExitCode(err, exitBadImage)
		}
	} else {
		addr, err := strconv.ParseUint(pos[2], 0, 64)
		if err != nil {
			return usageErrorf("mem: bad address %q", pos[2])
		}
		n := uint64(256)
		if len(pos) == 4 {
			if n, err = strconv.ParseUint(pos[3], 0, 32); err != nil || n > mem.MaxRead {
				return usageErrorf("mem: bad length %q (at most %d)", pos[3], mem.MaxRead)
			}
		}
		if addr+n < addr {
			return usageErrorf("mem: %#x + %d bytes wraps past the end of the address space", addr, n)
		}
		spans = [][2]uint64{{addr, addr + n}}
	}
	hd := &hexdumper{w: c.stdout, all: *all}
	for _, s := range spans {
		for a := s[0]; a < s[1]; {
			n := min(s[1]-a, 1<<20)
			b, rerr := m.Read(pid, a, int(n))
			if *raw {
				_, err = c.stdout.Write(b)
			} else {
				err = hd.write(a, b)
			}
			if err != nil {
				return withCode(exitError, err)
			}
			if rerr != nil {
				return withExitCode(rerr, exitBadImage)
			}
			a += n
		}
		if err := hd.end(); err != nil {
			return withCode(exitError, err)
		}
	}
	return nil
}

// openExplorer opens a dump for reading memory (spooling the pages of a
// compressed archive in the same pass); done closes it.
func openExplorer(p string, pageSize int) (*explore.Explorer, func(), error) {
	d, err := openDump(p, true)
	if err != nil {
		return nil, nil, err
	}
	m := mem.Open(d, mem.PageSize(pageSize))
	return explore.New(d, m), func() { m.Close(); d.Close() }, nil
}

func memTable(w io.Writer, e *explore.Explorer) error {
	type row struct {
		pid  uint32
		comm string
	}
	var rows []row
	tasks, err := e.Tasks()
	switch {
	case errors.Is(err, explore.ErrNoPstree) && len(e.Memory().Dump().Kind("CORE")) > 0:
		// Cores without a process tree: a damaged dump, not a pre-dump.
		return withExitCode(err, exitBadImage)
	case errors.Is(err, explore.ErrNoPstree):
		// A pre-dump: the tasks are the pids of its pagemaps; their
		// names are in the full dump.
		pids, perr := e.Memory().PIDs()
		if perr != nil || len(pids) == 0 {
			return withExitCode(err, exitBadImage)
		}
		for _, pid := range pids {
			rows = append(rows, row{pid, "?"})
		}
	case err != nil:
		return withExitCode(err, exitBadImage)
	}
	for _, t := range tasks {
		rows = append(rows, row{t.PID, t.Comm()})
	}
	tw := tabwriter.NewWriter(w, 6, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "PID\tPROCESS NAME\tMEMORY SIZE\tSHARED MEMORY SIZE")
	for _, r := range rows {
		priv, shared, err := e.Memory().Held(r.pid)
		if err != nil {
			return withExitCode(err, exitBadImage)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.pid, r.comm, annot.Size(priv), annot.Size(shared))
	}
	return tw.Flush()
}

// checkMemPID is checkPID for the memory commands, which also read a
// pre-dump (no pstree.img): there the pids are those of its pagemaps.
func checkMemPID(e *explore.Explorer, pid uint32) error {
	_, err := e.Task(pid)
	if errors.Is(err, explore.ErrNoPstree) {
		pids, perr := e.Memory().PIDs()
		if perr != nil || len(pids) == 0 {
			return withExitCode(err, exitBadImage)
		}
		if slices.Contains(pids, pid) {
			return nil
		}
		return withCode(exitUsage, fmt.Errorf("%s: %w %d (pre-dump pagemaps of pids %v)", e.Memory().Dump().Name, explore.ErrNoTask, pid, pids))
	}
	return checkPID(e, pid)
}

// noMemory returns the error of a task that has no memory to print: a
// zombie (exit 5, as a read of its memory).
func noMemory(e *explore.Explorer, pid uint32) error {
	t, err := e.Task(pid)
	if err != nil || t.Core == nil || t.HasMemory() {
		return nil
	}
	return withCode(exitError, fmt.Errorf("pid %d is a zombie: a zombie has no memory", pid))
}

const memSearchUsage = `usage: critq mem search [--regex|--hex] [-p PID] [--context N] DUMP PATTERN

Finds PATTERN in the memory the dump holds: a string (its bytes), bytes
given in hex with --hex ("deadbeef"), or a regular expression over bytes
with --regex (a match is at most 4096 bytes). Prints one line per match:
pid, address, the VMA (range, permissions, file) and the context.

--format ndjson prints one JSON object a line (JSON Lines) per match
(--format json one JSON array of them):
  {"pid": 7235, "addr": "0x5576db6e3004",
   "vma": {"start": "0x5576db6e3000", "end": "0x5576db6e4000",
           "perms": "r--p", "path": "/srv/critq-cases/bin/fds-zoo"},
   "match": "CRITQ-MARKER", "match_hex": "43524954512d4d41524b4552",
   "before": "...", "before_hex": "...", "after": "...", "after_hex": "..."}
match, before and after are the bytes as text (a byte that is not UTF-8
becomes U+FFFD); the _hex fields are the exact bytes.

Exit status 1 when nothing matches, as grep; 4 when an image cannot be
read.
` + pidHelp + dumpArgHelp

func runMemSearch(c *cli, args []string) error {
	fs := c.newFlags("mem search", memSearchUsage)
	c.archiveFlags(fs)
	isRegex := fs.Bool("regex", false, "PATTERN is a regular expression")
	isHex := fs.Bool("hex", false, "PATTERN is bytes in hex")
	pidFlag := fs.Uint("p", 0, "search only the task with this pid")
	context := fs.Int("context", 16, "bytes of context shown around a match")
	pageSize := fs.Int("page-size", 0, "page size of the dump (default: from the dump)")
	format := formatFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageErrorf("mem search: %s", firstLine(memSearchUsage))
	}
	var p mem.Pattern
	switch {
	case *isRegex && *isHex:
		return usageErrorf("mem search: --regex and --hex exclude each other")
	case *isRegex:
		re, err := regexp.Compile(pos[1])
		if err != nil {
			return withCode(exitCompile, fmt.Errorf("mem search: %w", err))
		}
		p = mem.Regexp(re)
	case *isHex:
		b, err := hex.DecodeString(strings.ReplaceAll(pos[1], " ", ""))
		if err != nil || len(b) == 0 {
			return usageErrorf("mem search: bad hex pattern %q", pos[1])
		}
		p = mem.Literal(b)
	default:
		if pos[1] == "" {
			return usageErrorf("mem search: empty pattern")
		}
		p = mem.Literal([]byte(pos[1]))
	}
	if err := checkFormat("mem search", *format); err != nil {
		return err
	}
	opts := mem.SearchOptions{Context: max(*context, 0)}
	e, done, err := openExplorer(pos[0], *pageSize)
	if err != nil {
		return err
	}
	defer done()
	if *pidFlag != 0 {
		if err := checkMemPID(e, uint32(*pidFlag)); err != nil {
			return err
		}
		opts.PIDs = []uint32{uint32(*pidFlag)}
	}
	vmas := map[uint32]map[uint64]explore.MapLine{} // pid -> start -> line
	n := 0
	hits := []searchHit{} // of --format json
	err = e.Memory().Search(p, opts, func(h mem.Match) error {
		n++
		lines := vmas[h.PID]
		if lines == nil {
			lines = map[uint64]explore.MapLine{}
			mp, err := e.Maps(h.PID)
			switch {
			case errors.Is(err, explore.ErrNoPstree):
				// A pre-dump records no VMAs: its pagemap's ranges,
				// permissions unknown.
				lines[h.VMA.GetStart()] = explore.MapLine{Perms: "---p"}
			case err != nil:
				return err
			default:
				for _, l := range mp.Tasks[0].Lines {
					lines[uint64(l.Start)] = l
				}
			}
			vmas[h.PID] = lines
		}
		l := lines[h.VMA.GetStart()]
		if *format != "text" {
			hit := searchHit{PID: h.PID, Addr: hexString(h.Addr),
				VMA:   searchVMA{Start: hexString(h.VMA.GetStart()), End: hexString(h.VMA.GetEnd()), Perms: l.Perms, Path: l.Path},
				Match: string(h.Data), MatchHex: hex.EncodeToString(h.Data), Before: string(h.Before),
				BeforeHex: hex.EncodeToString(h.Before), After: string(h.After), AfterHex: hex.EncodeToString(h.After)}
			if *format == "json" {
				hits = append(hits, hit)
				return nil
			}
			return writeJSONLine(c.stdout, hit)
		}
		vma := strings.TrimSpace(fmt.Sprintf("%08x-%08x %s %s", h.VMA.GetStart(), h.VMA.GetEnd(), l.Perms, l.Path))
		_, err := fmt.Fprintf(c.stdout, "%d 0x%x %s: %s[%s]%s\n", h.PID, h.Addr, vma, escape(h.Before), escape(h.Data), escape(h.After))
		return err
	})
	if err != nil {
		return withExitCode(err, exitBadImage)
	}
	if *format == "json" {
		if err := writeJSONLine(c.stdout, hits); err != nil {
			return withCode(exitError, err)
		}
	}
	if n == 0 {
		return silentError{code: exitFalse}
	}
	return nil
}

// searchHit is one match of mem search --format json.
type searchHit struct {
	PID       uint32    `json:"pid"`
	Addr      string    `json:"addr"`
	VMA       searchVMA `json:"vma"`
	Match     string    `json:"match"`
	MatchHex  string    `json:"match_hex"`
	Before    string    `json:"before"`
	BeforeHex string    `json:"before_hex"`
	After     string    `json:"after"`
	AfterHex  string    `json:"after_hex"`
}

// searchVMA is the VMA of a match as critq maps shows it.
type searchVMA struct {
	Start string `json:"start"`
	End   string `json:"end"`
	Perms string `json:"perms"`
	Path  string `json:"path"`
}

func hexString(n uint64) string { return "0x" + strconv.FormatUint(n, 16) }

// writeJSONLine writes v as one line of JSON, & < > as they are.
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// escape shows bytes as Go string literal text without the quotes.
func escape(b []byte) string {
	q := strconv.Quote(string(b))
	return q[1 : len(q)-1]
}
