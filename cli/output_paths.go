package cli

import "github.com/critq/critq/internal/fileout"

// checkOutDir refuses an output folder inside the input dump (a usage
// error): the new dump would be written into the old one.
func checkOutDir(out, in string) error {
	if fileout.Within(out, in) {
		return usageErrorf("transform: -o %s is inside the dump %s: give a folder outside it", out, in)
	}
	return nil
}
