package query

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestAddViewRefuses: a name that is taken, a message that is not
// registered, a view without Build, and any view once the environment is
// built are refused (cli adds problems from an init function, before).
func TestAddViewRefuses(t *testing.T) {
	build := func(context.Context, *Dump) ([]proto.Message, error) { return nil, nil }
	if _, err := NewEnv(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v    AddedView
		want string
	}{
		{AddedView{Name: "tasks", Message: "critq.views.task", Build: build}, "the name is taken"},
		{AddedView{Name: "pstree", Message: "critq.views.task", Build: build}, "the name is taken"},
		{AddedView{Name: "x", Message: "critq.views.nothing", Build: build}, "not a registered message"},
		{AddedView{Name: "x", Message: "critq.views.task"}, "needs a name and a Build"},
		{AddedView{Name: "x", Message: "critq.views.task", Build: build}, "already built"},
	} {
		err := AddView(tc.v)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddView(%q, %q): %v; want %q", tc.v.Name, tc.v.Message, err, tc.want)
		}
	}
	for _, v := range Vars() {
		if v.Name == "x" {
			t.Error("a refused view was added")
		}
	}
}
