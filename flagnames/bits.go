package flagnames

// Bits of vma_entry.status (CRIU's VMA_* of criu/include/image.h) and of
// vma_entry.flags (mmap's MAP_*), for code that tests them. The tables above
// name the same bits for printing.
const (
	VMAAreaRegular  = 1 << 0
	VMAAreaStack    = 1 << 1
	VMAAreaVsyscall = 1 << 2
	VMAAreaVDSO     = 1 << 3
	VMAAreaHeap     = 1 << 5
	VMAFilePrivate  = 1 << 6
	VMAFileShared   = 1 << 7
	VMAAnonShared   = 1 << 8
	VMAAnonPrivate  = 1 << 9
	VMAAreaSysVIPC  = 1 << 10
	VMAAreaSocket   = 1 << 11
	VMAAreaVVAR     = 1 << 12
	VMAAreaAIORing  = 1 << 13
	VMAAreaMemfd    = 1 << 14

	MapShared    = 0x1
	MapPrivate   = 0x2
	MapAnon      = 0x20
	MapGrowsDown = 0x100
)

// Prot is a VMA's protection as crit x mems prints it: "r-x".
func Prot(prot uint32) string {
	b := []byte("---")
	for i, c := range "rwx" {
		if prot&(1<<i) != 0 {
			b[i] = byte(c)
		}
	}
	return string(b)
}

// Perms is a VMA's protection and sharing as /proc/PID/maps prints them:
// "r-xp", "rw-s".
func Perms(prot, flags uint32) string {
	if flags&MapShared != 0 {
		return Prot(prot) + "s"
	}
	return Prot(prot) + "p"
}
