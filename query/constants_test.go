package query

import (
	"testing"

	"cel.dev/cel-go/common/types"

	"github.com/critq/critq/flagnames"
	"github.com/critq/critq/proto/images"
)

func TestConstantsCoverCritTables(t *testing.T) {
	byName := map[string]Constant{}
	for _, c := range Constants() {
		if _, dup := byName[c.Name]; dup {
			t.Errorf("constant %s declared twice", c.Name)
		}
		byName[c.Name] = c
	}
	check := func(name string, want uint64) {
		t.Helper()
		c, ok := byName[name]
		if !ok {
			t.Errorf("constant %s missing", name)
			return
		}
		if c.Value != types.Uint(want) {
			t.Errorf("%s got %v, wanted %du", name, c.Value, want)
		}
	}
	for _, table := range flagnames.TableNames() {
		for _, f := range flagnames.Table(table) {
			check(f.Name, f.Value)
		}
	}
	for _, f := range flagnames.ExtraVMAStatus {
		check(f.Name, f.Value)
	}
	prefixes := map[string]string{"family": "AF_", "type": "SOCK_", "state": "TCP_", "proto": "IPPROTO_"}
	for field, prefix := range prefixes {
		for _, f := range flagnames.Dict("sk", field) {
			check(prefix+f.Name, f.Value)
		}
	}
	fd := images.FdTypes(0).Descriptor().Values()
	for i := range fd.Len() {
		v := fd.Get(i)
		if c := byName[string(v.Name())]; c.Value != types.Int(v.Number()) {
			t.Errorf("%s got %v, wanted %d", v.Name(), c.Value, v.Number())
		}
	}
}

func TestConstantsEval(t *testing.T) {
	runEvalCases(t, []evalCase{
		{src: "TASK_ALIVE", want: uint64(1)},
		{src: "TASK_DEAD", want: uint64(2)},
		{src: "TASK_STOPPED", want: uint64(3)},
		{src: "TASK_ZOMBIE", want: uint64(6)},
		{src: "PROT_READ | PROT_WRITE | PROT_EXEC", want: uint64(7)},
		{src: "MAP_SHARED", want: uint64(1)},
		{src: "MAP_ANON == MAP_ANONYMOUS", want: true},
		{src: "VMA_AREA_GUARD", want: uint64(1 << 16)},
		{src: "VMA_UNSUPP", want: uint64(1 << 31)},
		{src: "O_RDONLY", want: uint64(0)},
		{src: "O_CLOEXEC", want: uint64(0o2000000)},
		{src: "O_ACCMODE & O_RDWR", want: uint64(2)},
		{src: "F_SEAL_FUTURE_WRITE", want: uint64(0x10)},
		{src: "PE_PARENT | PE_LAZY | PE_PRESENT", want: uint64(7)},
		{src: "AF_UNIX", want: uint64(1)},
		{src: "AF_INET6", want: uint64(10)},
		{src: "AF_PACKET", want: uint64(17)},
		{src: "SOCK_PACKET", want: uint64(10)},
		{src: "SOCK_SEQPACKET", want: uint64(5)},
		{src: "TCP_ESTABLISHED", want: uint64(1)},
		{src: "TCP_LISTEN", want: uint64(10)},
		{src: "TCP_CLOSING", want: uint64(11)},
		{src: "IPPROTO_TCP", want: uint64(6)},
		{src: "IPPROTO_UDPLITE", want: uint64(136)},
		{src: "REG", want: int64(1)},
		{src: "PIPE", want: int64(2)},
		{src: "UNIXSK", want: int64(5)},
		{src: "AUTOFS_PIPE", want: int64(65535)},
		{src: "TASK_ZOMBIE == 6 && REG == 1u", want: true},
		{src: "dict(TASK_ZOMBIE, 'gen.task_state')", want: "ZOMBIE"},
		{src: "flags(PROT_READ | PROT_EXEC, 'mmap.prot')", want: "PROT_READ | PROT_EXEC"},
	})
}
