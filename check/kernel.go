package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
	"github.com/critq/critq/proto/views"
)

// Cgroups is what a Host says of its cgroup controllers.
type Cgroups struct {
	// Hierarchy holds the enabled controllers of /proc/cgroups and the
	// id of the cgroup v1 hierarchy each is bound to (0: none, or v2).
	Hierarchy map[string]int
	// V2 holds the controllers of the cgroup v2 root (cgroup.controllers).
	V2 map[string]bool
}

// nsKinds are the namespaces CRIU restores, by their /proc/PID/ns name,
// with the ids-<pid>.img field of each.
var nsKinds = []struct {
	name string
	id   func(*images.TaskKobjIdsEntry) (uint32, bool)
}{
	{"user", func(e *images.TaskKobjIdsEntry) (uint32, bool) { return e.GetUserNsId(), e.UserNsId != nil }},
	{"pid", func(e *images.TaskKobjIdsEntry) (uint32, bool) { return e.GetPidNsId(), e.PidNsId != nil }},
	{"net", func(e *images.TaskKobjIdsEntry) (uint32, bool) { return e.GetNetNsId(), e.NetNsId != nil }},
	{"ipc", func(e *images.TaskKobjIdsEntry) (uint32, bool) { return e.GetIpcNsId(), e.IpcNsId != nil }},
	{"uts", func(e *images.TaskKobjIdsEntry) (uint32, bool) { return e.GetUtsNsId(), e.UtsNsId != nil }},
	{"mnt", func(e *images.TaskKobjIdsEntry) (uint32, bool) { return e.GetMntNsId(), e.MntNsId != nil }},
	{"cgroup", func(e *images.TaskKobjIdsEntry) (uint32, bool) { return e.GetCgroupNsId(), e.CgroupNsId != nil }},
	{"time", func(e *images.TaskKobjIdsEntry) (uint32, bool) { return e.GetTimeNsId(), e.TimeNsId != nil }},
}

// checkNamespaces: the namespaces the dump's tasks have of their own (an
// id in ids-<pid>.img other than the dumping criu's, inventory.img's
// root_ids) are created again on restore (clone with CLONE_NEW*), so the
// host's kernel must have them; a user namespace needs
// max_user_namespaces above 0.
func (s *state) checkNamespaces(tasks []*views.Task) error {
	inv, err := model.First[*images.InventoryEntry](s.d.File("inventory.img"))
	if err != nil || inv == nil || inv.GetRootIds() == nil {
		return err
	}
	root := inv.GetRootIds()
	var host map[string]bool
	for _, k := range nsKinds {
		rootID, ok := k.id(root)
		if !ok {
			continue
		}
		for _, t := range tasks {
			ids := t.GetIds()
			if ids == nil {
				continue
			}
			if id, ok := k.id(ids); !ok || id == rootID {
				continue
			}
			id, _ := k.id(ids)
			s.rep.Checked["namespaces"]++
			if host == nil {
				if host, err = s.host.Namespaces(); err != nil {
					return err
				}
			}
			if !host[k.name] {
				what := "the kernel has no " + k.name + " namespaces"
				if k.name == "user" {
					what = "user namespaces are not available (a kernel without them, or user.max_user_namespaces = 0)"
				}
				s.add(Problem{Check: "namespaces", PID: t.GetPid(), Image: fmt.Sprintf("ids-%d.img", t.GetPid()),
					Entry: fmt.Sprintf("%s_ns_id %d", k.name, id), Blocking: true,
					Message: fmt.Sprintf("task %d has its own %s namespace, and on this host %s", t.GetPid(), k.name, what),
					CRIU:    "Can't clone the task with CLONE_NEW" + strings.ToUpper(k.name) + ": Invalid argument"})
			}
			break // one task per kind: the namespace's creator
		}
	}
	return nil
}

// cgMode is CRIU's --manage-cgroups mode for the restore's options
// (config.c parse_manage_cgroups; the default is soft).
func cgMode(criuOpts []string) string {
	mode := "soft"
	for _, o := range criuOpts {
		if o == "--manage-cgroups" {
			mode = "soft"
		} else if v, ok := strings.CutPrefix(o, "--manage-cgroups="); ok {
			mode = v
		}
	}
	return mode
}

// checkCgroups follows CRIU 4.2's restore of cgroup.img (cgroup.c
// prepare_cgroup_sfd): unless --manage-cgroups=ignore, it mounts every
// hierarchy of the image afresh in its yard, "cgroup" with the
// controllers' names (cgroup2 for the unnamed one), then in the default
// soft mode creates the cgroup directories that are missing. So a v1
// controller the kernel lacks, one bound to cgroup v2, or one the host
// mounts with other controllers than the image's (mount: EBUSY) stops the
// restore. In modes none and props the directories must exist already
// (under --root's /sys/fs/cgroup); in strict mode they must not.
func (s *state) checkCgroups() error {
	f := s.d.File("cgroup.img")
	mode := cgMode(s.opts.CRIU)
	if f == nil || mode == "ignore" {
		return nil
	}
	ce, err := model.First[*images.CgroupEntry](f)
	if err != nil || ce == nil {
		return err
	}
	var host *Cgroups
	for i, c := range ce.GetControllers() {
		var subsys []string
		for _, n := range c.GetCnames() {
			if n != "" && !strings.HasPrefix(n, "name=") {
				subsys = append(subsys, n)
			}
		}
		if len(subsys) == 0 {
			continue // a named hierarchy or cgroup2: always mountable
		}
		s.rep.Checked["cgroups"]++
		if host == nil {
			if host, err = s.host.Cgroups(); err != nil {
				return err
			}
		}
		entry := fmt.Sprintf("controllers[%d] %s", i, strings.Join(c.GetCnames(), ","))
		fail := func(msg string) {
			s.add(Problem{Check: "cgroups", Image: "cgroup.img", Entry: entry, Blocking: true, Message: msg,
				CRIU: "Can't mount controller dir .criu.cgyard.*/" + strings.Join(c.GetCnames(), ",") + ": Device or resource busy (or: No such device)"})
		}
		bad := false
		for _, n := range subsys {
			if _, ok := host.Hierarchy[n]; !ok {
				fail(fmt.Sprintf("the dump's tasks were in the cgroup v1 controller %s, which this kernel does not have (or has disabled)", n))
				bad = true
			} else if host.V2[n] {
				fail(fmt.Sprintf("the dump's tasks were in the cgroup v1 controller %s, which this host binds to cgroup v2", n))
				bad = true
			}
			if bad {
				break
			}
		}
		// A v1 hierarchy mounts with exactly the controllers it has.
		for _, n := range subsys {
			h := host.Hierarchy[n]
			if bad || h == 0 {
				continue
			}
			var same []string
			for m, hm := range host.Hierarchy {
				if hm == h {
					same = append(same, m)
				}
			}
			sort.Strings(same)
			if want := slices.Sorted(slices.Values(subsys)); !slices.Equal(same, want) {
				fail(fmt.Sprintf("the dump mounts the cgroup v1 controllers %s together, this host mounts %s together", strings.Join(want, ","), strings.Join(same, ",")))
				bad = true
			}
		}
		if bad || (mode != "none" && mode != "props" && mode != "strict") {
			continue
		}
		base := "/sys/fs/cgroup/" + strings.Join(subsys, ",")
		var walk func(dir string, ents []*images.CgroupDirEntry)
		walk = func(dir string, ents []*images.CgroupDirEntry) {
			for _, e := range ents {
				p := dir + "/" + e.GetDirName()
				_, err := s.host.Stat(p)
				switch {
				case err != nil && (mode == "none" || mode == "props"):
					s.add(Problem{Check: "cgroups", Image: "cgroup.img", Entry: entry, Blocking: true,
						Message: fmt.Sprintf("cgroup %s does not exist, and --manage-cgroups=%s does not create it", p, mode),
						CRIU:    "Cgroup dir " + strings.TrimPrefix(p, "/sys/fs/cgroup/") + " doesn't exist"})
				case err == nil && mode == "strict":
					s.add(Problem{Check: "cgroups", Image: "cgroup.img", Entry: entry, Blocking: true,
						Message: fmt.Sprintf("cgroup %s exists, and --manage-cgroups=strict restores only new ones", p),
						CRIU:    "Abort restore of existing cgroups"})
				}
				walk(p, e.GetChildren())
			}
		}
		walk(base, c.GetDirs())
	}
	return nil
}
