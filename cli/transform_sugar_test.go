package cli

import "testing"

// TestTransformSugarCaret checks that critq transform's --kind/--where/--set
// errors show the flag the user typed with the caret under the fault, and
// exit 3; a malformed --set is a usage error.
func TestTransformSugarCaret(t *testing.T) {
	const d = "../testdata/dumps/sleep-plain"
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--kind", "files", "--where", "e.typ == REG", "--set", `reg.name="/x"`}, exitCompile,
			"critq: rule 1 (--kind files): ERROR: --where:1:2: undefined field 'typ'; did you mean 'type'?\n | e.typ == REG\n | .^\n"},
		{[]string{"--kind", "files", "--where", "e.type == REG", "--set", `reg.name="/x"`, "--set", `reg.pos=e.reg.pos + "a"`}, exitCompile,
			"critq: rule 1 (--kind files): ERROR: --set:1:19: found no matching overload for '_+_' applied to '(uint, string)'\n | reg.pos=e.reg.pos + \"a\"\n | ..................^\n"},
		{[]string{"--rule", "files: e", "--kind", "files", "--set", `reg.pos="x"`}, exitCompile,
			"critq: rule 2 (--kind files): ERROR: --set:1:9: with(): reg.pos is an integer (uint64), not string\n | reg.pos=\"x\"\n | ........^\n"},
		{[]string{"--kind", "files", "--set", "reg.pos"}, exitUsage, "critq: transform: --set \"reg.pos\": want PATH=EXPR\n"},
		{[]string{"--kind", "files"}, exitUsage, "critq: transform: --kind needs --set PATH=EXPR or --drop (not both)\n"},
	} {
		args := append(append([]string{"transform", "--dry-run"}, tt.args...), d)
		_, stderr, code := runCLI(t, nil, args...)
		if code != tt.code || stderr != tt.stderr {
			t.Errorf("critq %q: exit %d, stderr\n%s\nwanted exit %d, stderr\n%s", args, code, stderr, tt.code, tt.stderr)
		}
	}
}
