package cli

import (
	"strings"
	"testing"
)

func TestNearCommand(t *testing.T) {
	for _, tt := range []struct{ arg, want string }{
		{"infoo", "info"}, {"decod", "decode"}, {"fdss", "fds"}, {"transfrom", "transform"},
		{"tasks", ""},        // a variable: an expression
		{"taskz", ""},        // near no command: the query says "did you mean 'tasks'?"
		{"vmas.size()", ""},  // an expression
		{"y", ""},            // too short to be a typo of x
		{"zzzzzzzzzzzz", ""}, // near nothing
	} {
		if got := nearCommand(tt.arg); got != tt.want {
			t.Errorf("nearCommand(%q) = %q, want %q", tt.arg, got, tt.want)
		}
	}
	_, stderr, code := runCLI(t, nil, "infoo", "../testdata/dumps/sleep-plain/pstree.img")
	if code != exitUsage || !strings.Contains(stderr, `did you mean "info"?`) {
		t.Errorf("critq infoo: exit %d, stderr %q", code, stderr)
	}
}
