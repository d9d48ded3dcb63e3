package dump

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"sort"
)

// WriteArchive writes a dump folder as a container checkpoint archive in
// the layout Podman and CRI-O use: the regular files at the root of fsys
// under checkpoint/, except stats-dump, which goes to the archive root
// beside the files of root (config.dump, spec.dump, ...). Sub-folders of
// fsys and files named in skip are left out. The tar is uncompressed: wrap
// w in a gzip or zstd writer for a compressed archive. Members are written
// in name order, so equal inputs give equal archives.
func WriteArchive(w io.Writer, fsys fs.FS, root map[string][]byte, skip ...string) error {
	tw := tar.NewWriter(w)
	add := func(name string, mode int64, r io.Reader, size int64) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		n, err := io.Copy(tw, io.LimitReader(r, size))
		if err == nil && n != size {
			err = fmt.Errorf("%s: %w", name, io.ErrUnexpectedEOF)
		}
		return err
	}
	names := make([]string, 0, len(root))
	for n := range root {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := add(n, 0o600, bytes.NewReader(root[n]), int64(len(root[n]))); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "checkpoint/", Mode: 0o700, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return err
	}
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || skipped[e.Name()] {
			continue
		}
		name := "checkpoint/" + e.Name()
		if e.Name() == "stats-dump" {
			name = e.Name()
		}
		if err := copyMember(fsys, e, name, add); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyMember(fsys fs.FS, e fs.DirEntry, name string, add func(string, int64, io.Reader, int64) error) error {
	info, err := e.Info()
	if err != nil {
		return err
	}
	f, err := fsys.Open(e.Name())
	if err != nil {
		return err
	}
	defer f.Close()
	return add(name, 0o600, f, info.Size())
}
