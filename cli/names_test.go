package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"

	"github.com/critq/critq/query"
)

// TestEnumNamesInHumanOutput: in pretty and table output a task's state and
// a socket's family, type, state and protocol are names; JSON keeps the
// numbers unless --names is given. Each name is checked against the number
// JSON prints: it must be the dialect's constant of that value.
func TestEnumNamesInHumanOutput(t *testing.T) {
	const d = "../testdata/dumps/tcp"
	const expr = `sockets.map(s, [s.family, s.type, s.state, s.proto])`
	consts := map[string]uint64{}
	for _, c := range query.Constants() {
		if u, ok := c.Value.(types.Uint); ok {
			consts[c.Name] = uint64(u)
		}
	}
	plain, _, code := runCLI(t, nil, "--format", "json", expr, d)
	var nums [][]uint64
	if code != exitOK || json.Unmarshal([]byte(plain), &nums) != nil || len(nums) == 0 {
		t.Fatalf("json: exit %d, %q", code, plain)
	}
	for _, args := range [][]string{{"--format", "pretty"}, {"--names"}} {
		out, errs, code := runCLI(t, nil, append(args, expr, d)...)
		var names [][]string
		if code != exitOK || json.Unmarshal([]byte(out), &names) != nil || len(names) != len(nums) {
			t.Fatalf("%v: exit %d, %q %s", args, code, out, errs)
		}
		prefixes := []string{"AF_", "SOCK_", "TCP_", "IPPROTO_"}
		for i := range nums {
			for j, n := range names[i] {
				if !strings.HasPrefix(n, prefixes[j]) || consts[n] != nums[i][j] {
					t.Errorf("%v: socket %d field %d: %s (%d), JSON says %d", args, i, j, n, consts[n], nums[i][j])
				}
			}
		}
	}
	out, _, _ := runCLI(t, nil, "--format", "table", `tasks.map(t, {"pid": t.pid, "state": t.state})`, d)
	if !strings.Contains(out, "ALIVE") {
		t.Errorf("table of states: %q", out)
	}
	out, _, _ = runCLI(t, nil, "--format", "table", `tasks`, d)
	if !strings.Contains(out, "ALIVE") {
		t.Errorf("table of tasks: %q", out)
	}
	out, _, _ = runCLI(t, nil, "--format", "json", `tasks.map(t, t.state)`, d)
	if out != "[1]\n" {
		t.Errorf("json state: %q, want the number", out)
	}
}
