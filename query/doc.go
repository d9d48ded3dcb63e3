// Package query evaluates CEL expressions over a whole CRIU dump.
//
// A [Query] is compiled once with [Compile] and evaluated with
// [Query.Eval] against any number of dumps, concurrently if need be. A
// [Dump] is opened with [Open] (or [NewDump] over a *dump.Dump); opening
// reads the directory listing only.
//
//	q, err := query.Compile(`vmas.filter(v, v.prot & PROT_EXEC)`)
//	d, err := query.Open("./dump")
//	v, err := q.Eval(ctx, d)          // a CEL ref.Val
//	err = query.Output{Format: query.FormatPretty}.Write(os.Stdout, "", v)
//
// # Images, entries, messages and CEL values
//
// A dump is a directory of image files. Each image holds entries; each
// entry is one protobuf message of CRIU's schema (package
// github.com/critq/critq/proto/images, proto package critq.images), in
// places followed by raw bytes (its extra). CEL sees the messages as typed
// objects of the schema: fields by their proto names, enums as ints,
// uint32 and uint64 fields as uint.
//
//	dump dir ──▶ image file ──▶ entries ──▶ message (critq.images.*) ──▶ CEL object
//	                 │                  └──▶ extra bytes (images[...].extras)
//	                 └── several images ──▶ joined view (critq.views.*) ──▶ CEL object
//
// # Names
//
// Two kinds of names are declared ("critq help vars" lists them with their
// types; [Vars] returns them):
//
// Views join several images, as crit x does by hand. Their element types
// are the messages of critq/views/views.proto:
//
//	tasks    list(critq.views.task)     pstree + core + mm + ids + fs + fds, in tree order
//	vmas     list(critq.views.vma)      every vma_entry field, plus pid, size, path
//	fds      list(critq.views.fd)       fdinfo joined with files.img: type, path, flags, socket
//	files    list(critq.views.file)     files.img with paths, flags, deleted, owner pids
//	sockets  list(critq.views.socket)   family, type, state, addresses, ports, queues, pids
//	mounts   list(critq.views.mount)    mountpoints-<ns>.img with the namespace id
//	pagemaps list(critq.views.pagemap)  normalised pagemap entries with pid or shmid
//	images   map(string, map(string, dyn))  every file by name: name, kind, id,
//	                                    size, raw, entries, extras
//	container dyn                       a checkpoint archive's {config, spec}:
//	                                    config.dump and spec.dump as JSON; null
//	                                    for a dump folder
//
// A program adds views that another package computes with [AddView], from
// an init function: critq's cli adds problems (list(critq.views.problem),
// what package check predicts of a restore on the host given by --root),
// which query cannot build itself because check reads query's views.
//
// Kind variables hold the images of one kind, named after the kind in lower
// case (PSTREE is pstree, IPCNS_SHM ipcns_shm). A kind whose file name
// carries an id (core-<pid>.img, fdinfo-<files_id>.img, mountpoints-<ns>.img,
// tcp-stream-<hex ino>.img) is a map from that id, as a number, to the
// image's value: core[pid].tc.comm. A kind CRIU writes one message of
// (inventory, core, mm, ids, fs, ...) has that message as its value;
// other kinds a list of their entries (pagemap without its pagemap_head).
// FILES and VMAS, whose names the views take, are reached through the
// views (files[i].entry) and images.
//
// # Laziness
//
// Compile walks the checked expression to find the names it uses and, for
// each view message, the fields it selects; a view value that escapes into
// the result, a comparison or a function other than size() is needed whole.
// Eval then reads only the images those fields need, several in parallel
// (at most GOMAXPROCS at a time): tasks.map(t, t.pid) reads pstree.img
// alone, tasks.map(t, t.comm) adds the core images, and
// vmas.filter(v, v.prot & 4).size() decodes only the prot field of each VMA
// from the wire. Elements of kind variables and of images are read on
// first lookup. What a Dump has read and built is kept for the next query.
//
// # Memory
//
// mem(pid, addr, len), cstring(pid, addr), cmdline(pid) and environ(pid)
// read the tasks' memory through package mem, as do the fields
// tasks[i].cmdline and tasks[i].environ (filled when the query names
// them). A range that cannot be read is an error value that says why. The
// page index of a task is built on first use, once per Dump; other queries
// read no pagemap or pages image. See mem.go.
//
// # Numbers
//
// CRIU's fields are mostly uint32 and uint64, which CEL calls uint. The
// dialect (bitwise operators, truthy predicates in filter and exists, named
// constants such as PROT_EXEC, functions hex, flags, ip, major, minor,
// human, glob) is documented in dialect.go.
//
// # Limits and errors
//
// Every evaluation runs under its context and a cost limit ([CostLimit],
// [DefaultCostLimit]). A compile error is the dialect's *CompileError; an
// image that cannot be read gives a [*DumpError]; a failed or cancelled
// evaluation an [*EvalError].
//
// # Output
//
// [Output] writes results in crit's pretty or plain JSON (messages through
// package codec/critjson), NDJSON, tables or raw text.
package query
