package flagnames_test

import (
	"fmt"
	"testing"

	"github.com/critq/critq/flagnames"
)

// The examples of format.md section 7.3, as crit prints them.
func TestFormat(t *testing.T) {
	tests := []struct {
		table string
		v     uint64
		want  string
	}{
		{"mmap.prot", 5, "PROT_READ | PROT_EXEC"},
		{"mmap.flags", 0x22, "MAP_PRIVATE | MAP_ANON"},
		{"mmap.status", 0x41, "VMA_AREA_REGULAR | VMA_FILE_PRIVATE"},
		{"rfile.flags", 0o2000002, "O_RDWR | O_CLOEXEC"},
		{"pmap.flags", 4, "PE_PRESENT"},
		{"pmap.flags", 0x10004, "PE_PRESENT | 0x10000"},
		{"mmap.prot", 0, ""},
		{"mmap.status", 1 << 16, "0x10000"}, // VMA_AREA_GUARD: not in crit's table
		{"seals.flags", 0x1f, "F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE"},
	}
	for _, tt := range tests {
		if got := flagnames.Format(flagnames.Table(tt.table), tt.v); got != tt.want {
			t.Errorf("Format(%s, %#x) = %q, want %q", tt.table, tt.v, got, tt.want)
		}
		if got, ok := flagnames.Parse(flagnames.Table(tt.table), tt.want); !ok || got != tt.v {
			t.Errorf("Parse(%s, %q) = %#x, %v; want %#x", tt.table, tt.want, got, ok, tt.v)
		}
	}
	for _, s := range []string{"PROT_READ | PROT_BOGUS", "0xzz"} {
		if _, ok := flagnames.Parse(flagnames.Table("mmap.prot"), s); ok {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
}

func TestDictAndTaskStates(t *testing.T) {
	if n, ok := flagnames.Name(flagnames.Dict("sk", "state"), 10); !ok || n != "LISTEN" {
		t.Errorf("sk state 10 = %q", n)
	}
	// compel: 3 is STOPPED and 6 is ZOMBIE; crit 4.2 printed them swapped (bug B7).
	for _, tt := range []struct {
		name string
		v    uint64
	}{{"ALIVE", 1}, {"DEAD", 2}, {"STOPPED", 3}, {"ZOMBIE", 6}, {"Alive", 1}, {"Zombie", 3}, {"Stopped", 6}} {
		if v, ok := flagnames.ParseTaskState(tt.name); !ok || v != tt.v {
			t.Errorf("ParseTaskState(%q) = %d, %v; want %d", tt.name, v, ok, tt.v)
		}
	}
}

func ExampleFormat() {
	fmt.Println(flagnames.Format(flagnames.Table("mmap.prot"), 7))
	// Output: PROT_READ | PROT_WRITE | PROT_EXEC
}
