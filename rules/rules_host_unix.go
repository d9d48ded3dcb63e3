//go:build unix

package rules

import (
	"os"
	"syscall"
)

// hostMode returns the raw st_mode of a file of this host (type and
// permission bits, as CRIU records it in reg_file_entry.mode).
func hostMode(st os.FileInfo) (uint32, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint32(sys.Mode), true
}
