package elfcore

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/critq/critq/explore"
	"github.com/critq/critq/proto/images"
)

// Note types that debug/elf does not name (include/uapi/linux/elf.h).
const (
	ntAuxv      = 6
	ntSiginfo   = 0x53494749
	ntFile      = 0x46494c45
	ntX86Xstate = 0x202
	ntArmTLS    = 0x401
	atNull      = 0
)

// Sizes of the kernel's structures on 64-bit Linux.
const (
	prpsinfoSize = 136
	siginfoSize  = 128
	psargsLen    = 80
	prRegOff     = 112 // offset of pr_reg in elf_prstatus
	fxsaveSize   = 512
	xcr0Off      = 464 // XCR0 in the software-reserved bytes of the FXSAVE area (as ptrace and cores give it)
)

// CRIU's task states (core_entry.tc.task_state).
const (
	taskAlive   = 1
	taskDead    = 2
	taskStopped = 3
)

// arch is what differs between architectures.
type arch struct {
	machine  elf.Machine
	nregs    int // elf_gregset_t words
	regs     func(c *images.CoreEntry) ([]uint64, error)
	regsets  func(c *images.CoreEntry) ([]note, error) // after NT_PRSTATUS, NT_SIGINFO goes after the first
	hasState func(c *images.CoreEntry) bool
}

func archOf(c *images.CoreEntry) (*arch, error) {
	switch c.GetMtype() {
	case images.CoreEntry_X86_64:
		return &archX86, nil
	case images.CoreEntry_AARCH64:
		return &archArm64, nil
	}
	return nil, fmt.Errorf("architecture %v: no core writer (x86_64 and aarch64 only)", c.GetMtype())
}

type note struct {
	name string
	typ  uint32
	desc []byte
}

func appendNote(b []byte, n note) []byte {
	var h [12]byte
	le.PutUint32(h[0:], uint32(len(n.name)+1))
	le.PutUint32(h[4:], uint32(len(n.desc)))
	le.PutUint32(h[8:], n.typ)
	b = append(b, h[:]...)
	b = append(b, n.name...)
	b = append(b, 0)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	b = append(b, n.desc...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// buildNotes returns the PT_NOTE contents of a task.
func buildNotes(a *arch, t *explore.Task, threads []thread, mm *images.MmEntry, vmas []*images.VmaEntry, paths []string, ps uint64, psargs string) ([]byte, error) {
	var b []byte
	b = appendNote(b, note{"CORE", uint32(elf.NT_PRPSINFO), prpsinfo(t, psargs)})
	for _, th := range threads {
		if th.core.GetMtype() != t.Core.GetMtype() {
			return nil, fmt.Errorf("core-%d.img: architecture %v, the task's is %v", th.tid, th.core.GetMtype(), t.Core.GetMtype())
		}
		var regs []uint64
		var sets []note
		if a.hasState(th.core) {
			var err error
			if regs, err = a.regs(th.core); err != nil {
				return nil, fmt.Errorf("core-%d.img: %w", th.tid, err)
			}
			if sets, err = a.regsets(th.core); err != nil {
				return nil, fmt.Errorf("core-%d.img: %w", th.tid, err)
			}
		} else if len(threads) > 1 || t.HasMemory() {
			return nil, fmt.Errorf("core-%d.img: no registers", th.tid)
		}
		b = appendNote(b, note{"CORE", uint32(elf.NT_PRSTATUS), prstatus(a, t, th, regs, len(sets) > 0)})
		if len(sets) > 0 {
			b = appendNote(b, sets[0])
		}
		b = appendNote(b, note{"CORE", ntSiginfo, make([]byte, siginfoSize)})
		for _, s := range sets[min(1, len(sets)):] {
			b = appendNote(b, s)
		}
	}
	auxv, err := auxvNote(mm)
	if err != nil {
		return nil, err
	}
	b = appendNote(b, note{"CORE", ntAuxv, auxv})
	b = appendNote(b, note{"CORE", ntFile, fileNote(vmas, paths, ps)})
	return b, nil
}

func prpsinfo(t *explore.Task, psargs string) []byte {
	b := make([]byte, prpsinfoSize)
	tc := t.Core.GetTc()
	var state byte
	switch tc.GetTaskState() {
	case taskDead:
		state = 4
	case taskStopped:
		state = 3
	}
	b[0] = state
	b[1] = "RSDTZW"[state]
	if state == 4 {
		b[2] = 1
	}
	b[3] = byte(int8(t.Core.GetThreadCore().GetSchedNice()))
	le.PutUint64(b[8:], uint64(tc.GetFlags()))
	creds := t.Core.GetThreadCore().GetCreds()
	le.PutUint32(b[16:], creds.GetUid())
	le.PutUint32(b[20:], creds.GetGid())
	le.PutUint32(b[24:], t.PID)
	le.PutUint32(b[28:], t.PPID)
	le.PutUint32(b[32:], t.PGID)
	le.PutUint32(b[36:], t.SID)
	copy(b[40:55], tc.GetComm()) // fname[16], NUL-terminated
	copy(b[56:56+psargsLen-1], psargs)
	return b
}

func prstatus(a *arch, t *explore.Task, th thread, regs []uint64, fpvalid bool) []byte {
	size := prRegOff + 8*a.nregs + 8 // pr_reg, pr_fpvalid and padding to 8
	b := make([]byte, size)
	hold := t.Core.GetTc().GetBlkSigset()
	if tc := th.core.GetThreadCore(); tc != nil && tc.BlkSigset != nil {
		hold = tc.GetBlkSigset()
	}
	le.PutUint64(b[24:], hold)
	le.PutUint32(b[32:], th.tid)
	le.PutUint32(b[36:], t.PPID)
	le.PutUint32(b[40:], t.PGID)
	le.PutUint32(b[44:], t.SID)
	for i, r := range regs {
		le.PutUint64(b[prRegOff+8*i:], r)
	}
	if fpvalid {
		le.PutUint32(b[prRegOff+8*a.nregs:], 1)
	}
	return b
}

// auxvNote returns mm_saved_auxv as the kernel writes NT_AUXV: pairs up to
// and including AT_NULL (CRIU keeps the vector without its AT_NULL).
func auxvNote(mm *images.MmEntry) ([]byte, error) {
	v := mm.GetMmSavedAuxv()
	if len(v)%2 != 0 {
		return nil, fmt.Errorf("mm: mm_saved_auxv has %d words, not pairs", len(v))
	}
	var b []byte
	for i := 0; i+1 < len(v); i += 2 {
		b = le.AppendUint64(b, v[i])
		b = le.AppendUint64(b, v[i+1])
		if v[i] == atNull {
			return b, nil
		}
	}
	return append(b, make([]byte, 16)...), nil
}

// fileNote returns NT_FILE: the VMAs that have a file, with their offsets
// in pages, then their paths.
func fileNote(vmas []*images.VmaEntry, paths []string, ps uint64) []byte {
	var ents, names []byte
	n := 0
	for i, v := range vmas {
		if !fileVMA(v) {
			continue
		}
		n++
		ents = le.AppendUint64(ents, v.GetStart())
		ents = le.AppendUint64(ents, v.GetEnd())
		ents = le.AppendUint64(ents, v.GetPgoff()/ps)
		names = append(names, paths[i]...)
		names = append(names, 0)
	}
	b := le.AppendUint64(nil, uint64(n))
	b = le.AppendUint64(b, ps)
	return append(append(b, ents...), names...)
}

// x86_64

var archX86 = arch{
	machine:  elf.EM_X86_64,
	nregs:    27,
	hasState: func(c *images.CoreEntry) bool { return c.GetThreadInfo() != nil },
	regs: func(c *images.CoreEntry) ([]uint64, error) {
		g := c.GetThreadInfo().GetGpregs()
		if g == nil {
			return nil, fmt.Errorf("no gpregs")
		}
		if g.GetMode() != images.UserX86RegsMode_NATIVE {
			return nil, fmt.Errorf("a 32-bit (compat) task: no core writer")
		}
		return []uint64{g.GetR15(), g.GetR14(), g.GetR13(), g.GetR12(), g.GetBp(), g.GetBx(),
			g.GetR11(), g.GetR10(), g.GetR9(), g.GetR8(), g.GetAx(), g.GetCx(), g.GetDx(),
			g.GetSi(), g.GetDi(), g.GetOrigAx(), g.GetIp(), g.GetCs(), g.GetFlags(), g.GetSp(),
			g.GetSs(), g.GetFsBase(), g.GetGsBase(), g.GetDs(), g.GetEs(), g.GetFs(), g.GetGs()}, nil
	},
	regsets: func(c *images.CoreEntry) ([]note, error) {
		fp := c.GetThreadInfo().GetFpregs()
		if fp == nil {
			return nil, fmt.Errorf("no fpregs")
		}
		fx, err := fxsave(fp)
		if err != nil {
			return nil, err
		}
		sets := []note{{"CORE", uint32(elf.NT_FPREGSET), fx}}
		if xs := fp.GetXsave(); xs != nil {
			x, err := xstate(fx, xs)
			if err != nil {
				return nil, err
			}
			sets = append(sets, note{"LINUX", ntX86Xstate, x})
		}
		return sets, nil
	},
}

// putWords writes words of size bytes each at b, checking their number.
func putWords[T uint32 | uint64](b []byte, what string, want int, ws []T) error {
	if len(ws) != want {
		return fmt.Errorf("%s: %d words, want %d", what, len(ws), want)
	}
	for i, w := range ws {
		switch any(w).(type) {
		case uint32:
			le.PutUint32(b[4*i:], uint32(w))
		default:
			le.PutUint64(b[8*i:], uint64(w))
		}
	}
	return nil
}

// fxsave returns the FXSAVE area (user_fpregs_struct) of the FP registers.
func fxsave(fp *images.UserX86FpregsEntry) ([]byte, error) {
	b := make([]byte, fxsaveSize)
	le.PutUint16(b[0:], uint16(fp.GetCwd()))
	le.PutUint16(b[2:], uint16(fp.GetSwd()))
	le.PutUint16(b[4:], uint16(fp.GetTwd()))
	le.PutUint16(b[6:], uint16(fp.GetFop()))
	le.PutUint64(b[8:], fp.GetRip())
	le.PutUint64(b[16:], fp.GetRdp())
	le.PutUint32(b[24:], fp.GetMxcsr())
	le.PutUint32(b[28:], fp.GetMxcsrMask())
	if err := putWords(b[32:], "st_space", 32, fp.GetStSpace()); err != nil {
		return nil, err
	}
	if err := putWords(b[160:], "xmm_space", 64, fp.GetXmmSpace()); err != nil {
		return nil, err
	}
	if pad := fp.GetPadding(); len(pad) > 0 {
		if err := putWords(b[416:], "padding", 24, pad); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// XSAVE state components (XCR0 bits) and their offsets in the standard
// (non-compacted) layout that cores use.
const (
	xfeatFP     = 1 << 0
	xfeatSSE    = 1 << 1
	xfeatAVX    = 1 << 2
	xfeatOpmask = 1 << 5
	xfeatZMMHi  = 1 << 6
	xfeatHi16   = 1 << 7
	xfeatPKRU   = 1 << 9

	xsaveAVXSize    = 832  // FP, SSE, AVX
	xsaveAVX512Size = 2688 // ... opmask, ZMM_Hi256, Hi16_ZMM
	xsavePKRUSize   = 2696 // ... PKRU
)

// xstate returns NT_X86_XSTATE: the FXSAVE area with XCR0 in its
// software-reserved bytes, the XSAVE header, and the extended components
// the images hold. Its size is the one gdb expects for that XCR0: AVX
// (832 bytes), AVX-512 (2688) or AVX-512 with PKRU (2696).
func xstate(fx []byte, xs *images.UserX86XsaveEntry) ([]byte, error) {
	xcr0 := uint64(xfeatFP | xfeatSSE | xfeatAVX)
	size := xsaveAVXSize
	avx512 := len(xs.GetOpmaskReg()) > 0 || len(xs.GetZmmUpper()) > 0 || len(xs.GetHi16Zmm()) > 0
	if avx512 {
		xcr0 |= xfeatOpmask | xfeatZMMHi | xfeatHi16
		size = xsaveAVX512Size
		if len(xs.GetPkru()) > 0 {
			xcr0 |= xfeatPKRU
			size = xsavePKRUSize
		}
	}
	b := make([]byte, size)
	copy(b, fx)
	le.PutUint64(b[xcr0Off:], xcr0)
	le.PutUint64(b[512:], xs.GetXstateBv())
	if ymm := xs.GetYmmhSpace(); len(ymm) > 0 {
		if err := putWords(b[576:], "ymmh_space", 64, ymm); err != nil {
			return nil, err
		}
	}
	if avx512 {
		if err := putWords(b[1088:], "opmask_reg", 8, xs.GetOpmaskReg()); err != nil {
			return nil, err
		}
		if err := putWords(b[1152:], "zmm_upper", 64, xs.GetZmmUpper()); err != nil {
			return nil, err
		}
		if err := putWords(b[1664:], "hi16_zmm", 128, xs.GetHi16Zmm()); err != nil {
			return nil, err
		}
		pk := xs.GetPkru()
		if len(pk) > 2 {
			return nil, fmt.Errorf("pkru: %d words, want at most 2", len(pk))
		}
		for i, w := range pk {
			le.PutUint32(b[2688+4*i:], w)
		}
	}
	return b, nil
}

// aarch64

var archArm64 = arch{
	machine:  elf.EM_AARCH64,
	nregs:    34,
	hasState: func(c *images.CoreEntry) bool { return c.GetTiAarch64() != nil },
	regs: func(c *images.CoreEntry) ([]uint64, error) {
		g := c.GetTiAarch64().GetGpregs()
		if g == nil || len(g.GetRegs()) != 31 {
			return nil, fmt.Errorf("aarch64 gpregs: want 31 regs")
		}
		return append(append([]uint64(nil), g.GetRegs()...), g.GetSp(), g.GetPc(), g.GetPstate()), nil
	},
	regsets: func(c *images.CoreEntry) ([]note, error) {
		ti := c.GetTiAarch64()
		fp := ti.GetFpsimd()
		if fp == nil {
			return nil, fmt.Errorf("no fpsimd")
		}
		b := make([]byte, 528) // user_fpsimd_state
		if err := putWords(b, "vregs", 64, fp.GetVregs()); err != nil {
			return nil, err
		}
		le.PutUint32(b[512:], fp.GetFpsr())
		le.PutUint32(b[516:], fp.GetFpcr())
		return []note{
			{"CORE", uint32(elf.NT_FPREGSET), b},
			{"LINUX", ntArmTLS, le.AppendUint64(nil, ti.GetTls())},
		}, nil
	},
}

// buildID returns the GNU build-id of an ELF file, if it has one.
func buildID(r io.ReaderAt) ([]byte, bool) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, false
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE || p.Filesz > 1<<20 {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			continue
		}
		for len(b) >= 12 {
			nsz, dsz, typ := f.ByteOrder.Uint32(b), f.ByteOrder.Uint32(b[4:]), f.ByteOrder.Uint32(b[8:])
			no := 12 + (uint64(nsz)+3)&^3
			end := no + (uint64(dsz)+3)&^3
			if end > uint64(len(b)) {
				break
			}
			if typ == 3 && nsz == 4 && string(b[12:15]) == "GNU" { // NT_GNU_BUILD_ID
				return b[no : no+uint64(dsz)], true
			}
			b = b[end:]
		}
	}
	return nil, false
}

// sameBuildID compares a build-id with CRIU's record: the bytes as
// little-endian 32-bit words.
func sameBuildID(got []byte, rec []uint32) bool {
	var want []byte
	for _, w := range rec {
		want = binary.LittleEndian.AppendUint32(want, w)
	}
	return string(got) == string(want)
}
