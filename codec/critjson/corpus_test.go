package critjson_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/codec/critjson"
	"github.com/critq/critq/magic"
)

// dumpDirs returns the dump directories the tests run over: the copies in
// testdata/dumps always, and every dump of ../shared/corpus (relative to the
// repository root) when it exists, pre-dump chain steps included. With
// CRITQ_REQUIRE_CORPUS=1 a missing corpus fails the test.
func dumpDirs(t testing.TB) []string {
	t.Helper()
	var dirs []string
	add := func(root string) {
		ents, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if !e.IsDir() || strings.HasPrefix(e.Name(), "_") {
				continue
			}
			dir := filepath.Join(root, e.Name())
			if _, err := os.Stat(filepath.Join(dir, "MANIFEST.txt")); err != nil {
				continue
			}
			dirs = append(dirs, dir)
			for _, sub := range []string{"pre1", "pre2", "pre3", "dump"} {
				if st, err := os.Stat(filepath.Join(dir, sub)); err == nil && st.IsDir() {
					dirs = append(dirs, filepath.Join(dir, sub))
				}
			}
		}
	}
	add("../../testdata/dumps")
	corpus := "../../../shared/corpus"
	if _, err := os.Stat(corpus); err == nil {
		add(corpus)
	} else if os.Getenv("CRITQ_REQUIRE_CORPUS") == "1" {
		t.Fatalf("CRITQ_REQUIRE_CORPUS=1 but %s is absent", corpus)
	}
	return dirs
}

// imageFiles returns the image files of a dump directory: every regular
// file that is not a golden, a manifest or a hidden file.
func imageFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(n, ".") || n == "MANIFEST.txt" || n == "parent" || strings.HasSuffix(n, ".log") {
			continue
		}
		out = append(out, filepath.Join(dir, n))
	}
	sort.Strings(out)
	return out
}

// isRaw reports whether a file name is that of a raw kind (no magic).
func isRaw(path string) bool {
	k, _, ok := magic.ForFile(filepath.Base(path))
	return ok && k.Raw
}

func encodeFile(t testing.TB, path string, o critjson.Options) ([]byte, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := codec.NewBytesReader(data, codec.ReadOptions{Name: path})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	err = critjson.Encode(&out, r, o)
	return out.Bytes(), err
}

var (
	// crit 4.2 names task states 3 and 6 the wrong way round (bug B7) and
	// has no name for 2; critq prints compel's names at compel's values.
	critTaskState = regexp.MustCompile(`"task_state": ("Alive"|"Zombie"|"Stopped"|2)`)
	critqNames    = map[string]string{`"Alive"`: `"ALIVE"`, `"Zombie"`: `"STOPPED"`, `"Stopped"`: `"ZOMBIE"`, `2`: `"DEAD"`}
	// crit reads segment data after IPC shm entries kept in pagemaps (bug
	// B8); critq writes no extra for them.
	critShmExtra = regexp.MustCompile(`,\s*"extra": ""`)
)

// expectedFromGolden turns crit's golden text into what critq must print:
// the same bytes except where a golden carries a known crit bug.
func expectedFromGolden(kind string, golden []byte, pretty bool) []byte {
	golden = bytes.TrimSuffix(golden, []byte("\n")) // crit adds it on stdout only
	if kind == "CORE" && pretty {
		golden = critTaskState.ReplaceAllFunc(golden, func(m []byte) []byte {
			return []byte(`"task_state": ` + critqNames[string(m[len(`"task_state": `):])])
		})
	}
	if kind == "IPCNS_SHM" {
		golden = critShmExtra.ReplaceAll(golden, nil)
	}
	return golden
}

// TestGolden decodes every image that has crit 4.2 goldens and compares
// critq's plain and pretty output with them byte for byte.
func TestGolden(t *testing.T) {
	n := 0
	for _, dir := range dumpDirs(t) {
		for _, path := range imageFiles(t, dir) {
			base := filepath.Base(path)
			for _, form := range []struct {
				suffix string
				pretty bool
			}{{".json", false}, {".pretty.json", true}} {
				golden, err := os.ReadFile(filepath.Join(dir, "golden", base+form.suffix))
				if err != nil || len(golden) == 0 {
					continue
				}
				got, err := encodeFile(t, path, critjson.Options{Pretty: form.pretty})
				if err != nil {
					t.Errorf("Encode(%s, pretty=%v): %v", path, form.pretty, err)
					continue
				}
				want := expectedFromGolden(kindName(got), golden, form.pretty)
				if !bytes.Equal(got, want) {
					t.Errorf("Encode(%s, pretty=%v) differs from golden%s: %s", path, form.pretty, form.suffix, firstDiff(got, want))
				}
				n++
			}
		}
	}
	t.Logf("%d golden documents compared", n)
}

func kindName(doc []byte) string {
	m := regexp.MustCompile(`"magic": "([A-Z_0-9]+)"`).FindSubmatch(doc)
	if m == nil {
		return ""
	}
	return string(m[1])
}

func firstDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-80)
	return "at byte " + strconv.Itoa(i) + "\n got: " + string(got[lo:min(len(got), i+80)]) + "\nwant: " + string(want[lo:min(len(want), i+80)])
}

// TestRoundTrip checks that every image of every dump, raw kinds aside,
// comes back byte for byte from its plain and its pretty JSON.
func TestRoundTrip(t *testing.T) {
	n := 0
	for _, dir := range dumpDirs(t) {
		for _, path := range imageFiles(t, dir) {
			if isRaw(path) {
				continue
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r, err := codec.NewBytesReader(data, codec.ReadOptions{Name: path})
			if err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
			for _, pretty := range []bool{false, true} {
				doc, err := encodeFile(t, path, critjson.Options{Pretty: pretty})
				if err != nil {
					t.Errorf("Encode(%s): %v", path, err)
					continue
				}
				got := mustReencode(t, doc, r.Header())
				if !bytes.Equal(got, data) {
					t.Errorf("Decode(Encode(%s, pretty=%v)) gives %d bytes, want the %d original bytes: %s", path, pretty, len(got), len(data), firstDiff(got, data))
				}
				n++
			}
		}
	}
	t.Logf("%d documents encoded back", n)
}

// TestGoldenEncode checks that crit 4.2's own JSON, plain and pretty,
// encodes to the original image.
func TestGoldenEncode(t *testing.T) {
	n := 0
	for _, dir := range dumpDirs(t) {
		for _, path := range imageFiles(t, dir) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, suffix := range []string{".json", ".pretty.json"} {
				golden, err := os.ReadFile(filepath.Join(dir, "golden", filepath.Base(path)+suffix))
				if err != nil || len(golden) == 0 {
					continue
				}
				r, err := codec.NewBytesReader(data, codec.ReadOptions{Name: path})
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				got := mustReencode(t, golden, r.Header())
				if !bytes.Equal(got, data) {
					t.Errorf("Decode(%s%s) gives %d bytes, want the %d original bytes: %s", filepath.Base(path), suffix, len(got), len(data), firstDiff(got, data))
				}
				n++
			}
		}
	}
	t.Logf("%d crit documents encoded", n)
}

func mustReencode(t testing.TB, doc []byte, hdr codec.Header) []byte {
	t.Helper()
	img, err := critjson.Decode(doc, critjson.Options{Order: hdr.Order})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	var out bytes.Buffer
	if err := img.Write(&out, hdr); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return out.Bytes()
}
