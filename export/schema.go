package export

import (
	"slices"

	"github.com/parquet-go/parquet-go"
)

// SchemaVersion is the version of the tables Export writes. It is written
// into every file's key/value metadata (critq.schema_version) and into the
// manifest. Any change of a column (name, type, meaning, nullability) bumps
// it: TestSchemaGolden fails until testdata/schema-vN.txt matches.
const SchemaVersion = 1

// Dump columns lead every row: which checkpoint the row comes from.
type Dump struct {
	// DumpID is the id of the checkpoint (the dump=ID partition).
	DumpID string `parquet:"dump_id" json:"dump_id"`
	// DumpPath is the dump folder or archive as given to export.
	DumpPath string `parquet:"dump_path" json:"dump_path"`
	// Container is the container's name (config.dump), null for a plain
	// dump folder.
	Container *string `parquet:"container,optional" json:"container"`
	// ContainerID is the engine's container id, null without one.
	ContainerID *string `parquet:"container_id,optional" json:"container_id"`
	// Pod and Namespace are the Kubernetes pod and namespace of the
	// container (its OCI annotations), null outside Kubernetes.
	Pod       *string `parquet:"pod,optional" json:"pod"`
	Namespace *string `parquet:"namespace,optional" json:"namespace"`
	// Node is the host name of the dumped UTS namespace (utsns image),
	// null when the dump has none.
	Node *string `parquet:"node,optional" json:"node"`
}

// TaskRow is one task of the tasks view.
type TaskRow struct {
	Dump
	PID      uint32   `parquet:"pid" json:"pid"`
	PPID     uint32   `parquet:"ppid" json:"ppid"`
	PGID     uint32   `parquet:"pgid" json:"pgid"`
	SID      uint32   `parquet:"sid" json:"sid"`
	Depth    uint32   `parquet:"depth" json:"depth"`
	Comm     *string  `parquet:"comm,optional" json:"comm"`
	State    *string  `parquet:"state,optional" json:"state"` // ALIVE, DEAD, STOPPED, ZOMBIE; null without core
	ExitCode *uint32  `parquet:"exit_code,optional" json:"exit_code"`
	UID      *uint32  `parquet:"uid,optional" json:"uid"`
	GID      *uint32  `parquet:"gid,optional" json:"gid"`
	EUID     *uint32  `parquet:"euid,optional" json:"euid"`
	EGID     *uint32  `parquet:"egid,optional" json:"egid"`
	Exe      *string  `parquet:"exe,optional" json:"exe"`
	Cwd      *string  `parquet:"cwd,optional" json:"cwd"`
	Root     *string  `parquet:"root,optional" json:"root"`
	Threads  []uint32 `parquet:"threads,list" json:"threads"`
	Children []uint32 `parquet:"children,list" json:"children"`
	Cmdline  []string `parquet:"cmdline,list" json:"cmdline"`
	// MemError says why cmdline could not be read from memory; null when
	// it was.
	MemError *string `parquet:"mem_error,optional" json:"mem_error"`
}

// VMARow is one VMA of the vmas view.
type VMARow struct {
	Dump
	PID      uint32 `parquet:"pid" json:"pid"`
	Start    uint64 `parquet:"start" json:"start"`
	End      uint64 `parquet:"end" json:"end"`
	StartHex string `parquet:"start_hex" json:"start_hex"` // "0x7f..." as crit prints it
	EndHex   string `parquet:"end_hex" json:"end_hex"`
	Size     uint64 `parquet:"size" json:"size"`
	Pgoff    uint64 `parquet:"pgoff" json:"pgoff"`
	Prot     uint32 `parquet:"prot" json:"prot"`
	// Perms is prot and flags as /proc/PID/maps shows them: "r-xp".
	Perms  string `parquet:"perms" json:"perms"`
	Flags  uint32 `parquet:"flags" json:"flags"`
	Status uint32 `parquet:"status" json:"status"`
	// StatusNames are the VMA_* names of status.
	StatusNames []string `parquet:"status_names,list" json:"status_names"`
	Shmid       uint64   `parquet:"shmid" json:"shmid"`
	Path        *string  `parquet:"path,optional" json:"path"` // null for anonymous mappings
	// PagesDumped counts the VMA's pages held in this dump's pages images;
	// PagesInParent those held in a parent dump.
	PagesDumped   uint64 `parquet:"pages_dumped" json:"pages_dumped"`
	PagesInParent uint64 `parquet:"pages_in_parent" json:"pages_in_parent"`
}

// FdRow is one open file descriptor of the fds view.
type FdRow struct {
	Dump
	PID     uint32  `parquet:"pid" json:"pid"`
	Fd      uint32  `parquet:"fd" json:"fd"`
	Kind    string  `parquet:"kind" json:"kind"` // REG, PIPE, UNIXSK, ...
	FileID  uint32  `parquet:"file_id" json:"file_id"`
	FdFlags uint32  `parquet:"fd_flags" json:"fd_flags"`
	Flags   *uint32 `parquet:"flags,optional" json:"flags"`
	Path    *string `parquet:"path,optional" json:"path"`
	Deleted bool    `parquet:"deleted" json:"deleted"`
	// SocketIno is the socket's inode for socket fds, null otherwise.
	SocketIno *uint32 `parquet:"socket_ino,optional" json:"socket_ino"`
}

// FileRow is one file object of the files view.
type FileRow struct {
	Dump
	FileID  uint32   `parquet:"file_id" json:"file_id"`
	Kind    string   `parquet:"kind" json:"kind"`
	Flags   *uint32  `parquet:"flags,optional" json:"flags"`
	Path    *string  `parquet:"path,optional" json:"path"`
	Deleted bool     `parquet:"deleted" json:"deleted"`
	PIDs    []uint32 `parquet:"pids,list" json:"pids"`
	// Size and Pos of a regular file as the image records them.
	Size *uint64 `parquet:"size,optional" json:"size"`
	Pos  *uint64 `parquet:"pos,optional" json:"pos"`
	Mode *uint32 `parquet:"mode,optional" json:"mode"`
}

// SocketRow is one socket of the sockets view.
type SocketRow struct {
	Dump
	FileID    uint32   `parquet:"file_id" json:"file_id"`
	Ino       uint32   `parquet:"ino" json:"ino"`
	Family    string   `parquet:"family" json:"family"` // AF_INET, AF_UNIX, ...
	Type      string   `parquet:"type" json:"type"`     // SOCK_STREAM, ...
	Proto     uint32   `parquet:"proto" json:"proto"`
	State     string   `parquet:"state" json:"state"` // TCP_LISTEN, TCP_ESTABLISHED, ...
	LocalAddr *string  `parquet:"local_addr,optional" json:"local_addr"`
	LocalPort *uint32  `parquet:"local_port,optional" json:"local_port"`
	PeerAddr  *string  `parquet:"peer_addr,optional" json:"peer_addr"`
	PeerPort  *uint32  `parquet:"peer_port,optional" json:"peer_port"`
	PeerIno   *uint32  `parquet:"peer_ino,optional" json:"peer_ino"`
	PIDs      []uint32 `parquet:"pids,list" json:"pids"`
	InqLen    *uint64  `parquet:"inq_len,optional" json:"inq_len"`
	OutqLen   *uint64  `parquet:"outq_len,optional" json:"outq_len"`
	Queued    *uint64  `parquet:"queued,optional" json:"queued"`
	Backlog   *uint32  `parquet:"backlog,optional" json:"backlog"`
}

// MountRow is one mount of the mounts view.
type MountRow struct {
	Dump
	NsID        uint32  `parquet:"ns_id" json:"ns_id"`
	MntID       uint32  `parquet:"mnt_id" json:"mnt_id"`
	ParentMntID uint32  `parquet:"parent_mnt_id" json:"parent_mnt_id"`
	Type        string  `parquet:"type" json:"type"`
	Mountpoint  string  `parquet:"mountpoint" json:"mountpoint"`
	Root        string  `parquet:"root" json:"root"`
	Source      *string `parquet:"source,optional" json:"source"`
	Options     *string `parquet:"options,optional" json:"options"`
	RootDev     string  `parquet:"root_dev" json:"root_dev"` // "8:1"
	Flags       uint32  `parquet:"flags" json:"flags"`
	SharedID    uint32  `parquet:"shared_id" json:"shared_id"`
	MasterID    uint32  `parquet:"master_id" json:"master_id"`
	ExtMount    bool    `parquet:"ext_mount" json:"ext_mount"`
	Deleted     bool    `parquet:"deleted" json:"deleted"`
}

// PagemapRow is one pagemap entry of the pagemaps view, normalised.
type PagemapRow struct {
	Dump
	PID      *uint32 `parquet:"pid,optional" json:"pid"`     // null for shared memory
	Shmid    *uint64 `parquet:"shmid,optional" json:"shmid"` // null for a task's pagemap
	PagesID  uint32  `parquet:"pages_id" json:"pages_id"`
	Vaddr    uint64  `parquet:"vaddr" json:"vaddr"`
	VaddrHex string  `parquet:"vaddr_hex" json:"vaddr_hex"`
	NrPages  uint64  `parquet:"nr_pages" json:"nr_pages"`
	Flags    uint32  `parquet:"flags" json:"flags"`
	InParent bool    `parquet:"in_parent" json:"in_parent"`
	Offset   *uint64 `parquet:"offset,optional" json:"offset"` // page offset in the pages file, PE_PRESENT only
}

// ImageRow is one file of the dump.
type ImageRow struct {
	Dump
	Name string  `parquet:"name" json:"name"`
	Kind *string `parquet:"kind,optional" json:"kind"` // null for a file no kind claims
	Size int64   `parquet:"size" json:"size"`
	// Entries counts the entries of a framed image; null for raw images
	// (pages) and files that are not images.
	Entries *int64 `parquet:"entries,optional" json:"entries"`
}

// PageHashRow is one page held in the dump (--page-hashes).
type PageHashRow struct {
	Dump
	PID      uint32 `parquet:"pid" json:"pid"`
	Vaddr    uint64 `parquet:"vaddr" json:"vaddr"`
	VaddrHex string `parquet:"vaddr_hex" json:"vaddr_hex"`
	SHA256   string `parquet:"sha256" json:"sha256"` // hex
}

// ThreadRow is one thread of a task (pstree.img's threads, each with its
// core-TID.img).
type ThreadRow struct {
	Dump
	PID         uint32  `parquet:"pid" json:"pid"`
	TID         uint32  `parquet:"tid" json:"tid"`
	Comm        *string `parquet:"comm,optional" json:"comm"` // null where the image has no name for it
	SchedPolicy *uint32 `parquet:"sched_policy,optional" json:"sched_policy"`
	SchedPrio   *uint32 `parquet:"sched_prio,optional" json:"sched_prio"`
	SchedNice   *int32  `parquet:"sched_nice,optional" json:"sched_nice"`
	// BlockedSigset is the thread's blocked signal mask.
	BlockedSigset *uint64 `parquet:"blocked_sigset,optional" json:"blocked_sigset"`
	// PendingSignals counts the signals queued on the thread.
	PendingSignals uint32 `parquet:"pending_signals" json:"pending_signals"`
}

// rowTypes are the row types of the views, by view name.
var rowTypes = map[string]any{
	"tasks": TaskRow{}, "threads": ThreadRow{}, "vmas": VMARow{}, "fds": FdRow{}, "files": FileRow{},
	"sockets": SocketRow{}, "mounts": MountRow{}, "pagemaps": PagemapRow{}, "images": ImageRow{},
	"pagehashes": PageHashRow{},
}

// AllViews returns every view Export can write: Views and pagehashes.
func AllViews() []string { return append(slices.Clone(Views), "pagehashes") }

// SchemaOf returns the Parquet schema of a view's files, as text.
func SchemaOf(view string) string {
	t, ok := rowTypes[view]
	if !ok {
		return ""
	}
	return parquet.SchemaOf(t).String()
}
