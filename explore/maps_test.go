package explore_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// procMaps reads a saved /proc/PID/maps. CRIU keeps [vvar] and
// [vvar_vclock] as one VMA, so the two lines are merged into one.
func procMaps(t *testing.T, file string) []string {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if len(b) == 0 {
		return nil // a zombie
	}
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if strings.HasSuffix(l, " [vvar_vclock]") && len(out) > 0 && strings.HasSuffix(out[len(out)-1], " [vvar]") {
			prev := out[len(out)-1]
			end := strings.Fields(l)[0][strings.IndexByte(l, '-')+1:]
			dash := strings.IndexByte(prev, '-')
			out[len(out)-1] = prev[:dash+1] + end + prev[dash+1+len(end):]
			continue
		}
		out = append(out, l)
	}
	return out
}

// mapFields returns the range, permissions, offset and path of a maps line.
func mapFields(l string) [4]string {
	f := strings.Fields(l)
	if len(f) < 5 {
		return [4]string{l}
	}
	path := ""
	if len(f) > 5 {
		// The path starts after the inode and the padding.
		i := strings.Index(l, " "+f[4]+" ") + len(f[4]) + 2
		path = strings.TrimLeft(l[i:], " ")
	}
	return [4]string{f[0], f[1], f[2], path}
}

func TestMapsProc(t *testing.T) {
	lines := 0
	for _, dir := range corpusDirs(t) {
		procDir := filepath.Join(dir, "proc")
		if strings.HasPrefix(filepath.Base(dir), "zdtm-") || filepath.Base(dir) == "dump" {
			continue
		}
		ents, err := os.ReadDir(procDir)
		if err != nil {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			e := mustExplorer(t, dir)
			for _, ent := range ents {
				pid, err := strconv.Atoi(ent.Name())
				if err != nil {
					continue
				}
				want := procMaps(t, filepath.Join(procDir, ent.Name(), "maps"))
				v, err := e.Maps(uint32(pid))
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, l := range v.Tasks[0].Lines {
					got = append(got, l.String())
				}
				if len(got) != len(want) {
					t.Errorf("pid %d: %d lines, wanted %d", pid, len(got), len(want))
					continue
				}
				for i := range got {
					g, w := mapFields(got[i]), mapFields(want[i])
					exact := strings.Contains(want[i], " 00:00 0 ")
					if g != w || (exact && got[i] != want[i]) {
						t.Errorf("pid %d line %d:\n got  %q\n want %q", pid, i+1, got[i], want[i])
					}
					lines++
				}
			}
		})
	}
	t.Logf("%d maps lines compared", lines)
}
