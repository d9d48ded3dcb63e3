package check

func cpuid(leaf, sub uint32) (a, b, c, d uint32)

// cpuidFlags sets the flags of the features critq compares from CPUID
// itself, as compel reads them (compel_cpuid: raw leaves 1, 7.0, 0xD.1,
// 0x80000001, 0x80000008): the kernel hides some of them from
// /proc/cpuinfo (osxsave always, rdseed on some AMD CPUs, ...), which
// CRIU does not.
func cpuidFlags(c *CPU) {
	maxLeaf, vb, vc, vd := cpuid(0, 0)
	maxExt, _, _, _ := cpuid(0x80000000, 0)
	words := map[int]uint32{}
	if maxLeaf >= 1 {
		ax, _, cx, dx := cpuid(1, 0)
		words[0], words[4] = dx, cx
		// compel's own word: nopl always on x86-64; rep_good on Intel
		// family 6 and AMD from family 0x10 (its early_init subset).
		family := ax >> 8 & 0xf
		if family == 0xf {
			family += ax >> 20 & 0xff
		}
		vendor := string(le32(vb)) + string(le32(vd)) + string(le32(vc))
		words[3] = 1 << 20
		if vendor == "GenuineIntel" && family == 6 || vendor == "AuthenticAMD" && family >= 0x10 {
			words[3] |= 1 << 16
		}
	}
	if maxLeaf >= 7 {
		_, bx, cx, dx := cpuid(7, 0)
		words[9], words[11], words[18] = bx, cx, dx
	}
	if maxLeaf >= 0xd {
		ax, _, _, _ := cpuid(0xd, 1)
		words[10] = ax
	}
	if maxExt >= 0x80000001 {
		_, _, cx, dx := cpuid(0x80000001, 0)
		words[1], words[6] = dx, cx
	}
	if maxExt >= 0x80000008 {
		_, bx, _, _ := cpuid(0x80000008, 0)
		words[13] = bx
	}
	for _, ft := range cpuFeatures() {
		if w, ok := words[ft.word]; ok {
			c.Flags[ft.flag] = w&(1<<ft.bit) != 0
		}
	}
}

// xsaveInfo reads CPUID leaf 0xD, subleaf 0, as compel does (fpu.c):
// the xstate features and the sizes of the XSAVE area.
func xsaveInfo(c *CPU) {
	if max, _, _, _ := cpuid(0, 0); max < 0xd || !c.Flags["xsave"] {
		return
	}
	a, b, cx, d := cpuid(0xd, 0)
	c.XSave, c.XFeatures, c.XSaveSize, c.XSaveSizeMax = true, uint64(a)|uint64(d)<<32, b, cx
}

func le32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
