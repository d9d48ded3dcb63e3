package cli

import (
	"encoding/json"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionOf: the module version of go install MODULE@VERSION wins;
// without one the revision and the modified flag are shown; cel-go's
// version comes from the deps.
func TestVersionOf(t *testing.T) {
	deps := []*debug.Module{{Path: "google.golang.org/protobuf", Version: "v1.36.12"}, {Path: celModule, Version: "v0.33.2"}}
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}
	for _, tc := range []struct {
		name     string
		bi       debug.BuildInfo
		text     string
		revision string
	}{
		{"go install @v1.2.3", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Deps: deps},
			"critq v1.2.3 go1.26.0, schema CRIU 4.2, cel-go v0.33.2", ""},
		{"clone, modified", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Deps: deps, Settings: vcs},
			"critq devel (revision 0123456789abcdef0123, modified) go1.26.8, schema CRIU 4.2, cel-go v0.33.2", "0123456789abcdef0123"},
		{"pseudo-version names the revision", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261202185740-0123456789ab+dirty"}, Deps: deps, Settings: vcs},
			"critq v0.0.0-20261202185740-0123456789ab+dirty go1.26.8, schema CRIU 4.2, cel-go v0.33.2", "0123456789abcdef0123"},
	} {
		v := versionOf(&tc.bi)
		if v.String() != tc.text || v.Revision != tc.revision {
			t.Errorf("%s: %q (revision %q), want %q", tc.name, v.String(), v.Revision, tc.text)
		}
	}
}

// TestVersionCommand: --version and version --format json agree, and the
// JSON names the Go, schema and cel-go versions of this binary.
func TestVersionCommand(t *testing.T) {
	text, _, code := runCLI(t, nil, "--version")
	if code != exitOK || !strings.HasPrefix(text, "critq ") {
		t.Fatalf("--version: exit %d, %q", code, text)
	}
	out, _, code := runCLI(t, nil, "version", "--format", "json")
	var v buildVersion
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != exitOK {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	// A test binary records no deps; .ci/run checks cel_go on critq itself.
	celGo := strings.Contains(string(gomod), "\t"+celModule+" "+v.CelGo+"\n")
	if bi, ok := debug.ReadBuildInfo(); ok && len(bi.Deps) == 0 {
		celGo = v.CelGo == "unknown"
	}
	if v.Schema != "CRIU 4.2" || v.Go != runtime.Version() || !celGo || text != v.String()+"\n" {
		t.Errorf("json %+v, text %q", v, text)
	}
}
