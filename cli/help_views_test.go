package cli

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// TestHelpViewType: critq help TYPE lists every field of the view's
// message (the generated descriptor is the oracle) with its type and the
// comment views.proto has above it.
func TestHelpViewType(t *testing.T) {
	for _, name := range []string{"task", "vma", "fd", "file", "socket", "mount", "pagemap"} {
		out, errs, code := runCLI(t, nil, "help", name)
		if code != exitOK || errs != "" {
			t.Fatalf("help %s: exit %d, %s", name, code, errs)
		}
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName("critq.views." + name))
		if err != nil {
			t.Fatal(err)
		}
		fields := d.(protoreflect.MessageDescriptor).Fields()
		for i := range fields.Len() {
			if f := fields.Get(i); !strings.Contains(out, "\n  "+string(f.Name())+" ") {
				t.Errorf("help %s: no line for field %s", name, f.Name())
			}
		}
	}
	out, _, _ := runCLI(t, nil, "help", "task")
	for _, want := range []string{"  state uint", "core.tc.task_state: ALIVE 1, DEAD 2", "  vmas list(critq.views.vma)"} {
		if !strings.Contains(out, want) {
			t.Errorf("help task lacks %q:\n%s", want, out)
		}
	}
}

// TestHelpFields: critq help fields lists each view with its type.
func TestHelpFields(t *testing.T) {
	out, _, code := runCLI(t, nil, "help", "fields")
	for _, want := range []string{"tasks", "list(critq.views.socket)", "critq help pagemap"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("help fields: exit %d, lacks %q", code, want)
		}
	}
}

// TestHelpUnknownTopic: an unknown topic is a usage error (exit 2) with
// a did-you-mean, not "no help for" with exit 0.
func TestHelpUnknownTopic(t *testing.T) {
	for _, tc := range []struct{ word, want string }{
		{"sockt", `did you mean "socket"?`},
		{"tsk", `did you mean "task"?`},
		{"zzzzzzzz", `no help for "zzzzzzzz"`},
	} {
		_, errs, code := runCLI(t, nil, "help", tc.word)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("help %s: exit %d, %q; want exit 2 and %q", tc.word, code, errs, tc.want)
		}
	}
}

// TestQuerySwappedArguments: critq DUMP EXPR says that the expression
// comes first; a misspelt field gets a did-you-mean.
func TestQuerySwappedArguments(t *testing.T) {
	const d = "../testdata/dumps/sleep-plain"
	_, errs, code := runCLI(t, nil, d, "tasks.size()")
	if code != exitUsage || !strings.Contains(errs, "the expression comes first") {
		t.Errorf("swapped: exit %d, %q", code, errs)
	}
	_, errs, code = runCLI(t, nil, "tasks.map(t, t.stat)", d)
	if code != exitCompile || !strings.Contains(errs, "did you mean 'state'?") {
		t.Errorf("misspelt field: exit %d, %q", code, errs)
	}
}
