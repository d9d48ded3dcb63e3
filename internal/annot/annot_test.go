package annot

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"slices"
	"testing"

	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/proto/images"
)

// The words of 127.0.0.1 and ::1 as CRIU stores them on a little-endian
// and a big-endian host (the address bytes, read as a host u32).
func TestIPBothWays(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	tests := []struct {
		order binary.ByteOrder
		words []uint32
		text  string
	}{
		{le, []uint32{0x0100007f}, "127.0.0.1"},
		{be, []uint32{0x7f000001}, "127.0.0.1"},
		{le, []uint32{0x0a0010ac}, "172.16.0.10"},
		{be, []uint32{0xac10000a}, "172.16.0.10"},
		{le, []uint32{0, 0, 0, 0x01000000}, "::1"},
		{be, []uint32{0, 0, 0, 1}, "::1"},
		{le, []uint32{0, 0, 0xffff0000, 0x0100000a}, "::ffff:10.0.0.1"},
		{be, []uint32{0x20010db8, 0, 0, 0x00000001}, "2001:db8::1"},
		{nil, []uint32{0x0100007f}, "127.0.0.1"}, // nil is little-endian
	}
	for _, tc := range tests {
		got, err := FormatIP(tc.words, tc.order)
		if err != nil || got != tc.text {
			t.Errorf("FormatIP(%#x, %v) = %q, %v; want %q", tc.words, tc.order, got, err, tc.text)
		}
		w, err := ParseIP(tc.text, tc.order)
		if err != nil || !slices.Equal(w, tc.words) {
			t.Errorf("ParseIP(%q, %v) = %#x, %v; want %#x", tc.text, tc.order, w, err, tc.words)
		}
	}
	for _, n := range []int{0, 2, 3, 5} {
		if _, err := FormatIP(make([]uint32, n), le); err == nil {
			t.Errorf("FormatIP of %d words: no error", n)
		}
	}
	for _, bad := range []string{"", "1.2.3", "fe80::1%eth0", "localhost", "1.2.3.4:80"} {
		if w, err := ParseIP(bad, le); err == nil {
			t.Errorf("ParseIP(%q) = %#x, want an error", bad, w)
		}
	}
}

// TestIPBigEndian: the same address bytes give different words in the two
// orders, and each order reads back only its own words.
func TestIPBigEndian(t *testing.T) {
	a := netip.MustParseAddr("10.1.2.3")
	le, be := AddrWords(a, binary.LittleEndian), AddrWords(a, binary.BigEndian)
	if le[0] != 0x0302010a || be[0] != 0x0a010203 {
		t.Fatalf("words: le %#x be %#x", le, be)
	}
	if s, _ := FormatIP(be, binary.LittleEndian); s != "3.2.1.10" {
		t.Errorf("big-endian words read as little-endian: %s", s)
	}
}

func TestDevBothWays(t *testing.T) {
	tests := []struct {
		v    uint64
		odev bool
		text string
	}{
		{8<<20 | 1, false, "8:1"},
		{0, false, "0:0"},
		{136<<20 | 3, false, "136:3"},
		{259<<20 | 0xfffff, false, "259:1048575"},
		{0x801, true, "8:1"},                        // glibc makedev(8, 1)
		{0x0000_1000_1230_0045, true, "4096:74565"}, // both parts above glibc's low fields
	}
	for _, tc := range tests {
		if got := FormatDev(tc.v, tc.odev); got != tc.text {
			t.Errorf("FormatDev(%#x, %v) = %q, want %q", tc.v, tc.odev, got, tc.text)
		}
		if got, ok := ParseDev(tc.text, tc.odev); !ok || got != tc.v {
			t.Errorf("ParseDev(%q, %v) = %#x, %v; want %#x", tc.text, tc.odev, got, ok, tc.v)
		}
	}
	if DevMajor(8<<20|1) != 8 || DevMinor(8<<20|1) != 1 {
		t.Error("DevMajor/DevMinor")
	}
	for _, bad := range []string{"8", "8:", ":1", "a:b", "8:1048576", "-1:0", "17592186044416:0"} {
		if v, ok := ParseDev(bad, false); ok {
			t.Errorf("ParseDev(%q) = %#x, want failure", bad, v)
		}
	}
	// The kernel's encoding of a 64-bit value: a major of up to 44 bits,
	// as AppendDev prints it (crit's Python ints have no bound).
	if v, ok := ParseDev("4294967296:0", false); !ok || v != 1<<52 || FormatDev(v, false) != "4294967296:0" {
		t.Errorf(`ParseDev("4294967296:0") = %#x, %v`, v, ok)
	}
	if v, ok := ParseDev("4294967296:0", true); ok {
		t.Errorf("glibc encoding: ParseDev(%q) = %#x, want failure", "4294967296:0", v)
	}
	if v, ok := ParseDev(" 8 : 1 ", false); !ok || v != 8<<20|1 {
		t.Errorf("ParseDev with spaces = %#x, %v", v, ok)
	}
}

// TestFieldTextBothWays: every kind of annotated integer field, printed as
// crit prints it and read back.
func TestFieldTextBothWays(t *testing.T) {
	prot := fieldOf(images.Options{Flags: "mmap.prot"}, "prot")
	state := fieldOf(images.Options{Dict: "gen"}, "task_state")
	family := fieldOf(images.Options{Dict: "sk"}, "family")
	tests := []struct {
		name   string
		f      Field
		v      uint64
		signed bool
		hex    bool
		text   string
		str    bool
	}{
		{"plain", Field{}, 42, false, false, "42", false},
		{"negative", Field{}, uint64(1<<64 - 5), true, false, "-5", false},
		{"hex", Field{Hex: true}, 0x1f, false, false, "0x1f", true},
		{"inherited hex", Field{}, 0, false, true, "0x0", true},
		{"negative hex", Field{Hex: true}, uint64(1<<64 - 0x1f), true, false, "-0x1f", true},
		{"flags table unknown", Field{FlagsHex: true}, 0x10, false, false, "0x10", true},
		{"dev", Field{Dev: true}, 8<<20 | 1, false, false, "8:1", true},
		{"odev", Field{Dev: true, ODev: true}, 0x801, false, false, "8:1", true},
		{"flags", prot, 3, false, false, "PROT_READ | PROT_WRITE", true},
		{"flags none", prot, 0, false, false, "", true}, // crit prints "" for no flags
		{"task state", state, 2, false, false, "DEAD", true},
		{"task state unknown", state, 9, false, false, "9", false},
		{"dict", family, 10, false, false, "INET6", true},
	}
	for _, tc := range tests {
		got, str := tc.f.AppendText(nil, tc.v, tc.signed, tc.hex)
		if string(got) != tc.text || str != tc.str {
			t.Errorf("%s: AppendText(%d) = %q (string %v), want %q (string %v)", tc.name, tc.v, got, str, tc.text, tc.str)
		}
		neg, mag, ok := tc.f.ParseText(tc.text)
		v := mag
		if neg {
			v = -mag
		}
		if !ok || v != tc.v {
			t.Errorf("%s: ParseText(%q) = %v %d %v, want %d", tc.name, tc.text, neg, mag, ok, tc.v)
		}
	}
	// crit's spellings of task states parse at crit's values (bug B7).
	if _, v, ok := state.ParseText("Zombie"); !ok || v != 3 {
		t.Errorf("crit's Zombie = %d, %v", v, ok)
	}
	if _, _, ok := family.ParseText("NOPE"); ok {
		t.Error("unknown dict name parsed")
	}
	if TaskStateName(1) != "ALIVE" || TaskStateName(6) != "ZOMBIE" || TaskStateName(77) != "77" {
		t.Error("TaskStateName")
	}
	if !(&Field{Dev: true}).Annotated() || (&Field{}).Annotated() {
		t.Error("Annotated")
	}
	_ = flagnames.TaskStates
}

func TestPyInt(t *testing.T) {
	tests := []struct {
		in   string
		neg  bool
		mag  uint64
		fail bool
	}{
		{in: "0", mag: 0}, {in: " 42 ", mag: 42}, {in: "-7", neg: true, mag: 7}, {in: "+7", mag: 7},
		{in: "0x1F", mag: 31}, {in: "0o17", mag: 15}, {in: "0b101", mag: 5}, {in: "1_000", mag: 1000},
		{in: "0x_ff", mag: 255}, {in: "-0", mag: 0}, {in: "000", mag: 0},
		{in: "", fail: true}, {in: "012", fail: true}, {in: "1__0", fail: true}, {in: "_1", fail: true},
		{in: "1e3", fail: true}, {in: "18446744073709551616", fail: true},
	}
	for _, tc := range tests {
		neg, mag, ok := PyInt(tc.in)
		if ok == tc.fail || ok && (neg != tc.neg || mag != tc.mag) {
			t.Errorf("PyInt(%q) = %v, %d, %v; want %v, %d, %v", tc.in, neg, mag, ok, tc.neg, tc.mag, !tc.fail)
		}
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 512: "512 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 4096: "4.0 KiB",
		4097: "4.1 KiB", 10 << 10: "10 KiB", 10<<10 - 1: "10 KiB", 118784: "116 KiB", 123456: "121 KiB",
		1<<20 - 1: "1.0 MiB", 1 << 30: "1.0 GiB", 1<<64 - 1: "16 EiB",
	} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestCritSize: crit's show --nopl sizes (the values are Python's
// "%.1f" % (n/1024.0**k), checked with python3).
func TestCritSize(t *testing.T) {
	for n, want := range map[uint64]string{0: "0B", 3: "3B", 1023: "1023B", 1024: "1KB", 1536: "1.5KB", 4096: "4KB", 114688: "112KB", 1 << 20: "1MB", 1500000: "1.4MB"} {
		if got := CritSize(n); got != want {
			t.Errorf("CritSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestJSONString checks AppendJSONString against encoding/json with HTML
// escaping off, the form it stands for.
func TestJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "a&b<c>", "tab\tnl\ncr\r\b\f\x00\x1f\x7f", "caf\xc3\xa9", "bad\xff\xfebytes", "\u2028\u2029", "😀", "\xed\xa0\x80"} {
		if got, want := AppendJSONString(nil, s), stdJSON(s); !bytes.Equal(got, want) {
			t.Errorf("AppendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

func stdJSON(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// FuzzParsers: no parser panics; whatever one accepts prints back to a
// form that parses to the same value; JSON strings match encoding/json.
func FuzzParsers(f *testing.F) {
	for _, s := range []string{"8:1", "127.0.0.1", "::1", "PROT_READ | PROT_EXEC", "0x1f", "ALIVE", "Zombie", "LISTEN", "-12", "1_000", " 7:8 ", "\xff"} {
		f.Add(s)
	}
	fields := []Field{
		{}, {Hex: true}, {Dev: true}, {Dev: true, ODev: true},
		fieldOf(images.Options{Flags: "mmap.prot"}, "prot"),
		fieldOf(images.Options{Flags: "mmap.flags"}, "flags"),
		fieldOf(images.Options{Dict: "gen"}, "task_state"),
		fieldOf(images.Options{Dict: "sk"}, "state"),
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			if w, err := ParseIP(s, order); err == nil {
				back, err := FormatIP(w, order)
				if err != nil {
					t.Fatalf("ParseIP(%q) = %#x, which does not format: %v", s, w, err)
				}
				if w2, err := ParseIP(back, order); err != nil || !slices.Equal(w, w2) {
					t.Fatalf("IP %q -> %#x -> %q -> %#x", s, w, back, w2)
				}
			}
		}
		for _, fl := range fields {
			neg, mag, ok := fl.ParseText(s)
			if !ok {
				continue
			}
			v := mag
			if neg {
				v = -mag
			}
			text, _ := fl.AppendText(nil, v, neg, false)
			neg2, mag2, ok := fl.ParseText(string(text))
			v2 := mag2
			if neg2 {
				v2 = -mag2
			}
			if !ok || v2 != v {
				t.Fatalf("%+v: %q -> %d -> %q -> %d (%v)", fl, s, v, text, v2, ok)
			}
		}
		if got, want := AppendJSONString(nil, s), stdJSON(s); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}
