package explore_test

import (
	"bytes"
	"strings"
	"testing"
)

func TestSocketsTCP(t *testing.T) {
	dir := ""
	for _, d := range corpusDirs(t) {
		if strings.HasSuffix(d, "/tcp") {
			dir = d
		}
	}
	if dir == "" {
		t.Skip("no tcp dump")
	}
	v, err := mustExplorer(t, dir).Sockets()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := v.Text(&b); err != nil {
		t.Fatal(err)
	}
	// The case (MANIFEST.txt): TCP listeners on 127.0.0.1:47310 and
	// [::1]:47311, established pairs, UDP bound to 127.0.0.1:47312, all
	// held by pid 19347.
	for _, want := range []string{
		"tcp    LISTEN          0      8 127.0.0.1:47310                          0.0.0.0:*",
		"tcp    LISTEN          0      8 [::1]:47311                              [::]:*",
		"udp    UNCONN          0      0 127.0.0.1:47312                          0.0.0.0:*",
		`users:(("tcp-corpus",pid=19347,fd=3))`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("sockets lack %q:\n%s", want, b.String())
		}
	}
	if n := strings.Count(b.String(), "ESTAB"); n != 5 {
		t.Errorf("%d established sockets, wanted 5 (two TCP pairs, one connected UDP)", n)
	}
}
