package query

import (
	"errors"
	"fmt"
	"strings"
)

// ParseRuleFile reads the rules of a rules file (critq transform -f): one
// rule a line, written `rule KIND: EXPR`. # starts a comment outside string
// literals; blank lines are skipped; a rule continues on the following lines
// while one of its brackets is open. name names the file in messages and in
// each rule's Where ("rules.critq:3").
func ParseRuleFile(name, text string) ([]RuleSource, error) {
	var out []RuleSource
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		first := i + 1
		body, depth, err := ruleLine(lines[i], 0)
		if err != nil {
			return nil, &RuleError{Where: fmt.Sprintf("%s:%d", name, first), Err: err}
		}
		stmt := body
		for depth > 0 && i+1 < len(lines) {
			i++
			body, depth, err = ruleLine(lines[i], depth)
			if err != nil {
				return nil, &RuleError{Where: fmt.Sprintf("%s:%d", name, i+1), Err: err}
			}
			stmt += "\n" + body
		}
		where := fmt.Sprintf("%s:%d", name, first)
		if depth > 0 {
			return nil, &RuleError{Where: where, Err: errors.New("a bracket is never closed")}
		}
		stmt = strings.TrimSpace(stmt)
		if stmt == "" {
			continue
		}
		rest, ok := strings.CutPrefix(stmt, "rule")
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			return nil, &RuleError{Where: where, Err: errors.New("expected a rule: rule KIND: EXPR")}
		}
		rs, err := ParseRule(where, strings.TrimSpace(rest))
		if err != nil {
			return nil, err
		}
		out = append(out, rs)
	}
	return out, nil
}

// ruleLine strips the comment of one line and returns the bracket depth at
// its end, starting from depth. Strings do not span lines (CEL's triple
// quoted strings are not supported in rule files).
func ruleLine(line string, depth int) (string, int, error) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return line[:i], depth, nil
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			if depth == 0 {
				return "", 0, fmt.Errorf("unbalanced %q", c)
			}
			depth--
		}
	}
	if quote != 0 {
		return "", 0, errors.New("unterminated string")
	}
	return line, depth, nil
}
