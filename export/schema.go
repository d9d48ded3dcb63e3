//go:generate go run ./internal/gendoc schema.go ../docs/export-schema.md

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
	// Pod is the Kubernetes pod of the container (its OCI annotations),
	// null outside Kubernetes.
	Pod *string `parquet:"pod,optional" json:"pod"`
	// Namespace is the Kubernetes namespace of the pod.
	Namespace *string `parquet:"namespace,optional" json:"namespace"`
	// Node is the host name of the dumped UTS namespace (utsns image),
	// null when the dump has none.
	Node *string `parquet:"node,optional" json:"node"`
}

// TaskRow is one task of the tasks view.
type TaskRow struct {
	Dump
	PID      uint32   `parquet:"pid" json:"pid"`                      // process id (pstree.img)
	PPID     uint32   `parquet:"ppid" json:"ppid"`                    // parent pid
	PGID     uint32   `parquet:"pgid" json:"pgid"`                    // process group id
	SID      uint32   `parquet:"sid" json:"sid"`                      // session id
	Depth    uint32   `parquet:"depth" json:"depth"`                  // depth in the process tree; the root task is 0
	Comm     *string  `parquet:"comm,optional" json:"comm"`           // command name (core.tc.comm)
	State    *string  `parquet:"state,optional" json:"state"`         // ALIVE, DEAD, STOPPED, ZOMBIE; null without core
	ExitCode *uint32  `parquet:"exit_code,optional" json:"exit_code"` // exit code of a zombie (core.tc.exit_code)
	UID      *uint32  `parquet:"uid,optional" json:"uid"`             // real uid (core creds)
	GID      *uint32  `parquet:"gid,optional" json:"gid"`             // real gid
	EUID     *uint32  `parquet:"euid,optional" json:"euid"`           // effective uid
	EGID     *uint32  `parquet:"egid,optional" json:"egid"`           // effective gid
	Exe      *string  `parquet:"exe,optional" json:"exe"`             // path of the executable
	Cwd      *string  `parquet:"cwd,optional" json:"cwd"`             // working directory
	Root     *string  `parquet:"root,optional" json:"root"`           // root directory
	Threads  []uint32 `parquet:"threads,list" json:"threads"`         // thread ids, the main thread first
	Children []uint32 `parquet:"children,list" json:"children"`       // pids of the children, in tree order
	Cmdline  []string `parquet:"cmdline,list" json:"cmdline"`         // arguments read from the task's memory, as /proc/PID/cmdline
	// MemError says why cmdline could not be read from memory; null when
	// it was.
	MemError *string `parquet:"mem_error,optional" json:"mem_error"`
}

// VMARow is one VMA of the vmas view.
type VMARow struct {
	Dump
	PID      uint32 `parquet:"pid" json:"pid"`             // pid of the task whose mm holds the VMA
	Start    uint64 `parquet:"start" json:"start"`         // first address
	End      uint64 `parquet:"end" json:"end"`             // address after the last byte
	StartHex string `parquet:"start_hex" json:"start_hex"` // "0x7f..." as crit prints it
	EndHex   string `parquet:"end_hex" json:"end_hex"`     // end in hex
	Size     uint64 `parquet:"size" json:"size"`           // end - start, in bytes
	Pgoff    uint64 `parquet:"pgoff" json:"pgoff"`         // offset in the mapped file, in bytes
	Prot     uint32 `parquet:"prot" json:"prot"`           // PROT_* bits (READ 1, WRITE 2, EXEC 4)
	// Perms is prot and flags as /proc/PID/maps shows them: "r-xp".
	Perms  string `parquet:"perms" json:"perms"`
	Flags  uint32 `parquet:"flags" json:"flags"`   // MAP_* bits (SHARED 1, PRIVATE 2, ...)
	Status uint32 `parquet:"status" json:"status"` // CRIU's VMA_* status bits
	// StatusNames are the VMA_* names of status.
	StatusNames []string `parquet:"status_names,list" json:"status_names"`
	Shmid       uint64   `parquet:"shmid" json:"shmid"`        // file id of the mapped file, or shared memory id
	Path        *string  `parquet:"path,optional" json:"path"` // null for anonymous mappings
	// PagesDumped counts the VMA's pages held in this dump's pages images;
	// PagesInParent those held in a parent dump.
	PagesDumped   uint64 `parquet:"pages_dumped" json:"pages_dumped"`
	PagesInParent uint64 `parquet:"pages_in_parent" json:"pages_in_parent"` // pages held in a parent dump
}

// FdRow is one open file descriptor of the fds view.
type FdRow struct {
	Dump
	PID     uint32  `parquet:"pid" json:"pid"`              // owning task
	Fd      uint32  `parquet:"fd" json:"fd"`                // descriptor number
	Kind    string  `parquet:"kind" json:"kind"`            // REG, PIPE, UNIXSK, ...
	FileID  uint32  `parquet:"file_id" json:"file_id"`      // file id (files.img)
	FdFlags uint32  `parquet:"fd_flags" json:"fd_flags"`    // fdinfo flags (FD_CLOEXEC 1)
	Flags   *uint32 `parquet:"flags,optional" json:"flags"` // open flags (O_*), where the file records them
	Path    *string `parquet:"path,optional" json:"path"`   // path of a file, directory or FIFO; name of a unix socket
	Deleted bool    `parquet:"deleted" json:"deleted"`      // the file was unlinked (a linked or ghost remap)
	// SocketIno is the socket's inode for socket fds, null otherwise.
	SocketIno *uint32 `parquet:"socket_ino,optional" json:"socket_ino"`
}

// FileRow is one file object of the files view.
type FileRow struct {
	Dump
	FileID  uint32   `parquet:"file_id" json:"file_id"`      // file id (files.img)
	Kind    string   `parquet:"kind" json:"kind"`            // REG, PIPE, UNIXSK, INETSK, ...
	Flags   *uint32  `parquet:"flags,optional" json:"flags"` // open flags (O_*)
	Path    *string  `parquet:"path,optional" json:"path"`   // path, where the file has one
	Deleted bool     `parquet:"deleted" json:"deleted"`      // the file was unlinked
	PIDs    []uint32 `parquet:"pids,list" json:"pids"`       // tasks that have it open, in tree order
	// Size and Pos of a regular file as the image records them.
	Size *uint64 `parquet:"size,optional" json:"size"`
	Pos  *uint64 `parquet:"pos,optional" json:"pos"`   // file position
	Mode *uint32 `parquet:"mode,optional" json:"mode"` // file mode
}

// SocketRow is one socket of the sockets view.
type SocketRow struct {
	Dump
	FileID    uint32   `parquet:"file_id" json:"file_id"`                // file id (files.img)
	Ino       uint32   `parquet:"ino" json:"ino"`                        // socket inode
	Family    string   `parquet:"family" json:"family"`                  // AF_INET, AF_UNIX, ...
	Type      string   `parquet:"type" json:"type"`                      // SOCK_STREAM, ...
	Proto     uint32   `parquet:"proto" json:"proto"`                    // IP protocol number (TCP 6, UDP 17)
	State     string   `parquet:"state" json:"state"`                    // TCP_LISTEN, TCP_ESTABLISHED, ...
	LocalAddr *string  `parquet:"local_addr,optional" json:"local_addr"` // local address: IP text, unix path, or @name for an abstract unix name
	LocalPort *uint32  `parquet:"local_port,optional" json:"local_port"` // local port (inet)
	PeerAddr  *string  `parquet:"peer_addr,optional" json:"peer_addr"`   // peer address
	PeerPort  *uint32  `parquet:"peer_port,optional" json:"peer_port"`   // peer port (inet)
	PeerIno   *uint32  `parquet:"peer_ino,optional" json:"peer_ino"`     // inode of the peer socket (unix)
	PIDs      []uint32 `parquet:"pids,list" json:"pids"`                 // tasks that hold it
	InqLen    *uint64  `parquet:"inq_len,optional" json:"inq_len"`       // TCP: bytes in the receive queue (tcp-stream image)
	OutqLen   *uint64  `parquet:"outq_len,optional" json:"outq_len"`     // TCP: bytes in the send queue
	Queued    *uint64  `parquet:"queued,optional" json:"queued"`         // bytes of packets queued on it (sk-queues.img)
	Backlog   *uint32  `parquet:"backlog,optional" json:"backlog"`       // listen backlog
}

// MountRow is one mount of the mounts view.
type MountRow struct {
	Dump
	NsID        uint32  `parquet:"ns_id" json:"ns_id"`                 // mount namespace id
	MntID       uint32  `parquet:"mnt_id" json:"mnt_id"`               // mount id
	ParentMntID uint32  `parquet:"parent_mnt_id" json:"parent_mnt_id"` // parent mount id
	Type        string  `parquet:"type" json:"type"`                   // file system type: PROC, TMPFS, ... or the kernel's name
	Mountpoint  string  `parquet:"mountpoint" json:"mountpoint"`       // mount point
	Root        string  `parquet:"root" json:"root"`                   // root of the mount within its file system
	Source      *string `parquet:"source,optional" json:"source"`      // mount source
	Options     *string `parquet:"options,optional" json:"options"`    // mount options
	RootDev     string  `parquet:"root_dev" json:"root_dev"`           // "8:1"
	Flags       uint32  `parquet:"flags" json:"flags"`                 // MS_* mount flags
	SharedID    uint32  `parquet:"shared_id" json:"shared_id"`         // peer group id
	MasterID    uint32  `parquet:"master_id" json:"master_id"`         // master peer group id
	ExtMount    bool    `parquet:"ext_mount" json:"ext_mount"`         // an external mount
	Deleted     bool    `parquet:"deleted" json:"deleted"`             // the mount point was deleted
}

// PagemapRow is one pagemap entry of the pagemaps view, normalised.
type PagemapRow struct {
	Dump
	PID      *uint32 `parquet:"pid,optional" json:"pid"`       // null for shared memory
	Shmid    *uint64 `parquet:"shmid,optional" json:"shmid"`   // null for a task's pagemap
	PagesID  uint32  `parquet:"pages_id" json:"pages_id"`      // the pages file: pages-<pages_id>.img
	Vaddr    uint64  `parquet:"vaddr" json:"vaddr"`            // first address of the run
	VaddrHex string  `parquet:"vaddr_hex" json:"vaddr_hex"`    // vaddr in hex
	NrPages  uint64  `parquet:"nr_pages" json:"nr_pages"`      // pages in the run
	Flags    uint32  `parquet:"flags" json:"flags"`            // PE_* bits (PARENT 1, LAZY 2, PRESENT 4)
	InParent bool    `parquet:"in_parent" json:"in_parent"`    // the pages are in a parent dump
	Offset   *uint64 `parquet:"offset,optional" json:"offset"` // page offset in the pages file, PE_PRESENT only
}

// ImageRow is one file of the dump.
type ImageRow struct {
	Dump
	Name string  `parquet:"name" json:"name"`          // file name
	Kind *string `parquet:"kind,optional" json:"kind"` // null for a file no kind claims
	Size int64   `parquet:"size" json:"size"`          // bytes
	// Entries counts the entries of a framed image; null for raw images
	// (pages) and files that are not images.
	Entries *int64 `parquet:"entries,optional" json:"entries"`
}

// PageHashRow is one page held in the dump (--page-hashes).
type PageHashRow struct {
	Dump
	PID      uint32 `parquet:"pid" json:"pid"`             // task
	Vaddr    uint64 `parquet:"vaddr" json:"vaddr"`         // address of the page
	VaddrHex string `parquet:"vaddr_hex" json:"vaddr_hex"` // vaddr in hex
	SHA256   string `parquet:"sha256" json:"sha256"`       // hex
}

// ThreadRow is one thread of a task (pstree.img's threads, each with its
// core-TID.img).
type ThreadRow struct {
	Dump
	PID         uint32  `parquet:"pid" json:"pid"`                            // pid of the task the thread belongs to
	TID         uint32  `parquet:"tid" json:"tid"`                            // thread id
	Comm        *string `parquet:"comm,optional" json:"comm"`                 // null where the image has no name for it
	SchedPolicy *uint32 `parquet:"sched_policy,optional" json:"sched_policy"` // scheduling policy (SCHED_OTHER 0, SCHED_FIFO 1, SCHED_RR 2, ...)
	SchedPrio   *uint32 `parquet:"sched_prio,optional" json:"sched_prio"`     // real-time priority
	SchedNice   *int32  `parquet:"sched_nice,optional" json:"sched_nice"`     // nice value
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
