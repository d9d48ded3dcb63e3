//go:build !unix

package rules

import "os"

// hostMode reports no mode where the host has no st_mode to compare with
// the dump's (Windows, wasm): the rename warning then checks the size only.
func hostMode(os.FileInfo) (uint32, bool) { return 0, false }
