package rules

import (
	"testing"
)

// TestSugarCarets checks that the errors of a rule written as flags point
// into the flag the user wrote, with its text under the message: never
// into the expression the flags make.
func TestSugarCarets(t *testing.T) {
	for _, tt := range []struct {
		name string
		s    Sugar
		want string
	}{
		{"where: a misspelt field",
			Sugar{Kind: "files", Where: "e.typ == REG", Sets: []string{`reg.name="/x"`}},
			"rule 1: ERROR: --where:1:2: undefined field 'typ'; did you mean 'type'?\n | e.typ == REG\n | .^"},
		{"where: a missing operand",
			Sugar{Kind: "files", Where: "e.type ==", Drop: true},
			"rule 1: ERROR: --where:1:10: Syntax error: mismatched input ')' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | e.type ==\n | .........^"},
		{"where: no truth value",
			Sugar{Kind: "files", Where: `"a"`, Drop: true},
			"rule 1: ERROR: --where:1:1: found no matching overload for '_?_:_' applied to '(string, critq.images.file_entry, critq.images.file_entry)'\n | \"a\"\n | ^"},
		{"set: the second one's value",
			Sugar{Kind: "files", Where: "e.type == REG", Sets: []string{`reg.name="/x"`, `reg.pos=e.reg.pos + "a"`}},
			"rule 1: ERROR: --set:1:19: found no matching overload for '_+_' applied to '(uint, string)'\n | reg.pos=e.reg.pos + \"a\"\n | ..................^"},
		{"set: a misspelt path",
			Sugar{Kind: "files", Sets: []string{`reg.nam="/x"`}},
			"rule 1: ERROR: --set:1:1: with(): reg.nam: no field \"nam\" in critq.images.reg_file_entry (fields: id, flags, pos, fown, name, mnt_id, size, ext, mode, build_id, checksum, checksum_config, checksum_parameter)\n | reg.nam=\"/x\"\n | ^"},
		{"set: a path after spaces, a value of the wrong type",
			Sugar{Kind: "files", Sets: []string{` reg.pos = "x"`}},
			"rule 1: ERROR: --set:1:12: with(): reg.pos is an integer (uint64), not string\n |  reg.pos = \"x\"\n | ...........^"},
		{"set: a value over two lines",
			Sugar{Kind: "files", Sets: []string{"reg.pos=1 +\n  e.nope"}},
			"rule 1: ERROR: --set:2:4: undefined field 'nope'\n |   e.nope\n | ...^"},
		{"set: a character wider than a byte before the fault",
			Sugar{Kind: "files", Sets: []string{`reg.name="é" + e.nope`}},
			"rule 1: ERROR: --set:1:17: undefined field 'nope'\n | reg.name=\"é\" + e.nope\n | ..........\uff0e.....^"},
	} {
		src, err := tt.s.Source("rule 1")
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		_, err = CompileRules([]RuleSource{src}, RuleOptions{})
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: error\n%v\nwanted\n%s", tt.name, err, tt.want)
		}
	}
	for _, s := range []Sugar{{Kind: "files"}, {Kind: "files", Drop: true, Sets: []string{"a=1"}}, {Kind: "files", Sets: []string{"reg.pos"}}, {Kind: "files", Sets: []string{" =1"}}} {
		if _, err := s.Source("rule 1"); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}
