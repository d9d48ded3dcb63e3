package query

import (
	"context"
	"errors"
	"fmt"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/mem"
	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/views"
)

// memLib is critq.mem: the functions that read the memory of the dump's
// tasks (package mem). Their bindings are late: each evaluation binds them
// to the dump it reads, so one compiled query serves many dumps. A pid or
// an address may be an int or a uint.
//
// The page index of a task is built the first time one of them reads that
// task, once per Dump; a query that calls none of them never reads a
// pagemap or pages image.
//
// # Mem
//
// mem returns len bytes of the memory of task pid at addr. A range that is
// not wholly readable is an error that says why: outside every VMA, a
// file mapping whose bytes are in the file and not in the dump ("not in the
// dump: FILE + offset"), a zombie. Pages the dump does not hold in an
// anonymous mapping read as zero. len is at most 16 MiB.
//
//	mem(<int|uint>, <int|uint>, <int|uint>) -> <bytes>
//
// Examples:
//
//	mem(1, tasks[0].mm.mm_arg_start, 4) // b"/bin"
//
// # Cstring
//
// cstring returns the NUL-terminated string of task pid at addr, without
// the NUL (at most 64 KiB).
//
//	cstring(<int|uint>, <int|uint>) -> <string>
//
// # Cmdline and environ
//
// cmdline and environ return the arguments and the environment of task
// pid, read between mm's mm_arg_start and mm_arg_end (mm_env_start and
// mm_env_end) and split at NUL bytes, as /proc/PID/cmdline and
// /proc/PID/environ show them. A zombie or dead task has none: []. The
// tasks view has them as fields: tasks[i].cmdline, tasks[i].environ.
//
//	cmdline(<int|uint>) -> <list<string>>
//	environ(<int|uint>) -> <list<string>>
//
// Examples:
//
//	cmdline(1)                                      // ["/sbin/init", "splash"]
//	tasks.map(t, environ(t.pid).filter(e, e.startsWith("PATH=")))
type memLib struct{}

// Names of the memory functions.
const (
	fnMem     = "mem"
	fnCString = "cstring"
	fnCmdline = "cmdline"
	fnEnviron = "environ"
)

// memFuncs are the names of memLib's functions.
var memFuncs = []string{fnMem, fnCString, fnCmdline, fnEnviron}

// maxMemRead bounds the length of one mem() call.
const maxMemRead = 16 << 20

// LibraryName implements cel.SingletonLibrary.
func (memLib) LibraryName() string { return "critq.mem" }

// CompileOptions implements cel.Library.
func (memLib) CompileOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Function(fnMem, memOverloads(fnMem, 3, cel.BytesType)...),
		cel.Function(fnCString, memOverloads(fnCString, 2, cel.StringType)...),
		cel.Function(fnCmdline, memOverloads(fnCmdline, 1, cel.ListType(cel.StringType))...),
		cel.Function(fnEnviron, memOverloads(fnEnviron, 1, cel.ListType(cel.StringType))...),
	}
}

// ProgramOptions implements cel.Library.
func (memLib) ProgramOptions() []cel.ProgramOption { return nil }

// memOverloads declares fn for every mix of int and uint in its n
// arguments, all bound late.
func memOverloads(fn string, n int, result *cel.Type) []cel.FunctionOpt {
	var out []cel.FunctionOpt
	for mask := 0; mask < 1<<n; mask++ {
		id := "critq_" + fn
		args := make([]*cel.Type, n)
		for i := range args {
			if mask&(1<<i) != 0 {
				args[i], id = cel.UintType, id+"_uint"
			} else {
				args[i], id = cel.IntType, id+"_int"
			}
		}
		out = append(out, cel.Overload(id, args, result, cel.LateFunctionBinding()))
	}
	return out
}

// usesMemory reports whether the query calls a memory function.
func (n *needs) usesMemory() bool {
	for _, f := range memFuncs {
		if n.funcs[f] {
			return true
		}
	}
	return false
}

// readsMemory reports whether the query reads the memory of tasks: it
// calls a memory function or names a field of the tasks view that
// taskMemory fills.
func (n *needs) readsMemory() bool {
	return n.usesMemory() || n.named(typeTask, "cmdline") || n.named(typeTask, "environ") || n.named(typeTask, "mem_error")
}

// memory returns the memory of the dump, opened once. Nothing is read
// until a function asks.
func (d *Dump) memory() *mem.Memory {
	m, _ := onceAs(d, "memory", func() (*mem.Memory, error) { return mem.Open(d.d), nil })
	return m
}

// withMemory returns the activation of an evaluation: act, with the late
// functions bound to d when the query calls them: the memory functions and
// ip (ip.go).
func (d *Dump) withMemory(act map[string]any, n *needs) (any, error) {
	late := map[string]cel.LateBoundFunction{}
	if n.funcs[fnIP] {
		late[fnIP] = ipBinding(d.byteOrder())
	}
	if n.usesMemory() {
		m := d.memory()
		// A read that fails is an error value, which || and && can
		// absorb: a failure on a damaged or missing image is recorded.
		bind := func(f func(m *mem.Memory, args []ref.Val) ref.Val) cel.LateBoundFunction {
			return func(_ string, args ...ref.Val) ref.Val {
				v := f(m, args)
				var re *readError
				if e, ok := v.(*types.Err); ok && errors.As(e, &re) {
					d.damaged(re.err)
				}
				return v
			}
		}
		late[fnMem], late[fnCString] = bind(celMem), bind(celCString)
		late[fnCmdline] = bind(func(m *mem.Memory, args []ref.Val) ref.Val { return celStrings(m.Cmdline, args) })
		late[fnEnviron] = bind(func(m *mem.Memory, args []ref.Val) ref.Val { return celStrings(m.Environ, args) })
	}
	if len(late) == 0 {
		return act, nil
	}
	return cel.FunctionVars(act, late)
}

// memArg returns argument i as a uint64 no larger than limit.
func memArg(args []ref.Val, i int, what string, limit uint64) (uint64, ref.Val) {
	if i >= len(args) {
		return 0, types.NewErr("missing %s", what)
	}
	var v uint64
	switch a := args[i].(type) {
	case types.Int:
		if a < 0 {
			return 0, types.NewErr("%s %d is negative", what, int64(a))
		}
		v = uint64(a)
	case types.Uint:
		v = uint64(a)
	default:
		if types.IsError(a) {
			return 0, a
		}
		return 0, types.NewErr("%s: no number: %v", what, a.Type())
	}
	if v > limit {
		return 0, types.NewErr("%s %d is more than %d", what, v, limit)
	}
	return v, nil
}

// memPID returns the pid argument.
func memPID(args []ref.Val) (uint32, ref.Val) {
	v, bad := memArg(args, 0, "pid", 1<<32-1)
	return uint32(v), bad
}

// memPIDAddr returns the pid and address arguments.
func memPIDAddr(args []ref.Val) (uint32, uint64, ref.Val) {
	pid, bad := memPID(args)
	if bad != nil {
		return 0, 0, bad
	}
	addr, bad := memArg(args, 1, "address", 1<<64-1)
	return pid, addr, bad
}

func celMem(m *mem.Memory, args []ref.Val) ref.Val {
	pid, addr, bad := memPIDAddr(args)
	if bad != nil {
		return bad
	}
	n, bad := memArg(args, 2, "length", maxMemRead)
	if bad != nil {
		return bad
	}
	b, err := m.Read(pid, addr, int(n))
	if err != nil {
		return memErr(err)
	}
	return types.Bytes(b)
}

func celCString(m *mem.Memory, args []ref.Val) ref.Val {
	pid, addr, bad := memPIDAddr(args)
	if bad != nil {
		return bad
	}
	s, err := m.CString(pid, addr)
	if err != nil {
		return memErr(err)
	}
	return types.String(s)
}

func celStrings(get func(uint32) ([]string, error), args []ref.Val) ref.Val {
	pid, bad := memPID(args)
	if bad != nil {
		return bad
	}
	s, err := get(pid)
	if err != nil {
		return memErr(err)
	}
	return types.NewStringList(types.DefaultTypeAdapter, s)
}

// memErr turns a memory error (usually a *mem.AddrError) into a CEL
// error value with its text.
func memErr(err error) ref.Val { return types.WrapErr(&readError{err}) }

// readError is a failed read of memory.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// named reports whether the query selects field of view message msg by
// name; a view needed whole does not count.
func (n *needs) named(msg, field string) bool {
	fs := n.fields[msg]
	return fs != nil && fs.names[field]
}

// taskMemory fills the cmdline, environ and mem_error fields of the tasks
// view when the query names them (tasks.map(t, t.cmdline)); a task view
// needed whole (tasks[0]) goes without them, so that printing tasks reads
// no memory. It reads the mm and pagemap images of every task in parallel
// first.
func (d *Dump) taskMemory(ctx context.Context, n *needs, out []*views.Task) error {
	wantArgs, wantEnv := n.named(typeTask, "cmdline"), n.named(typeTask, "environ")
	if n.named(typeTask, "mem_error") {
		wantArgs, wantEnv = true, true
	}
	if !wantArgs && !wantEnv {
		return nil
	}
	var files []*dump.File
	for _, t := range out {
		files = append(files, d.d.FileFor("MM", uint64(t.GetPid())), d.d.FileFor("PAGEMAP", uint64(t.GetPid())))
	}
	if err := prefetch(ctx, nonNil(files...), readImage); err != nil {
		return err
	}
	m := d.memory()
	for _, t := range out {
		if err := ctx.Err(); err != nil {
			return err
		}
		var errs []string
		read := func(want bool, get func(uint32) ([]string, error)) []string {
			if !want {
				return nil
			}
			s, err := get(t.GetPid())
			if err != nil {
				errs = append(errs, err.Error())
				d.damaged(err)
				return nil
			}
			return s
		}
		t.Cmdline = read(wantArgs, m.Cmdline)
		t.Environ = read(wantEnv, m.Environ)
		switch len(errs) {
		case 0:
		case 1:
			t.MemError = proto.String(errs[0])
		default:
			t.MemError = proto.String(fmt.Sprintf("%s; %s", errs[0], errs[1]))
		}
	}
	return nil
}

// damaged records a memory read that failed because an image is damaged
// or missing (not because the memory is not in the dump by design: a
// zombie, an address in no VMA, a file's bytes): the value that needed it
// is partial (see [Dump.Warnings]). A missing image is the model's to
// record.
func (d *Dump) damaged(err error) {
	for _, why := range []error{mem.ErrUnmapped, mem.ErrNotDumped, mem.ErrNoMemory} {
		if errors.Is(err, why) {
			return
		}
	}
	var me *model.MissingError
	if errors.As(err, &me) {
		d.tell(missingWarning(me))
		return
	}
	d.mu.Lock()
	d.damage = append(d.damage, err.Error())
	d.mu.Unlock()
	d.tell(warning{err.Error(), err.Error()})
}
