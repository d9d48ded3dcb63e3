package query

import (
	"context"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/critq/critq/magic"
	_ "github.com/critq/critq/proto/views" // registers critq.views
)

// Var describes one top-level name of critq's CEL environment.
type Var struct {
	Name string
	// Type is the CEL type of the name, as the checker sees it.
	Type *cel.Type
	// Doc says in a few words what the name holds.
	Doc string
	// Kind is the image kind of a kind variable; nil for views.
	Kind *magic.Kind

	view viewID
	// shape of a kind variable
	keyed  bool // a map from the id in the file name
	single bool // one message per file, not a list
	// build computes an added view (AddView)
	build func(context.Context, *Dump) ([]proto.Message, error)
}

// viewID names the joined views; viewNone marks kind variables.
type viewID uint8

const (
	viewNone viewID = iota
	viewTasks
	viewVMAs
	viewFDs
	viewFiles
	viewSockets
	viewMounts
	viewPagemaps
	viewImages
	viewContainer
	viewRootfs
	viewDeletedFiles
	viewThreads
	viewAdded // AddView
)

// Full names of the view messages.
const (
	typeTask    = "critq.views.task"
	typeVMA     = "critq.views.vma"
	typeFD      = "critq.views.fd"
	typeFile    = "critq.views.file"
	typeSocket  = "critq.views.socket"
	typeMount   = "critq.views.mount"
	typePagemap = "critq.views.pagemap"
	typeThread  = "critq.views.thread"
)

var viewVars = []Var{
	{Name: "tasks", view: viewTasks, Type: cel.ListType(cel.ObjectType(typeTask)),
		Doc: "every task of pstree.img in tree order, joined with its core, mm, vmas, fds, ids and fs"},
	{Name: "threads", view: viewThreads, Type: cel.ListType(cel.ObjectType(typeThread)),
		Doc: "every thread of every task: tid, comm, state, blocked and pending signals, scheduling, its core"},
	{Name: "vmas", view: viewVMAs, Type: cel.ListType(cel.ObjectType(typeVMA)),
		Doc: "every VMA of every task: the vma_entry fields plus pid, size and path"},
	{Name: "fds", view: viewFDs, Type: cel.ListType(cel.ObjectType(typeFD)),
		Doc: "every open fd of every task, joined with its file and socket"},
	{Name: "files", view: viewFiles, Type: cel.ListType(cel.ObjectType(typeFile)),
		Doc: "every file object of files.img with its path, flags and owner pids"},
	{Name: "sockets", view: viewSockets, Type: cel.ListType(cel.ObjectType(typeSocket)),
		Doc: "every socket of files.img: family, type, state, addresses, ports, queues, owner pids"},
	{Name: "mounts", view: viewMounts, Type: cel.ListType(cel.ObjectType(typeMount)),
		Doc: "every mount of every mount namespace (mountpoints-<ns>.img)"},
	{Name: "pagemaps", view: viewPagemaps, Type: cel.ListType(cel.ObjectType(typePagemap)),
		Doc: "every pagemap entry of every task and shared memory object, normalised"},
	{Name: "images", view: viewImages, Type: cel.MapType(cel.StringType, cel.MapType(cel.StringType, cel.DynType)),
		Doc: "every file of the dump by name: {name, kind, id, size, raw, entries, extras}"},
	{Name: "container", view: viewContainer, Type: cel.DynType,
		Doc: "a checkpoint archive's {config, spec}: config.dump and spec.dump as JSON maps; null for a dump folder"},
	{Name: "rootfs", view: viewRootfs, Type: cel.DynType,
		Doc: "a checkpoint archive's rootfs-diff.tar members: {path, type, size, mode, uid, gid, user, group, mtime, link}; null for a dump folder"},
	{Name: "deleted_files", view: viewDeletedFiles, Type: cel.DynType,
		Doc: "a checkpoint archive's deleted.files: the paths the container removed; null for a dump folder"},
}

// singleKinds are the kinds whose images hold one message (CRIU reads them
// with pb_read_one). GHOST_FILE counts as one: its first entry, the
// ghost_file_entry; the chunks are in images.
var singleKinds = map[string]bool{
	"APPARMOR": true, "AUTOFS": true, "CGROUP": true, "CORE": true, "CPUINFO": true, "CREDS": true,
	"FS": true, "GHOST_FILE": true, "IDS": true, "INVENTORY": true, "IPC_VAR": true, "ITIMERS": true,
	"MM": true, "NETNS": true, "PIDNS": true, "SECCOMP": true, "STATS": true, "TCP_STREAM": true,
	"TIMENS": true, "USERNS": true, "UTSNS": true,
}

// kindVars returns one variable per decodable kind whose lower-case name is
// not taken by a view (FILES and VMAS are views).
func kindVars() []Var {
	taken := map[string]bool{}
	for _, v := range viewVars {
		taken[v.Name] = true
	}
	var out []Var
	for _, k := range magic.Kinds() {
		if k.Raw || k.Entry == nil || len(k.Files) == 0 {
			continue
		}
		name := strings.ToLower(k.Name)
		if taken[name] {
			continue
		}
		v := Var{Name: name, Kind: k, single: singleKinds[k.Name], keyed: strings.Contains(k.Files[0], "%")}
		msg := k.Entry
		if v.single && k.First != nil {
			msg = k.First
		}
		t := cel.ObjectType(string(msg.Descriptor().FullName()))
		what := string(msg.Descriptor().Name())
		if !v.single {
			t = cel.ListType(t)
			what = "list of " + what
		}
		file := k.Files[0]
		if v.keyed {
			t = cel.MapType(cel.DynType, t)
			v.Doc = "map from the id of " + file + " to its " + what
		} else {
			v.Doc = file + ": " + what
		}
		if k.First != nil && !v.single {
			v.Doc += " (after the " + string(k.First.Descriptor().Name()) + ")"
		}
		v.Type = t
		out = append(out, v)
	}
	return out
}

// Vars returns every top-level name of the environment: the views first
// (query's, then the added ones), then one variable per image kind, sorted
// by name.
func Vars() []Var {
	out := append(append([]Var(nil), viewVars...), added()...)
	kv := kindVars()
	sort.Slice(kv, func(i, j int) bool { return kv[i].Name < kv[j].Name })
	return append(out, kv...)
}

// schemaFiles returns the file descriptors of the image schema and of the
// views, as registered in protoregistry.GlobalFiles.
func schemaFiles() []any {
	var out []any
	for _, pkg := range []protoreflect.FullName{"critq.images", "critq.views"} {
		protoregistry.GlobalFiles.RangeFilesByPackage(pkg, func(f protoreflect.FileDescriptor) bool {
			out = append(out, f)
			return true
		})
	}
	return out
}
