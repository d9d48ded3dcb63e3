package cli

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// schemaVersion is the CRIU release whose image schema critq reads and
// writes (proto/, magic/).
const schemaVersion = "CRIU 4.2"

// celModule is the module path of cel-go in go.mod.
const celModule = "cel.dev/cel-go"

func init() {
	register(&command{name: "version", summary: "print critq's version, revision, Go and cel-go versions", run: runVersion})
}

const versionUsage = `usage: critq version [--format text|json]
       critq --version

Prints the version of this binary from its build information: the module
version when it was built by go install MODULE@VERSION, else the VCS
revision it was built from (with "modified" when the work tree had
uncommitted changes), and the Go, CRIU schema and cel-go versions.
`

// buildVersion is what the build information says about this binary.
type buildVersion struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
	Schema   string `json:"schema"`
	CelGo    string `json:"cel_go"`
}

// readBuildVersion reads the build information of the running binary.
func readBuildVersion() buildVersion {
	v := buildVersion{Version: "devel", Schema: schemaVersion, Go: "unknown", CelGo: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	return versionOf(bi)
}

// versionOf takes the versions from bi.
func versionOf(bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Version: "devel", Schema: schemaVersion, Go: bi.GoVersion, CelGo: "unknown"}
	if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
		v.Version = mv
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	for _, d := range bi.Deps {
		if d.Path == celModule || d.Path == "github.com/google/cel-go" {
			if d.Replace != nil {
				d = d.Replace
			}
			v.CelGo = d.Version
		}
	}
	return v
}

// String is the line of --version: the version, then the revision when
// the version does not already name it.
func (v buildVersion) String() string {
	s := "critq " + v.Version
	if v.Revision != "" && !strings.Contains(v.Version, shortRev(v.Revision)) {
		s += " (revision " + v.Revision
		if v.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return fmt.Sprintf("%s %s, schema %s, cel-go %s", s, v.Go, v.Schema, v.CelGo)
}

// shortRev is the revision prefix a Go pseudo-version carries.
func shortRev(rev string) string {
	return rev[:min(len(rev), 12)]
}

func runVersion(c *cli, args []string) error {
	fs := c.newFlags("version", versionUsage)
	format := fs.String("format", "text", "output `format`: "+strings.Join(formatsOf("version"), ", "))
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("version: %s", firstLine(versionUsage))
	}
	if err := checkFormat("version", *format); err != nil {
		return err
	}
	v := readBuildVersion()
	if *format == "json" {
		return writeJSONLine(c.stdout, v)
	}
	_, err = fmt.Fprintln(c.stdout, v)
	return err
}
