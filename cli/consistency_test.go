package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/model"
)

// jsonOf runs critq with args and decodes its JSON output (numbers kept
// as json.Number, so that 64-bit addresses stay exact).
func jsonOf(t *testing.T, v any, args ...string) bool {
	t.Helper()
	out, stderr, code := runViews(args...)
	if code != exitOK {
		t.Errorf("critq %q: exit %d: %s", args, code, stderr)
		return false
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Errorf("critq %q: %v", args, err)
		return false
	}
	return true
}

// num reads a number of JSON output: a json.Number or a "0x..." string.
func num(v any) uint64 {
	s := fmt.Sprint(v)
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		n, _ := strconv.ParseUint(h, 16, 64)
		return n
	}
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// modeOf is the mode ls -l shows for a /proc/PID/fd link of a file opened
// with flags: what critq fds must show for the flags of the fds view.
func modeOf(flags uint64, known bool) string {
	switch {
	case !known:
		return "lrwx------"
	case flags&0o10000000 != 0:
		return "l---------"
	case flags&3 == 0:
		return "lr-x------"
	case flags&3 == 1:
		return "l-wx------"
	}
	return "lrwx------"
}

// TestPresentationsAgree checks, on every dump of the corpus, that every
// fact two presentations of the model show is the same in both: the JSON
// of ps, fds, sockets, maps and inspect against the CEL views tasks, fds,
// sockets and vmas (pids, ppids, comm, state; fd ids, open flags, paths,
// deleted; socket ids, inodes, addresses, ports, owners; VMA ranges and
// paths).
func TestPresentationsAgree(t *testing.T) {
	facts := 0
	for _, dir := range testcorpus.Dumps(t) {
		if _, err := os.Stat(filepath.Join(dir, "pstree.img")); err != nil {
			continue
		}
		facts += agreeTasks(t, dir) + agreeFds(t, dir) + agreeSockets(t, dir) + agreeMaps(t, dir) + agreeMounts(t, dir)
	}
	if facts < 1000 {
		t.Errorf("only %d facts compared", facts)
	}
	t.Logf("%d facts compared", facts)
}

type psNode struct {
	PID, PPID   uint32
	State, Comm string
	Children    []psNode
}

func flatten(ns []psNode, out map[uint32]psNode) {
	for _, n := range ns {
		out[n.PID] = n
		flatten(n.Children, out)
	}
}

func agreeTasks(t *testing.T, dir string) int {
	var ps struct{ Tree []psNode }
	var in struct{ Processes []psNode }
	var view []map[string]any
	if !jsonOf(t, &ps, "ps", "--format", "json", dir) || !jsonOf(t, &in, "inspect", "--format", "json", dir) ||
		!jsonOf(t, &view, "--format", "json", `tasks.map(t, {"pid": t.pid, "ppid": t.ppid, "comm": t.comm, "state": t.state})`, dir) {
		return 0
	}
	fromPs, fromInspect := map[uint32]psNode{}, map[uint32]psNode{}
	flatten(ps.Tree, fromPs)
	flatten(in.Processes, fromInspect)
	n := 0
	for _, v := range view {
		pid := uint32(num(v["pid"]))
		want := psNode{PID: pid, PPID: uint32(num(v["ppid"])), Comm: fmt.Sprint(v["comm"]), State: model.StateName(uint32(num(v["state"])))}
		for name, got := range map[string]psNode{"ps": fromPs[pid], "inspect": fromInspect[pid]} {
			got.Children = nil
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: pid %d: %s says %+v, tasks %+v", dir, pid, name, got, want)
			}
			n += 4
		}
	}
	if len(fromPs) != len(view) {
		t.Errorf("%s: ps has %d tasks, the view %d", dir, len(fromPs), len(view))
	}
	return n
}

type fdLink struct {
	FD     uint32
	Mode   string
	Type   string
	ID     uint32
	Target string
}

func agreeFds(t *testing.T, dir string) int {
	var fds struct {
		Tasks []struct {
			PID uint32
			FDs []fdLink
		}
	}
	var view []map[string]any
	if !jsonOf(t, &fds, "fds", "--format", "json", dir) ||
		!jsonOf(t, &view, "--format", "json", `fds.map(f, {"pid": f.pid, "fd": f.fd, "id": f.id, "kind": f.kind, "known": has(f.flags), "flags": f.flags, "path": f.path, "deleted": f.deleted})`, dir) {
		return 0
	}
	links := map[string]fdLink{}
	for _, task := range fds.Tasks {
		for _, l := range task.FDs {
			links[fmt.Sprint(task.PID, "/", l.FD)] = l
		}
	}
	n := 0
	for _, v := range view {
		key := fmt.Sprint(v["pid"], "/", v["fd"])
		l, ok := links[key]
		if !ok {
			t.Errorf("%s: fd %s is in the view, not in critq fds", dir, key)
			continue
		}
		delete(links, key)
		kind := fmt.Sprint(v["kind"])
		if l.ID != uint32(num(v["id"])) || l.Type != kind {
			t.Errorf("%s: fd %s: fds says id %d %s, the view %v %v", dir, key, l.ID, l.Type, v["id"], kind)
		}
		if kind != "PIDFD" {
			if want := modeOf(num(v["flags"]), v["known"] == true); l.Mode != want {
				t.Errorf("%s: fd %s (%s): fds shows %s, the view's flags %v give %s", dir, key, kind, l.Mode, v["flags"], want)
			}
		}
		path := fmt.Sprint(v["path"])
		switch kind {
		case "REG":
			want := path
			if v["deleted"] == true {
				want += " (deleted)"
			}
			if l.Target != want {
				t.Errorf("%s: fd %s: fds shows %q, the view says %q deleted %v", dir, key, l.Target, path, v["deleted"])
			}
		case "FIFO":
			if strings.TrimSuffix(l.Target, " (deleted)") != path {
				t.Errorf("%s: fifo %s: fds shows %q, the view %q", dir, key, l.Target, path)
			}
		}
		n += 5
	}
	for key := range links {
		t.Errorf("%s: fd %s is in critq fds, not in the view", dir, key)
	}
	return n
}

func agreeSockets(t *testing.T, dir string) int {
	var ss struct {
		Sockets []struct {
			Netid, State, Local, Peer string
			Ino                       uint32
			FileID                    uint32 `json:"file_id"`
			Users                     []struct{ PID uint32 }
		}
	}
	var in struct {
		Sockets []json.RawMessage
	}
	var view []map[string]any
	if !jsonOf(t, &ss, "sockets", "--format", "json", dir) || !jsonOf(t, &in, "inspect", "--format", "json", dir) ||
		!jsonOf(t, &view, "--format", "json", `sockets.map(s, {"id": s.id, "ino": s.ino, "family": s.family, "addr": s.local_addr, "port": s.local_port, "peer": s.peer_addr, "peer_port": s.peer_port, "pids": s.pids})`, dir) {
		return 0
	}
	if len(in.Sockets) != len(ss.Sockets) {
		t.Errorf("%s: inspect has %d sockets, critq sockets %d", dir, len(in.Sockets), len(ss.Sockets))
	}
	byID := map[uint32]map[string]any{}
	for _, v := range view {
		byID[uint32(num(v["id"]))] = v
	}
	n := 0
	for _, s := range ss.Sockets {
		v := byID[s.FileID]
		if v == nil {
			t.Errorf("%s: socket %d is not in the view", dir, s.FileID)
			continue
		}
		var users []string
		for _, u := range s.Users {
			users = append(users, fmt.Sprint(u.PID))
		}
		var pids []string
		for _, p := range v["pids"].([]any) {
			pids = append(pids, fmt.Sprint(p))
		}
		sort.Strings(users)
		sort.Strings(pids)
		if strings.Join(users, ",") != strings.Join(pids, ",") {
			t.Errorf("%s: socket %d: users %v, the view's pids %v", dir, s.FileID, users, pids)
		}
		if s.Netid != "p_raw" && s.Netid != "p_dgr" && uint32(num(v["ino"])) != s.Ino {
			t.Errorf("%s: socket %d: ino %d, the view %v", dir, s.FileID, s.Ino, v["ino"])
		}
		addr, port := fmt.Sprint(v["addr"]), num(v["port"])
		switch num(v["family"]) {
		case 1: // unix
			if addr == "" {
				addr = "*"
			}
			if want := addr + " " + strconv.FormatUint(uint64(s.Ino), 10); s.Local != want {
				t.Errorf("%s: socket %d: local %q, the view %q", dir, s.FileID, s.Local, want)
			}
		case 2, 10: // inet
			for _, side := range []struct {
				got, addr string
				port      uint64
			}{{s.Local, addr, port}, {s.Peer, fmt.Sprint(v["peer"]), num(v["peer_port"])}} {
				host, p, _ := strings.Cut(side.got, "]:")
				if p == "" {
					host, p, _ = strings.Cut(side.got, ":")
				}
				host = strings.TrimPrefix(host, "[")
				if p == "*" {
					p = "0"
				}
				if host != side.addr || p != strconv.FormatUint(side.port, 10) {
					t.Errorf("%s: socket %d: %q, the view %s port %d", dir, s.FileID, side.got, side.addr, side.port)
				}
			}
		}
		n += 4
	}
	if len(ss.Sockets) != len(view) {
		t.Errorf("%s: critq sockets has %d, the view %d", dir, len(ss.Sockets), len(view))
	}
	return n
}

func agreeMaps(t *testing.T, dir string) int {
	var maps struct {
		Tasks []struct {
			PID  uint32
			Maps []struct {
				Start, End any
				Path       string
			}
		}
	}
	var view []map[string]any
	if !jsonOf(t, &maps, "maps", "--format", "json", dir) ||
		!jsonOf(t, &view, "--format", "json", `vmas.map(v, {"pid": v.pid, "start": v.start, "end": v.end, "path": v.path})`, dir) {
		return 0
	}
	var lines []string
	for _, task := range maps.Tasks {
		for _, l := range task.Maps {
			lines = append(lines, fmt.Sprintf("%d %x-%x", task.PID, num(l.Start), num(l.End)))
		}
	}
	paths := map[string]string{}
	for _, task := range maps.Tasks {
		for _, l := range task.Maps {
			paths[fmt.Sprintf("%d %x", task.PID, num(l.Start))] = l.Path
		}
	}
	var got []string
	n := 0
	for _, v := range view {
		got = append(got, fmt.Sprintf("%d %x-%x", num(v["pid"]), num(v["start"]), num(v["end"])))
		if p := fmt.Sprint(v["path"]); p != "" {
			m := paths[fmt.Sprintf("%d %x", num(v["pid"]), num(v["start"]))]
			if strings.TrimSuffix(m, " (deleted)") != p {
				t.Errorf("%s: pid %v vma %x: maps says %q, the view %q", dir, v["pid"], num(v["start"]), m, p)
			}
			n++
		}
	}
	sort.Strings(lines)
	sort.Strings(got)
	if strings.Join(lines, "\n") != strings.Join(got, "\n") {
		t.Errorf("%s: the VMA ranges of maps (%d) and of the vmas view (%d) differ", dir, len(lines), len(got))
	}
	return n + 2*len(got)
}

type mountRow struct {
	ID                             uint32
	Mountpoint, Type, Source, Root string
	NS                             uint32
}

// agreeMounts compares the mounts of inspect with the mounts view: id,
// mountpoint, type (inspect prints it in lower case), source, root and
// namespace.
func agreeMounts(t *testing.T, dir string) int {
	var in struct{ Mounts []mountRow }
	var view []map[string]any
	if !jsonOf(t, &in, "inspect", "--format", "json", dir) ||
		!jsonOf(t, &view, "--format", "json", `mounts.map(m, {"id": m.mnt_id, "mountpoint": m.mountpoint, "type": m.type, "source": m.source, "root": m.root, "ns": m.ns_id})`, dir) {
		return 0
	}
	if len(in.Mounts) != len(view) {
		t.Errorf("%s: inspect has %d mounts, the view %d", dir, len(in.Mounts), len(view))
		return 0
	}
	n := 0
	for i, v := range view {
		want := mountRow{ID: uint32(num(v["id"])), Mountpoint: fmt.Sprint(v["mountpoint"]), Type: strings.ToLower(fmt.Sprint(v["type"])),
			Source: fmt.Sprint(v["source"]), Root: fmt.Sprint(v["root"]), NS: uint32(num(v["ns"]))}
		if in.Mounts[i] != want {
			t.Errorf("%s: mount %d: inspect says %+v, mounts %+v", dir, i, in.Mounts[i], want)
		}
		n += 6
	}
	return n
}
