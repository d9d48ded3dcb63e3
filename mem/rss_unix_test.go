//go:build unix

package mem_test

import "syscall"

// maxRSSMB returns the peak resident size of the process so far, in MiB
// (Linux reports ru_maxrss in KiB).
func maxRSSMB() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024
}
