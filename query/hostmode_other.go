//go:build !unix

package query

import "os"

// hostMode returns false: this host has no st_mode to compare with a
// dump's (Windows).
func hostMode(os.FileInfo) (uint32, bool) { return 0, false }
