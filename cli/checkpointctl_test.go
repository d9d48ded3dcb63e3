package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestCheckpointctlParity compares critq inspect --format json with
// checkpointctl inspect --all --format json (v1.6.0) on the same archives,
// field by field: every field checkpointctl prints is in critq's output
// with the same value, except the ones listed in knownDifferences. It runs
// when checkpointctl is in PATH or CRITQ_CHECKPOINTCTL names it.
func TestCheckpointctlParity(t *testing.T) {
	bin := checkpointctlBin(t)
	for _, engine := range []string{"podman", "crio", "containerd"} {
		t.Run(engine, func(t *testing.T) {
			a := containerArchive(t, engine)
			out, err := exec.Command(bin, "inspect", "--all", "--format", "json", a).Output()
			if err != nil {
				t.Fatalf("checkpointctl: %v", err)
			}
			var ctl []map[string]any
			if err := json.Unmarshal(out, &ctl); err != nil || len(ctl) != 1 {
				t.Fatalf("checkpointctl json: %v %s", err, out)
			}
			cout, errb, code := runCLI(t, nil, "inspect", "--ps-tree-env", "--format", "json", a)
			if code != exitOK {
				t.Fatalf("critq: %d %s", code, errb)
			}
			var q map[string]any
			if err := json.Unmarshal([]byte(cout), &q); err != nil {
				t.Fatal(err)
			}
			compareCheckpointctl(t, ctl[0], q)
		})
	}
}

// TestCheckpointctlSubtree compares inspect -p PID --ps-tree-env with
// checkpointctl's on an archive of pipes-fifo (a parent and its child),
// for each pid: the root of the tree, the pids under it, each one's
// command and environment.
func TestCheckpointctlSubtree(t *testing.T) {
	bin := checkpointctlBin(t)
	a := filepath.Join(t.TempDir(), "pipes-fifo.tar.gz")
	writeContainerArchive(t, "../testdata/dumps/pipes-fifo", "podman", a, 0)
	for _, pid := range []string{"20759", "20762"} {
		out, err := exec.Command(bin, "inspect", "-p", pid, "--ps-tree-env", "--format", "json", a).Output()
		if err != nil {
			t.Fatalf("checkpointctl: %v", err)
		}
		var ctl []map[string]any
		if err := json.Unmarshal(out, &ctl); err != nil || len(ctl) != 1 {
			t.Fatalf("checkpointctl json: %v %s", err, out)
		}
		cout, errb, code := runCLI(t, nil, "inspect", "-p", pid, "--ps-tree-env", "--format", "json", a)
		if code != exitOK {
			t.Fatalf("critq: %d %s", code, errb)
		}
		var q map[string]any
		if err := json.Unmarshal([]byte(cout), &q); err != nil {
			t.Fatal(err)
		}
		// pid -> command and environment, walking both trees
		type proc struct {
			comm string
			env  map[string]any
			kids []float64
		}
		ctlProcs, qProcs := map[float64]proc{}, map[float64]proc{}
		var walkCtl func(n map[string]any)
		walkCtl = func(n map[string]any) {
			p := proc{comm: n["command"].(string), env: asMap(n["environment_variables"])}
			for _, c := range asList(n["children"]) {
				p.kids = append(p.kids, asMap(c)["pid"].(float64))
				walkCtl(asMap(c))
			}
			ctlProcs[n["pid"].(float64)] = p
		}
		walkCtl(asMap(ctl[0]["process_tree"]))
		var walkQ func(n map[string]any)
		walkQ = func(n map[string]any) {
			p := proc{comm: n["comm"].(string), env: map[string]any{}}
			for _, kv := range asList(n["environ"]) {
				k, v, _ := strings.Cut(kv.(string), "=")
				p.env[k] = v
			}
			for _, c := range asList(n["children"]) {
				p.kids = append(p.kids, asMap(c)["pid"].(float64))
				walkQ(asMap(c))
			}
			qProcs[n["pid"].(float64)] = p
		}
		procs := asList(q["processes"])
		if len(procs) != 1 {
			t.Fatalf("-p %s: %d roots", pid, len(procs))
		}
		walkQ(asMap(procs[0]))
		if asMap(ctl[0]["process_tree"])["pid"] != asMap(procs[0])["pid"] || !reflect.DeepEqual(ctlProcs, qProcs) {
			t.Errorf("-p %s: checkpointctl %+v, critq %+v", pid, ctlProcs, qProcs)
		}
	}
}

// checkpointctlBin returns checkpointctl's path (CRITQ_CHECKPOINTCTL or
// PATH), or skips the test.
func checkpointctlBin(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("CRITQ_CHECKPOINTCTL"); bin != "" {
		return bin
	}
	bin, err := exec.LookPath("checkpointctl")
	if err != nil {
		t.Skip("no checkpointctl in PATH (go install github.com/checkpoint-restore/checkpointctl@v1.6.0)")
	}
	return bin
}

func compareCheckpointctl(t *testing.T, ctl, q map[string]any) {
	t.Helper()
	c, _ := q["container"].(map[string]any)
	get := func(m map[string]any, path string) any {
		var v any = m
		for _, k := range strings.Split(path, ".") {
			mm, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = mm[k]
		}
		return v
	}
	seconds := func(v any) any {
		s, _ := v.(string)
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return v
		}
		return tm.Truncate(time.Second).UTC().Format(time.RFC3339) // checkpointctl prints whole seconds
	}
	same := func(field string, want, got any) {
		t.Helper()
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s: checkpointctl %#v, critq %#v", field, want, got)
		}
	}
	// the container's facts
	for ctlKey, qKey := range map[string]string{"container_name": "container_name", "image": "image", "id": "container_id",
		"runtime": "runtime", "engine": "engine", "metadata.pod_name": "pod_name", "metadata.kubernetes_namespace": "namespace",
		"metadata.annotations": "annotations"} {
		same(ctlKey, get(ctl, ctlKey), get(c, qKey))
	}
	same("created", seconds(ctl["created"]), seconds(c["created"]))
	same("checkpointed", seconds(ctl["checkpointed"]), seconds(c["checkpointed"]))
	for ctlKey, qKey := range map[string]string{"total_size": "checkpoint", "memory_pages_size": "memory_pages", "root_fs_diff_size": "rootfs_diff"} {
		same("checkpoint_size."+ctlKey, get(ctl, "checkpoint_size."+ctlKey), get(c, "sizes."+qKey))
	}
	// networks: checkpointctl joins addresses and macs; per interface it
	// keeps the last subnet's address and the last gateway
	var ips, macs []string
	for _, ip := range asList(c["ips"]) {
		ips = append(ips, ip.(string))
	}
	var nets []any
	for _, n := range asList(c["networks"]) {
		n := n.(map[string]any)
		ifs := map[string]any{}
		for _, i := range asList(n["interfaces"]) {
			i := i.(map[string]any)
			node := map[string]any{}
			if mac, _ := i["mac"].(string); mac != "" {
				macs = append(macs, mac)
				node["mac"] = mac
			}
			for _, s := range asList(i["subnets"]) {
				s := s.(map[string]any)
				node["ip"] = s["ipnet"]
				if g, ok := s["gateway"]; ok {
					node["gateway"] = g
				}
			}
			ifs[i["name"].(string)] = node
		}
		nets = append(nets, map[string]any{"name": n["name"], "interfaces": ifs})
	}
	same("ip", ctl["ip"], joinOrNil(ips))
	same("mac", ctl["mac"], joinOrNil(macs))
	same("networks", ctl["networks"], listOrNil(nets))
	// mounts of spec.dump
	var mounts []any
	for _, m := range asList(c["mounts"]) {
		m := m.(map[string]any)
		mounts = append(mounts, map[string]any{"destination": m["destination"], "type": m["type"], "source": m["source"]})
	}
	same("mounts", ctl["mounts"], listOrNil(mounts))
	// statistics of stats-dump
	stats, _ := q["stats"].(map[string]any)
	for k, v := range asMap(ctl["statistics"]) {
		qk := k
		if strings.HasSuffix(k, "_time") {
			qk += "_us"
		}
		same("statistics."+k, v, stats[qk])
	}
	// the process tree (one process here) and its descriptors
	pt := asMap(ctl["process_tree"])
	p := asMap(asList(q["processes"])[0])
	same("process_tree.pid", pt["pid"], p["pid"])
	same("process_tree.command", pt["command"], p["comm"])
	var args []string
	for _, a := range asList(p["cmdline"]) {
		args = append(args, a.(string))
	}
	same("process_tree.cmdline", pt["cmdline"], strings.Join(args, " ")+" ") // checkpointctl keeps the last NUL as a space
	same("process_tree.task_state", strings.ToUpper(fmt.Sprint(pt["task_state"])), p["state"])
	// checkpointctl keeps the environment as a map (the last of equal
	// names wins); critq as the list of NAME=value strings in order
	env := map[string]any{}
	for _, kv := range asList(p["environ"]) {
		k, v, _ := strings.Cut(kv.(string), "=")
		env[k] = v
	}
	if pt["environment_variables"] == nil || len(env) == 0 {
		t.Errorf("process_tree.environment_variables: checkpointctl %v, critq %v", pt["environment_variables"], p["environ"])
	}
	same("process_tree.environment_variables", pt["environment_variables"], env)
	for _, fdn := range asList(ctl["file_descriptors"]) {
		fdn := asMap(fdn)
		var qfds []any
		var qtask map[string]any
		for _, f := range asList(q["files"]) {
			if asMap(f)["pid"] == fdn["pid"] {
				qtask = asMap(f)
				qfds = asList(qtask["fds"])
			}
		}
		i := 0
		for _, of := range asList(fdn["open_files"]) {
			of := asMap(of)
			if fd := of["fd"]; fd == "cwd" || fd == "root" {
				// checkpointctl's fd entries "cwd" and "root" (no type) are the
				// task's cwd and root of critq's files section
				same("file_descriptors."+fd.(string), of["path"], qtask[fd.(string)])
				continue
			}
			if i >= len(qfds) {
				t.Errorf("file_descriptors: checkpointctl has %v, critq has no more", of)
				continue
			}
			qf := asMap(qfds[i])
			i++
			same("file_descriptors.fd", of["fd"], fmt.Sprintf("%v %v", qf["type"], qf["fd"]))
			same("file_descriptors.path", of["path"], qf["target"])
			same("file_descriptors.type", of["type"], qf["type"])
		}
	}
	// every top-level field of checkpointctl was looked at
	for k := range ctl {
		switch k {
		case "container_name", "image", "id", "runtime", "created", "checkpointed", "engine", "ip", "mac", "networks",
			"checkpoint_size", "statistics", "metadata", "process_tree", "file_descriptors", "sockets", "mounts":
		default:
			t.Errorf("checkpointctl field %q not compared", k)
		}
	}
	if s := asList(ctl["sockets"]); len(s) > 0 {
		t.Errorf("sockets: the test dump has none, checkpointctl shows %v", s)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func joinOrNil(s []string) any {
	if len(s) == 0 {
		return nil
	}
	return strings.Join(s, ", ")
}

func listOrNil(l []any) any {
	if len(l) == 0 {
		return nil
	}
	return l
}
