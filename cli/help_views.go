package cli

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/critq/critq/proto/critq/views"
	"github.com/critq/critq/query"
)

func init() {
	helpTopics["fields"] = fieldsHelp
}

// addViewTopics adds a help topic per message of views.proto (critq help
// task). It runs when a topic is first looked up, not at every start:
// parsing views.proto is work a query does not need.
var addViewTopics = sync.OnceFunc(func() {
	for _, m := range viewMessages() {
		helpTopics[m.name] = func() string { return m.help() }
	}
})

// viewMessage is one message of views.proto with its fields and the
// comments above them.
type viewMessage struct {
	name, doc string
	fields    []viewField
}

type viewField struct {
	name, typ, doc string
}

// viewMessages parses views.proto: each message, its comment, and each
// field with its type (in CEL's words) and the comment above it, joined
// into one line.
func viewMessages() []*viewMessage {
	var (
		out     []*viewMessage
		cur     *viewMessage
		comment []string
		depth   int
	)
	for _, line := range strings.Split(viewsproto.Source, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "//"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(line, "//")))
			continue
		case strings.HasPrefix(line, "message ") && depth == 0:
			name := strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(line, "message ")), "{")
			cur = &viewMessage{name: strings.TrimSpace(name), doc: strings.Join(comment, " ")}
			out = append(out, cur)
			depth = 1
		case strings.HasSuffix(line, "{"):
			depth++
		case line == "}":
			depth--
			if depth == 0 {
				cur = nil
			}
		case cur != nil && depth == 1 && (strings.HasPrefix(line, "optional ") || strings.HasPrefix(line, "repeated ")):
			f := strings.Fields(line)
			if len(f) >= 3 {
				typ := celTypeName(f[1])
				if f[0] == "repeated" {
					typ = "list(" + typ + ")"
				}
				cur.fields = append(cur.fields, viewField{name: f[2], typ: typ, doc: strings.Join(comment, " ")})
			}
		}
		comment = nil
	}
	return out
}

// celTypeName is the CEL name of a proto type of views.proto.
func celTypeName(t string) string {
	switch t {
	case "uint32", "uint64", "fixed32", "fixed64":
		return "uint"
	case "int32", "int64", "sint32", "sint64", "sfixed32", "sfixed64":
		return "int"
	case "string", "bytes", "bool", "double":
		return t
	case "float":
		return "double"
	}
	if !strings.Contains(t, ".") {
		return "critq.views." + t
	}
	return t
}

func (m *viewMessage) help() string {
	var b strings.Builder
	fmt.Fprintf(&b, "critq.views.%s: %s\n\nFields:\n", m.name, m.doc)
	w := 0
	for _, f := range m.fields {
		w = max(w, len(f.name)+len(f.typ)+1)
	}
	for _, f := range m.fields {
		b.WriteString(strings.TrimRight(fmt.Sprintf("  %-*s  %s", w, f.name+" "+f.typ, f.doc), " ") + "\n")
	}
	return b.String()
}

// fieldsHelp lists the views and where their fields are described.
func fieldsHelp() string {
	var b strings.Builder
	b.WriteString("The views of a dump and the type of their elements; critq help TYPE lists the\nfields of a type (critq help task, critq help socket, ...).\n\n")
	for _, v := range query.Vars() {
		t := v.Type.String()
		if !strings.Contains(t, "critq.views.") {
			continue
		}
		fmt.Fprintf(&b, "  %-9s %-28s critq help %s\n", v.Name, t, strings.TrimSuffix(t[strings.Index(t, "critq.views.")+len("critq.views."):], ")"))
	}
	return b.String()
}

// helpNames are the words critq help knows: topics and commands.
func helpNames() []string {
	var names []string
	addViewTopics()
	for t := range helpTopics {
		names = append(names, t)
	}
	for c := range commands {
		names = append(names, c)
	}
	sort.Strings(names)
	return names
}

// unknownHelp is the error for critq help WORD when WORD is no topic.
func unknownHelp(word string) error {
	if s := query.Suggest(word, helpNames()); s != "" {
		return usageErrorf("no help for %q; did you mean %q? (critq help lists the commands, critq help fields the views)", word, s)
	}
	return usageErrorf("no help for %q (critq help lists the commands, critq help fields the views)", word)
}

// swappedArgs returns the usage error for critq DUMP EXPR: the first
// argument, which did not compile, names a dump on disk and the second is
// not one.
func swappedArgs(pos []string) error {
	if len(pos) < 2 {
		return nil
	}
	if _, err := os.Stat(pos[0]); err != nil {
		return nil
	}
	if _, err := os.Stat(pos[1]); err == nil {
		return nil
	}
	return usageErrorf("%q is a dump, not an expression: the expression comes first (critq EXPR DUMP...)", pos[0])
}
