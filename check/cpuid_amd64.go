package check

func cpuid(leaf, sub uint32) (a, b, c, d uint32)

// xsaveInfo reads CPUID leaf 0xD, subleaf 0, as compel does (fpu.c):
// the xstate features and the sizes of the XSAVE area.
func xsaveInfo(c *CPU) {
	if max, _, _, _ := cpuid(0, 0); max < 0xd || !c.Flags["xsave"] {
		return
	}
	a, b, cx, d := cpuid(0xd, 0)
	c.XSave, c.XFeatures, c.XSaveSize, c.XSaveSizeMax = true, uint64(a)|uint64(d)<<32, b, cx
}
