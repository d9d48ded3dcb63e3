package check

import (
	"fmt"
	"slices"
	"strings"

	"github.com/critq/critq/model"
	"github.com/critq/critq/proto/images"
)

// CPU is a host's CPU as CRIU compares it with a dump's cpuinfo image.
type CPU struct {
	// Flags are the feature flags by their /proc/cpuinfo names ("sse4_2",
	// "avx2"); a flag present and false is one the CPU lacks (OSHost sets
	// the ones critq compares from CPUID on x86-64).
	Flags map[string]bool
	// XSave is false when the xsave figures below are unknown (not
	// x86-64, or no XSAVE).
	XSave bool
	// XFeatures, XSaveSize and XSaveSizeMax are CPUID leaf 0xD, subleaf
	// 0: the xstate features the CPU supports (EDX:EAX) and the XSAVE
	// area sizes (EBX, ECX), as compel reads them.
	XFeatures    uint64
	XSaveSize    uint32
	XSaveSizeMax uint32
}

// A cpuFeature is one bit of CRIU's x86 capability words (compel's
// X86_FEATURE_*: word*32+bit) and its name in /proc/cpuinfo.
type cpuFeature struct {
	word, bit int
	flag      string
}

// fpuFeatures are the bits CRIU's FPU check (--cpu-cap=fpu) requires of
// the host when the image has them (arch/x86/cpu.c, cpu_validate_features).
var fpuFeatures = []cpuFeature{{0, 0, "fpu"}, {0, 24, "fxsr"}, {4, 27, "osxsave"}, {10, 3, "xsaves"}}

// insFeatures are the bits of CRIU's instruction check (--cpu-cap=ins,
// x86_ins_capability_mask) but those of insHidden.
var insFeatures = []cpuFeature{
	{0, 0, "fpu"}, {0, 4, "tsc"}, {0, 8, "cx8"}, {0, 11, "sep"}, {0, 15, "cmov"}, {0, 19, "clflush"},
	{0, 23, "mmx"}, {0, 24, "fxsr"}, {0, 25, "sse"}, {0, 26, "sse2"},
	{1, 11, "syscall"}, {1, 22, "mmxext"}, {1, 27, "rdtscp"}, {1, 30, "3dnowext"}, {1, 31, "3dnow"},
	{4, 0, "pni"}, {4, 1, "pclmulqdq"}, {4, 3, "monitor"}, {4, 9, "ssse3"}, {4, 13, "cx16"}, {4, 19, "sse4_1"},
	{4, 20, "sse4_2"}, {4, 22, "movbe"}, {4, 23, "popcnt"}, {4, 25, "aes"}, {4, 26, "xsave"}, {4, 28, "avx"},
	{4, 29, "f16c"}, {4, 30, "rdrand"},
	{6, 5, "abm"}, {6, 6, "sse4a"}, {6, 7, "misalignsse"}, {6, 8, "3dnowprefetch"}, {6, 11, "xop"}, {6, 16, "fma4"}, {6, 21, "tbm"},
	{9, 0, "fsgsbase"}, {9, 3, "bmi1"}, {9, 5, "avx2"}, {9, 8, "bmi2"}, {9, 9, "erms"}, {9, 16, "avx512f"},
	{9, 17, "avx512dq"}, {9, 18, "rdseed"}, {9, 19, "adx"}, {9, 23, "clflushopt"}, {9, 26, "avx512pf"}, {9, 27, "avx512er"},
	{9, 28, "avx512cd"}, {9, 29, "sha_ni"}, {9, 30, "avx512bw"}, {9, 31, "avx512vl"},
	{10, 0, "xsaveopt"}, {10, 1, "xsavec"}, {10, 2, "xgetbv1"},
	{11, 1, "avx512vbmi"}, {11, 6, "avx512_vbmi2"}, {11, 8, "gfni"}, {11, 9, "vaes"}, {11, 10, "vpclmulqdq"},
	{11, 11, "avx512_vnni"}, {11, 12, "avx512_bitalg"}, {11, 13, "tme"}, {11, 14, "avx512_vpopcntdq"}, {11, 22, "rdpid"},
	{13, 0, "clzero"}, {18, 2, "avx512_4vnniw"}, {18, 3, "avx512_4fmaps"},
}

// insHidden are the bits of the instruction check that /proc/cpuinfo may
// not show though the CPU has them: the word compel fills its own way
// (rep_good, nopl), and hle, rtm and mpx, which kernels hide (TSX is
// often disabled; MPX support is gone since 5.6). They are compared only
// when the host's flags name them (OSHost reads them from CPUID), so that
// critq never cries wolf where only /proc/cpuinfo is known.
var insHidden = []cpuFeature{{3, 16, "rep_good"}, {3, 20, "nopl"}, {9, 4, "hle"}, {9, 11, "rtm"}, {9, 14, "mpx"}}

// cpuFeatures are all the bits critq compares.
func cpuFeatures() []cpuFeature {
	return slices.Concat(fpuFeatures, insFeatures, insHidden)
}

// CRIU's --cpu-cap bits (criu/include/cr_options.h).
const (
	capFPU   = 1 << 0
	capCPU   = 1 << 1
	capINS   = 1 << 2
	capImage = 1 << 3
)

// cpuCap works out CRIU's opts.cpu_cap from the restore's options as
// config.c parse_cpu_cap does: the default is fpu and ins without the
// image bit, i.e. no check of the image at all; --cpu-cap alone is all;
// any other value adds the image bit.
func cpuCap(criuOpts []string) int {
	c := capFPU | capINS
	for _, o := range criuOpts {
		v, ok := strings.CutPrefix(o, "--cpu-cap")
		if !ok || (v != "" && v[0] != '=') {
			continue
		}
		if v == "" {
			c |= capFPU | capCPU | capINS | capImage
			continue
		}
		for _, w := range strings.Split(v[1:], ",") {
			inverse := false // a comma ends a ^
			for strings.HasPrefix(w, "^") {
				inverse = !inverse
				w = w[1:]
			}
			bits := map[string]int{"fpu": capFPU, "cpu": capCPU, "ins": capINS, "all": capFPU | capCPU | capINS}[w]
			switch {
			case w == "none" && inverse:
				c = capFPU | capCPU | capINS
			case w == "none":
				c = 0
			case inverse:
				c &^= bits
			default:
				c |= bits
			}
		}
		if c != 0 {
			c |= capImage
		}
	}
	return c
}

// checkCPU compares the dump's cpuinfo image with the host's CPU as CRIU
// does on restore (arch/x86/cpu.c cpu_validate_cpuinfo), which it does
// only with --cpu-cap. Without it (or when the restore's options are
// unknown) a mismatch is a warning: the restore goes on, and the program
// may meet an instruction the CPU lacks.
func (s *state) checkCPU() error {
	f := s.d.File("cpuinfo.img")
	c := cpuCap(s.opts.CRIU)
	if f == nil {
		if c&capImage != 0 {
			s.add(Problem{Check: "cpu", Image: "cpuinfo.img", Blocking: true,
				Message: "the restore is given --cpu-cap but the dump has no cpuinfo image (dump with --cpu-cap)",
				CRIU:    "No cpuinfo image"})
		}
		return nil
	}
	ci, err := model.First[*images.CpuinfoEntry](f)
	if err != nil || ci == nil || len(ci.GetX86Entry()) != 1 {
		return err // CRIU reads an x86 entry only; other arches: not checked
	}
	img := ci.GetX86Entry()[0]
	host, err := s.host.CPU()
	if err != nil || host == nil {
		return err
	}
	s.rep.Checked["cpu"]++
	blocking := c&capImage != 0
	mode := c
	if !blocking {
		mode = capFPU | capINS // what --cpu-cap would check: say it
	}
	has := func(ft cpuFeature) bool {
		w := img.GetCapability()
		return ft.word < len(w) && w[ft.word]&(1<<ft.bit) != 0
	}
	hostHas := func(flag string) bool {
		if v, ok := host.Flags[flag]; ok || flag != "osxsave" {
			return v
		}
		return host.Flags["xsave"] // /proc/cpuinfo never lists osxsave: Linux enables XSAVE where the CPU has it
	}
	missing := func(fs []cpuFeature) []string {
		var miss []string
		for _, ft := range fs {
			if _, known := host.Flags[ft.flag]; slices.Contains(insHidden, ft) && !known {
				continue
			}
			if has(ft) && !hostHas(ft.flag) {
				miss = append(miss, ft.flag)
			}
		}
		return miss
	}
	var why []string
	crius := ""
	if mode&capFPU != 0 {
		if miss := missing(fpuFeatures); len(miss) > 0 {
			why = append(why, "FPU features "+strings.Join(miss, ", ")+" are missing")
			crius = "FPU feature required by image is not supported on host"
		} else if host.XSave {
			switch {
			case img.XfeaturesMask != nil && img.GetXfeaturesMask()&^host.XFeatures != 0:
				why = append(why, fmt.Sprintf("xstate features %#x are missing", img.GetXfeaturesMask()&^host.XFeatures))
				crius = fmt.Sprintf("CPU xfeatures has unsupported bits (%#x)", img.GetXfeaturesMask()&^host.XFeatures)
			case img.XsaveSize != nil && img.GetXsaveSize() != host.XSaveSize:
				why = append(why, fmt.Sprintf("the xsave area is %d bytes here, %d in the dump", host.XSaveSize, img.GetXsaveSize()))
				crius = fmt.Sprintf("CPU xsave size mismatch (%d/%d)", img.GetXsaveSize(), host.XSaveSize)
			case img.XsaveSizeMax != nil && img.GetXsaveSizeMax() != host.XSaveSizeMax:
				why = append(why, fmt.Sprintf("the largest xsave area is %d bytes here, %d in the dump", host.XSaveSizeMax, img.GetXsaveSizeMax()))
				crius = fmt.Sprintf("CPU xsave max size mismatch (%d/%d)", img.GetXsaveSizeMax(), host.XSaveSizeMax)
			}
		}
	}
	if mode&(capINS|capCPU) != 0 {
		if miss := missing(slices.Concat(insFeatures, insHidden)); len(miss) > 0 {
			why = append(why, "instructions "+strings.Join(miss, ", ")+" are missing")
			if crius == "" {
				crius = "CPU instruction capabilities do not match run time"
			}
		}
	}
	if len(why) == 0 {
		return nil
	}
	msg := "this CPU lacks what the dump's recorded: " + strings.Join(why, "; ")
	if !blocking {
		msg += " (CRIU compares them only with --cpu-cap; without it the restored program may fault on them)"
		crius = "with --cpu-cap: " + crius + "; without it: restores"
	}
	s.add(Problem{Check: "cpu", Image: "cpuinfo.img", Entry: "x86_entry 0", Blocking: blocking, Message: msg, CRIU: crius})
	return nil
}

// ImageCPU returns the CPU a cpuinfo image's x86 entry describes, as far
// as the checks compare it: the host that dumped it.
func ImageCPU(e *images.CpuinfoX86Entry) *CPU {
	c := &CPU{Flags: map[string]bool{}, XSave: e.XsaveSize != nil,
		XFeatures: e.GetXfeaturesMask(), XSaveSize: e.GetXsaveSize(), XSaveSizeMax: e.GetXsaveSizeMax()}
	w := e.GetCapability()
	for _, ft := range cpuFeatures() {
		if ft.word < len(w) && w[ft.word]&(1<<ft.bit) != 0 {
			c.Flags[ft.flag] = true
		}
	}
	return c
}
