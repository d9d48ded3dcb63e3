package mem_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/mem"
	"github.com/critq/critq/proto/images"
)

// corpusDirs returns the dump folders to test (see package testcorpus).
func corpusDirs(t testing.TB) []string { return testcorpus.Dumps(t) }

// handMade returns the dump folders that saved their tasks' /proc views
// (proc/PID/...), skipping the predump chains.
func handMade(t testing.TB) []string {
	var out []string
	for _, dir := range corpusDirs(t) {
		if testcorpus.HandMade(dir) {
			out = append(out, dir)
		}
	}
	return out
}

func mustOpen(t testing.TB, dir string) (*dump.Dump, *mem.Memory) {
	t.Helper()
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := mem.Open(d)
	t.Cleanup(func() { m.Close() })
	return d, m
}

func pids(t testing.TB, d *dump.Dump) []uint32 {
	t.Helper()
	f := d.File("pstree.img")
	if f == nil {
		return nil
	}
	msgs, err := f.Messages()
	if err != nil {
		t.Fatal(err)
	}
	var out []uint32
	for _, m := range msgs {
		out = append(out, m.(*images.PstreeEntry).GetPid())
	}
	return out
}

func TestCmdlineEnvironCorpus(t *testing.T) {
	n := 0
	for _, dir := range handMade(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			d, m := mustOpen(t, dir)
			for _, pid := range pids(t, d) {
				procDir := filepath.Join(dir, "proc", strconv.Itoa(int(pid)))
				for _, c := range []struct {
					file string
					get  func(uint32) ([]string, error)
				}{{"cmdline", m.Cmdline}, {"environ", m.Environ}} {
					raw, err := os.ReadFile(filepath.Join(procDir, c.file))
					if err != nil {
						t.Fatal(err)
					}
					got, err := c.get(pid)
					if err != nil {
						t.Errorf("%s(%d): %v", c.file, pid, err)
						continue
					}
					want := []string{}
					if len(raw) > 0 {
						want = strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
					}
					if strings.Join(got, "\x00") != strings.Join(want, "\x00") || len(got) != len(want) {
						t.Errorf("%s(%d) got %q, wanted %q", c.file, pid, got, want)
					}
					n++
				}
			}
		})
	}
	t.Logf("%d cmdline/environ compared", n)
}

// markers parses the "Memory markers" section of a MANIFEST.txt: each
// marker with the pids whose pages hold it in the dump folder named
// folder. A MANIFEST above several dumps (a predump chain, evolve-pair)
// names each place FOLDER/pages-N.img; a place without a folder is in the
// one dump beside the MANIFEST.
func markers(t testing.TB, dir, folder string) map[string][]uint32 {
	b, err := os.ReadFile(filepath.Join(dir, "MANIFEST.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]uint32{}
	line := regexp.MustCompile(`^  '(CRITQ-MARKER-[^']*)': (.*)$`)
	place := regexp.MustCompile(`^(?:([^/ ]+)/)?pages-\d+\.img = pid (\d+) x\d+$`)
	for _, l := range strings.Split(string(b), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		for _, item := range strings.Split(m[2], ", ") {
			p := place.FindStringSubmatch(strings.TrimSpace(item))
			if p == nil {
				t.Fatalf("%s: marker %s: place %q not understood", dir, m[1], item)
			}
			if p[1] != "" && p[1] != folder {
				continue
			}
			n, _ := strconv.Atoi(p[2])
			out[m[1]] = append(out[m[1]], uint32(n))
		}
	}
	return out
}

func TestSearchMarkersCorpus(t *testing.T) {
	found := 0
	for _, dir := range corpusDirs(t) {
		manifest := dir
		if filepath.Base(dir) == "dump" {
			manifest = filepath.Dir(dir) // a predump chain keeps its MANIFEST above its dumps
		}
		want := markers(t, manifest, filepath.Base(dir))
		if len(want) == 0 {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			_, m := mustOpen(t, dir)
			keys := make([]string, 0, len(want))
			for k := range want {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, marker := range keys {
				hits := map[uint32]bool{}
				err := m.Search(mem.Literal([]byte(marker)), mem.SearchOptions{}, func(h mem.Match) error {
					vma, err := m.VMAAt(h.PID, h.Addr)
					if err != nil || vma == nil || h.Addr+uint64(len(h.Data)) > vma.GetEnd() {
						t.Errorf("%s at pid %d 0x%x is not inside a VMA (%v)", marker, h.PID, h.Addr, err)
					}
					if h.VMA != vma {
						t.Errorf("match VMA %v, wanted %v", h.VMA, vma)
					}
					b, err := m.Read(h.PID, h.Addr, len(marker))
					if err != nil || !bytes.Equal(b, []byte(marker)) {
						t.Errorf("Read(%d, 0x%x) = %q, %v", h.PID, h.Addr, b, err)
					}
					hits[h.PID] = true
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				for _, pid := range want[marker] {
					if !hits[pid] {
						t.Errorf("%s not found in pid %d (found in %v)", marker, pid, hits)
					}
					found++
				}
			}
		})
	}
	t.Logf("%d marker/pid pairs found", found)
}
