package container

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Member is one member of rootfs-diff.tar: a file the container changed.
type Member struct {
	// Path is the member's name, relative to the container's root.
	Path string `json:"path"`
	// Type is file, dir, symlink, hardlink, char, block or fifo.
	Type  string    `json:"type"`
	Size  int64     `json:"size"`
	Mode  uint32    `json:"mode"` // permission bits, setuid, setgid and sticky
	UID   int       `json:"uid"`
	GID   int       `json:"gid"`
	User  string    `json:"user,omitempty"`
	Group string    `json:"group,omitempty"`
	MTime time.Time `json:"mtime"`
	// Link is the target of a symlink or hardlink.
	Link string `json:"link,omitempty"`
	// Devmajor and Devminor are those of a device node.
	Devmajor int64 `json:"devmajor,omitempty"`
	Devminor int64 `json:"devminor,omitempty"`
}

// maxRootfsMembers bounds the members of a rootfs-diff.tar that are listed.
const maxRootfsMembers = 10_000_000

var tarTypes = map[byte]string{
	tar.TypeReg: "file", tar.TypeDir: "dir", tar.TypeSymlink: "symlink", tar.TypeLink: "hardlink",
	tar.TypeChar: "char", tar.TypeBlock: "block", tar.TypeFifo: "fifo",
}

// member checks a header of rootfs-diff.tar and describes it; ok is false
// for a header that is no file (PAX globals ...).
func member(h *tar.Header) (m Member, ok bool, err error) {
	name, err := cleanName(h.Name)
	if err != nil {
		return m, false, err
	}
	t, known := tarTypes[h.Typeflag]
	if !known { // archive/tar reports old-style regular files as TypeReg
		return m, false, nil
	}
	if name == "" {
		name = "."
	}
	m = Member{Path: name, Type: t, Size: h.Size, Mode: uint32(h.Mode) & 0o7777, UID: h.Uid, GID: h.Gid,
		User: h.Uname, Group: h.Gname, MTime: h.ModTime.UTC(), Link: h.Linkname}
	if t == "hardlink" {
		if _, err := cleanName(h.Linkname); err != nil {
			return m, false, fmt.Errorf("hardlink %q: target %w", h.Name, err)
		}
	}
	if t == "char" || t == "block" {
		m.Devmajor, m.Devminor = h.Devmajor, h.Devminor
	}
	if t != "file" {
		m.Size = 0
	}
	return m, true, nil
}

// walkRootfs calls fn for each member of the rootfs-diff.tar that r holds,
// with a reader of its data; a ReadSeeker r lets tar skip data unread.
func walkRootfs(r io.Reader, fn func(m Member, data io.Reader) error) error {
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if n >= maxRootfsMembers {
			return fmt.Errorf("more than %d members", maxRootfsMembers)
		}
		m, ok, err := member(h)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := fn(m, tr); err != nil {
			return err
		}
	}
}

// listRootfs lists the members of the rootfs-diff.tar that r holds.
func listRootfs(r io.Reader) ([]Member, error) {
	out := []Member{}
	err := walkRootfs(r, func(m Member, _ io.Reader) error {
		out = append(out, m)
		return nil
	})
	return out, err
}

// ErrNoRootfs is the error of Rootfs and Cat for a checkpoint without
// rootfs-diff.tar.
var ErrNoRootfs = errors.New("no rootfs-diff.tar in the checkpoint")

// withRootfs calls fn with a reader of the rootfs-diff.tar of the
// checkpoint at p (an archive, read in place, or a checkpoint folder).
func withRootfs(p string, fn func(r io.Reader) error) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		f, err := os.Open(filepath.Join(p, rootfsDiff))
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", p, ErrNoRootfs)
		}
		if err != nil {
			return err
		}
		defer f.Close()
		if err := fn(f); err != nil && !errors.Is(err, errStop) {
			return fmt.Errorf("%s: %s: %w", p, rootfsDiff, err)
		}
		return nil
	}
	found := false
	_, _, err = walkArchive(p, func(name string, h *tar.Header, data io.Reader) error {
		if name != rootfsDiff || h.Typeflag != tar.TypeReg {
			return nil
		}
		found = true
		if err := fn(data); err != nil {
			if errors.Is(err, errStop) {
				return err
			}
			return fmt.Errorf("%s: %s: %w", p, rootfsDiff, err)
		}
		return errStop
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s: %w", p, ErrNoRootfs)
	}
	return nil
}

// Rootfs lists the members of the rootfs-diff.tar of the checkpoint at p.
func Rootfs(p string) ([]Member, error) {
	var out []Member
	err := withRootfs(p, func(r io.Reader) error {
		var err error
		out, err = listRootfs(r)
		return err
	})
	return out, err
}

// ErrNoMember is the error of Cat for a path that rootfs-diff.tar does not
// hold as a regular file.
var ErrNoMember = errors.New("no such file in rootfs-diff.tar")

// ErrNotFile is the error of Cat for a path that is not a regular file.
var ErrNotFile = errors.New("not a regular file")

// Cat writes the bytes of the regular file name of rootfs-diff.tar to w,
// as tar -xO does, and returns its description. A name that is not a
// regular file is an error (a symlink is not followed).
func Cat(p, name string, w io.Writer) (Member, error) {
	want, err := cleanName(name)
	if err != nil || want == "" {
		return Member{}, fmt.Errorf("%s: bad path %q", p, name)
	}
	var got Member
	found := false
	err = withRootfs(p, func(r io.Reader) error {
		return walkRootfs(r, func(m Member, data io.Reader) error {
			if m.Path != want {
				return nil
			}
			if m.Type != "file" {
				return fmt.Errorf("%s is a %s: %w", name, m.Type, ErrNotFile)
			}
			found, got = true, m
			n, err := io.Copy(w, io.LimitReader(data, m.Size))
			if err == nil && n != m.Size {
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				return err
			}
			return errStop
		})
	})
	if err != nil {
		return got, err
	}
	if !found {
		return got, fmt.Errorf("%s: %s: %w", p, name, ErrNoMember)
	}
	return got, nil
}
