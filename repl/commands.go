package repl

import (
	"fmt"
	"strconv"
	"strings"
)

// Cmd is one parsed line of the REPL: an expression to evaluate or a
// command.
type Cmd interface{ usage() string }

// Eval evaluates an expression against the current dump.
type Eval struct{ Expr string }

// Help lists the commands.
type Help struct{}

// Vars lists the names an expression can use, with their types.
type Vars struct{}

// TypeOf prints the type of an expression without evaluating it.
type TypeOf struct{ Expr string }

// Let binds a name to an expression.
type Let struct{ Name, Expr string }

// Unlet removes a binding.
type Unlet struct{ Name string }

// Load opens a dump and makes it current.
type Load struct{ Path string }

// Dumps lists the loaded dumps, or with N > 0 makes the Nth current.
type Dumps struct{ N int }

// Format sets the output format.
type Format struct{ Name string }

// Transform previews a rewrite rule, KIND: EXPR, on the current dump.
type Transform struct{ Rule string }

// Time turns the report of evaluation time and images read on or off.
type Time struct{ On bool }

// Quit ends the session.
type Quit struct{}

// Usage of each command, shown by :help and by a command's parse error.
const (
	usageEval   = "EXPR                  evaluate a CEL expression against the current dump"
	usageHelp   = ":help                 list the commands"
	usageVars   = ":vars                 list the names an expression can use, with their types"
	usageType   = ":type EXPR            print the type of EXPR without evaluating it"
	usageLet    = ":let NAME = EXPR      bind NAME to EXPR for later expressions"
	usageUnlet  = ":unlet NAME           remove the binding of NAME"
	usageLoad   = ":load DUMP            open a dump and make it the current one"
	usageDumps  = ":dumps [N]            list the loaded dumps, or switch to the Nth"
	usageFormat = ":format pretty|json|ndjson|table  how results are printed"
	usageTime   = ":time on|off          report evaluation time and images read"
	usageTrans  = ":transform KIND: EXPR preview a rule of critq transform on the current dump (writes nothing)"
	usageQuit   = ":quit                 leave (also Ctrl-D)"
)

func (Eval) usage() string      { return usageEval }
func (Help) usage() string      { return usageHelp }
func (Vars) usage() string      { return usageVars }
func (TypeOf) usage() string    { return usageType }
func (Let) usage() string       { return usageLet }
func (Unlet) usage() string     { return usageUnlet }
func (Load) usage() string      { return usageLoad }
func (Dumps) usage() string     { return usageDumps }
func (Format) usage() string    { return usageFormat }
func (Time) usage() string      { return usageTime }
func (Transform) usage() string { return usageTrans }
func (Quit) usage() string      { return usageQuit }

// commandNames returns the commands in the order :help lists them.
func commandNames() []string {
	return []string{":help", ":vars", ":type", ":let", ":unlet", ":load", ":dumps", ":format", ":time", ":transform", ":quit"}
}

// helpText is what :help prints.
func helpText() string {
	var b strings.Builder
	b.WriteString("Enter a CEL expression, or a command:\n")
	for _, c := range []Cmd{Eval{}, Help{}, Vars{}, TypeOf{}, Let{}, Unlet{}, Load{}, Dumps{}, Format{}, Time{}, Transform{}, Quit{}} {
		b.WriteString("  " + c.usage() + "\n")
	}
	b.WriteString("An expression continues on the next line while a bracket or string is open.\n" +
		"Tab completes names, fields after '.', functions and commands; Ctrl-C stops an evaluation.\n")
	return b.String()
}

// ParseError is a line that is no valid command.
type ParseError struct {
	Msg   string
	Usage string
}

func (e *ParseError) Error() string {
	if e.Usage == "" {
		return e.Msg
	}
	return e.Msg + "\nusage: " + e.Usage
}

// Parse parses a line of input. A line that starts with ':' is a command;
// any other non-blank line is an expression. Commands may be abbreviated to
// a unique prefix (":q").
func Parse(line string) (Cmd, error) {
	s := strings.TrimSpace(line)
	if s == "" {
		return nil, &ParseError{Msg: "empty input"}
	}
	if s[0] != ':' {
		return Eval{Expr: s}, nil
	}
	word, rest, _ := strings.Cut(s, " ")
	if i := strings.IndexAny(word, "\t\n"); i >= 0 {
		word, rest = word[:i], word[i:]+" "+rest
	}
	rest = strings.TrimSpace(rest)
	name, err := lookupCommand(word)
	if err != nil {
		return nil, err
	}
	switch name {
	case ":help":
		return Help{}, noArgs(rest, usageHelp)
	case ":vars":
		return Vars{}, noArgs(rest, usageVars)
	case ":quit":
		return Quit{}, noArgs(rest, usageQuit)
	case ":type":
		if rest == "" {
			return nil, &ParseError{Msg: ":type needs an expression", Usage: usageType}
		}
		return TypeOf{Expr: rest}, nil
	case ":let":
		n, expr, ok := strings.Cut(rest, "=")
		n = strings.TrimSpace(n)
		expr = strings.TrimSpace(expr)
		if !ok || n == "" || expr == "" || strings.HasPrefix(expr, "=") {
			return nil, &ParseError{Msg: ":let needs a name and an expression", Usage: usageLet}
		}
		return Let{Name: n, Expr: expr}, nil
	case ":unlet":
		if rest == "" || strings.ContainsAny(rest, " \t") {
			return nil, &ParseError{Msg: ":unlet needs one name", Usage: usageUnlet}
		}
		return Unlet{Name: rest}, nil
	case ":load":
		if rest == "" {
			return nil, &ParseError{Msg: ":load needs a dump directory", Usage: usageLoad}
		}
		return Load{Path: rest}, nil
	case ":dumps":
		if rest == "" {
			return Dumps{}, nil
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 {
			return nil, &ParseError{Msg: fmt.Sprintf(":dumps: %q is not a dump number", rest), Usage: usageDumps}
		}
		return Dumps{N: n}, nil
	case ":transform":
		if rest == "" {
			return nil, &ParseError{Msg: ":transform needs a rule", Usage: usageTrans}
		}
		return Transform{Rule: rest}, nil
	case ":format":
		switch rest {
		case "pretty", "json", "ndjson", "table":
			return Format{Name: rest}, nil
		}
		return nil, &ParseError{Msg: fmt.Sprintf(":format: unknown format %q", rest), Usage: usageFormat}
	default: // ":time"
		switch rest {
		case "on":
			return Time{On: true}, nil
		case "off":
			return Time{}, nil
		}
		return nil, &ParseError{Msg: ":time takes on or off", Usage: usageTime}
	}
}

func noArgs(rest, usage string) error {
	if rest != "" {
		return &ParseError{Msg: "unexpected " + strconv.Quote(rest), Usage: usage}
	}
	return nil
}

func lookupCommand(word string) (string, error) {
	var found []string
	for _, n := range commandNames() {
		if n == word {
			return n, nil
		}
		if strings.HasPrefix(n, word) {
			found = append(found, n)
		}
	}
	switch {
	case len(found) == 1 && word != ":":
		return found[0], nil
	case len(found) > 1 && word != ":":
		return "", &ParseError{Msg: fmt.Sprintf("ambiguous command %s: %s", word, strings.Join(found, ", "))}
	}
	return "", &ParseError{Msg: fmt.Sprintf("unknown command %s (:help lists them)", word)}
}
