package cli

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// hexRow is one line of a hexdump: its offset from the start and its
// bytes in hex, or a squeeze ("*").
type hexRow struct {
	off uint64
	hex string
}

// parseXxd reads critq mem's xxd layout, offsets from base.
func parseXxd(t *testing.T, out string, base uint64) []hexRow {
	var rows []hexRow
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "*" {
			rows = append(rows, hexRow{hex: "*"})
			continue
		}
		addr, rest, ok := strings.Cut(l, ": ")
		a, err := strconv.ParseUint(addr, 16, 64)
		if !ok || err != nil || len(rest) < 41 {
			t.Fatalf("bad line %q", l)
		}
		rows = append(rows, hexRow{a - base, strings.ReplaceAll(rest[:40], " ", "")})
	}
	return rows
}

// parseHexdumpC reads hexdump -C's output; the last line (the length)
// becomes, after a final "*", the last line of the squeezed run, as critq
// shows it.
func parseHexdumpC(t *testing.T, out string) []hexRow {
	var rows []hexRow
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for i, l := range lines {
		if l == "*" {
			rows = append(rows, hexRow{hex: "*"})
			continue
		}
		f := strings.Fields(l)
		a, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			t.Fatalf("bad hexdump line %q", l)
		}
		if i == len(lines)-1 {
			if i > 0 && lines[i-1] == "*" {
				rows = append(rows, hexRow{a - 16, rows[len(rows)-2].hex})
			}
			break
		}
		hex := strings.ReplaceAll(strings.SplitN(l[10:], "|", 2)[0], " ", "")
		rows = append(rows, hexRow{a, hex})
	}
	return rows
}

// TestMemHexdumpSqueeze compares the lines critq mem prints and squeezes
// with hexdump -C's on the same bytes (critq mem --raw), for ranges of
// the heap and the stack of a real dump, aligned and not; -v prints every
// line.
func TestMemHexdumpSqueeze(t *testing.T) {
	hd, err := exec.LookPath("hexdump")
	if err != nil {
		t.Skip("no hexdump")
	}
	for _, r := range []struct{ addr, n uint64 }{
		{0x556e759dc000, 0x21000}, // [heap]
		{0x7ffde76ed000, 0x21000}, // [stack]
		{0x556e759dc005, 1001},    // unaligned, a short last line
		{0x7fdf209e4000, 0x3000},  // anonymous, mostly zero
	} {
		t.Run(fmt.Sprintf("%x", r.addr), func(t *testing.T) {
			a, n := "0x"+strconv.FormatUint(r.addr, 16), strconv.FormatUint(r.n, 10)
			raw, stderr, code := runCLI(t, nil, "mem", sleepPlain, "19635", a, n, "--raw")
			if code != exitOK || uint64(len(raw)) != r.n {
				t.Fatalf("--raw: exit %d, %d bytes: %s", code, len(raw), stderr)
			}
			cmd := exec.Command(hd, "-C")
			cmd.Stdin = strings.NewReader(raw)
			oracle, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			out, _, code := runCLI(t, nil, "mem", sleepPlain, "19635", a, n)
			if code != exitOK {
				t.Fatalf("exit %d", code)
			}
			got, want := parseXxd(t, out, r.addr), parseHexdumpC(t, string(oracle))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("critq mem:\n%s\nhexdump -C:\n%s", out, oracle)
			}
			all, _, _ := runCLI(t, nil, "mem", "-v", sleepPlain, "19635", a, n)
			rows := parseXxd(t, all, r.addr)
			if uint64(len(rows)) != (r.n+15)/16 {
				t.Fatalf("-v: %d lines for %d bytes", len(rows), r.n)
			}
			for i, row := range rows {
				b := []byte(raw[i*16 : min(i*16+16, len(raw))])
				if row.off != uint64(i*16) || row.hex != fmt.Sprintf("%x", b) {
					t.Fatalf("-v line %d: %+v, bytes %x", i, row, b)
				}
			}
			if strings.Count(out, "*") > 0 && !bytes.Contains(oracle, []byte("\n*\n")) {
				t.Errorf("critq squeezed where hexdump did not")
			}
		})
	}
}

// TestMemWholeTaskSqueeze: the hexdump of every page of a task squeezes
// its zero runs and -v gives every line back.
func TestMemWholeTaskSqueeze(t *testing.T) {
	out, _, code := runCLI(t, nil, "mem", sleepPlain, "19635")
	all, _, code2 := runCLI(t, nil, "mem", "-v", sleepPlain, "19635")
	raw, _, code3 := runCLI(t, nil, "mem", "--raw", sleepPlain, "19635")
	if code|code2|code3 != exitOK {
		t.Fatalf("exit %d %d %d", code, code2, code3)
	}
	n, nAll := strings.Count(out, "\n"), strings.Count(all, "\n")
	if nAll != (len(raw)+15)/16 || n >= nAll || !strings.Contains(out, "\n*\n") {
		t.Errorf("%d lines squeezed, %d with -v, %d bytes", n, nAll, len(raw))
	}
	t.Logf("%d bytes: %d lines, %d with -v", len(raw), n, nAll)
}
