package cli

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestTransformDryRunPreview: adding --dry-run to a working -o OUT or
// --in-place command writes nothing and lists exactly the files that the
// command then writes, with their sizes.
func TestTransformDryRunPreview(t *testing.T) {
	const rule = `files: e.isk.ino == 382118u ? e.with({"isk.src_port": 47400}) : e`
	lineRE := regexp.MustCompile(`^would (?:write|rewrite) (\S+): (?:rewritten, |(?:copied|hard-linked \(copied where a link fails\)) from \S+, )?(\d+) bytes`)
	for _, mode := range [][]string{{"-o"}, {"-o", "--link"}, {"--in-place"}, {"--in-place", "--no-backup"}} {
		t.Run(strings.Join(mode, " "), func(t *testing.T) {
			dir := transformDump(t, "tcp")
			out := filepath.Join(t.TempDir(), "out")
			args := []string{"transform", rule, dir}
			target := dir
			if mode[0] == "-o" {
				args = append(args, "-o", out)
				target = out
				args = append(args, mode[1:]...)
			} else {
				args = append(args, mode...)
			}
			before := snapshot(t, dir)
			preview, stderr, code := runCLI(t, nil, append(args, "--dry-run")...)
			if code != exitOK {
				t.Fatalf("--dry-run: exit %d: %s", code, stderr)
			}
			if !strings.Contains(stderr, "dry run: 1 image(s) would be rewritten, nothing written: files.img") {
				t.Errorf("stderr: %s", stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatalf("--dry-run created %s", out)
			}
			if !maps.Equal(before, snapshot(t, dir)) {
				t.Fatalf("--dry-run changed the dump")
			}
			// The preview: the diff, then one line a file.
			want := map[string]string{}
			for _, l := range strings.Split(preview, "\n") {
				if m := lineRE.FindStringSubmatch(l); m != nil {
					want[m[1]] = m[2]
				} else if strings.HasPrefix(l, "would") {
					t.Errorf("unparsed line %q", l)
				}
			}
			if _, stderr, code := runCLI(t, nil, args...); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := map[string]string{}
			after := snapshot(t, target)
			for name, data := range after {
				if mode[0] == "--in-place" && maps.Equal(map[string]string{name: data}, map[string]string{name: before[name]}) {
					continue // untouched by the run
				}
				got[filepath.Join(target, name)] = fmt.Sprint(len(data))
			}
			if mode[0] == "--in-place" && len(mode) == 1 {
				if _, ok := after["files.img.orig"]; !ok || !strings.Contains(preview, "old image kept as files.img.orig") {
					t.Errorf("backup: written %v, previewed %v", ok, strings.Contains(preview, ".orig"))
				}
				delete(got, filepath.Join(target, "files.img.orig"))
			}
			if !maps.Equal(got, want) {
				t.Errorf("wrote %v\npreviewed %v", keys(got), keys(want))
				for k, v := range got {
					if want[k] != v {
						t.Errorf("%s: wrote %s bytes, previewed %q", k, v, want[k])
					}
				}
			}
		})
	}
}

func keys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
