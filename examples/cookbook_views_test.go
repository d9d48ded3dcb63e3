package examples

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/explore"
	"github.com/critq/critq/mem"
	"github.com/critq/critq/query"
)

// recipeNamed returns the compiled recipe name.
func recipeNamed(t *testing.T, name string) *query.Query {
	t.Helper()
	for _, r := range cookbook(t) {
		if r.name == name {
			q, err := query.Compile(r.src)
			if err != nil {
				t.Fatalf("recipe %s: %v", name, err)
			}
			return q
		}
	}
	t.Fatalf("no recipe %s", name)
	return nil
}

// TestCookbookViews checks that the ps-tree, maps and fds-ls recipes say
// what critq's ps, maps and fds views say, on every dump.
func TestCookbookViews(t *testing.T) {
	psTree, maps, fdsLs := recipeNamed(t, "ps-tree"), recipeNamed(t, "maps"), recipeNamed(t, "fds-ls")
	for _, dir := range dumps(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			d, err := query.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			m := mem.Open(d.Images())
			defer m.Close()
			e := explore.New(d.Images(), m)
			ps, err := e.Ps()
			if err != nil {
				if len(eval(t, psTree, d).([]any)) != 0 {
					t.Errorf("critq ps failed (%v) where the recipe did not", err)
				}
				return // no pstree.img
			}
			var want, have []string
			var walk func(n *explore.PsNode, depth int)
			walk = func(n *explore.PsNode, depth int) {
				want = append(want, fmt.Sprintf("%d %d %d %d %s %d %d %d %q", n.PID, n.PPID, n.PGID, n.SID, n.State, n.Threads, n.UID, depth, n.Cmdline))
				for _, c := range n.Children {
					walk(c, depth+1)
				}
			}
			for _, r := range ps.Roots {
				walk(r, 0)
			}
			for _, row := range eval(t, psTree, d).([]any) {
				m := row.(map[string]any)
				var args []string
				for _, a := range m["cmdline"].([]any) {
					args = append(args, a.(string))
				}
				have = append(have, fmt.Sprintf("%v %v %v %v %v %v %v %v %q", m["pid"], m["ppid"], m["pgid"], m["sid"], m["state"], m["threads"], m["uid"], m["depth"], args))
			}
			diff(t, "ps-tree", have, want)

			got := eval(t, maps, d).([]any)
			if len(got) == 1 {
				first := ps.Roots[0].PID
				v, err := e.Maps(first)
				if err != nil {
					t.Fatal(err)
				}
				want, have = nil, nil
				for _, l := range v.Tasks[0].Lines {
					path := l.Path
					if strings.HasPrefix(path, "/SYSV") {
						path = "SYSV" // the recipe has the shmid, not the key
					}
					want = append(want, fmt.Sprintf("%x-%x %s %x %s", uint64(l.Start), uint64(l.End), l.Perms, l.Offset, path))
				}
				for _, row := range got[0].([]any) {
					m := row.(map[string]any)
					path := fmt.Sprint(m["path"])
					if strings.HasPrefix(path, "/SYSV") {
						path = "SYSV"
					}
					have = append(have, fmt.Sprintf("%s-%s %s %s %s", strings.TrimPrefix(m["start"].(string), "0x"), strings.TrimPrefix(m["end"].(string), "0x"),
						m["perms"], strings.TrimPrefix(m["offset"].(string), "0x"), path))
				}
				diff(t, "maps", have, want)
			}

			fds, err := e.Fds(0)
			if err != nil {
				t.Fatal(err)
			}
			want, have = nil, nil
			// The recipe leaves to critq fds the names of ttys, tun
			// devices and bpf maps, FIFO and O_PATH modes, and sockets
			// without an inode; it gives the rest the same way.
			skip := map[string]bool{}
			for _, task := range fds.Tasks {
				for _, f := range task.FDs {
					key := fmt.Sprintf("%d %d", task.PID, f.FD)
					switch {
					case f.Type == "TTY" || f.Type == "TUNF" || f.Type == "BPFMAP" || f.Type == "FIFO" || f.Type == "PIDFD",
						f.Mode == "l---------", f.Target == "socket:[?]":
						skip[key] = true
						continue
					}
					want = append(want, fmt.Sprintf("%s %s %s", key, f.Mode, f.Target))
				}
			}
			for _, row := range eval(t, fdsLs, d).([]any) {
				m := row.(map[string]any)
				if key := fmt.Sprintf("%v %v", m["pid"], m["fd"]); !skip[key] {
					have = append(have, fmt.Sprintf("%s %v %v", key, m["mode"], m["target"]))
				}
			}
			diff(t, "fds-ls", have, want)
		})
	}
}

// TestCookbookArchive packs corpus dumps as tar.gz checkpoint archives
// (checkpoint/ holds the images, stats-dump sits at the root) and checks
// that every recipe answers exactly as it does on the folder.
func TestCookbookArchive(t *testing.T) {
	recipes := cookbook(t)
	var dirs []string
	for _, dir := range dumps(t) {
		switch filepath.Base(dir) {
		case "sleep-plain", "fds-zoo", "unix-sockets", "zdtm-shm-uns", "pipes-fifo", "tcp":
			dirs = append(dirs, dir)
		}
	}
	if len(dirs) == 0 {
		t.Fatal("no dumps to pack")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			root := map[string][]byte{"config.dump": []byte(`{"id": "c0ffee"}`), "spec.dump": []byte(`{"ociVersion": "1.0.0"}`)}
			if err := dump.WriteArchive(zw, os.DirFS(dir), root, "MANIFEST.txt"); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), filepath.Base(dir)+".tar.gz")
			if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			folder, err := query.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			archive, err := query.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer archive.Images().Close()
			if archive.Images().File("stats-dump") == nil {
				t.Error("the archive's stats-dump is not in its dump")
			}
			for _, r := range recipes {
				q, err := query.Compile(r.src)
				if err != nil {
					t.Fatal(err)
				}
				want, werr := render(q, folder)
				got, gerr := render(q, archive)
				if werr != nil || gerr != nil {
					// Errors name the dump: compare what follows.
					if werr == nil || gerr == nil || strings.TrimPrefix(werr.Error(), dir) != strings.TrimPrefix(gerr.Error(), p) {
						t.Errorf("%s: folder %v, archive %v", r.name, werr, gerr)
					}
					continue
				}
				if got != want {
					t.Errorf("%s: archive\n%.300s\nfolder\n%.300s", r.name, got, want)
				}
			}
		})
	}
}

// render evaluates q on d and returns its JSON output.
func render(q *query.Query, d *query.Dump) (string, error) {
	v, err := q.Eval(context.Background(), d)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	err = (query.Output{Format: query.FormatJSON}).Write(&b, "", v)
	return b.String(), err
}
