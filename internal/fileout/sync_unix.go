//go:build !windows

package fileout

func syncDirError(err error) error { return err }
