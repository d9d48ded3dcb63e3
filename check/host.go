package check

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// OSHost is the machine critq runs on, with the files of the restore under
// Root (a directory; "" or "/" is the host's own root) and its sockets and
// pids from Proc (default /proc).
type OSHost struct {
	Root string
	Proc string
}

func (h OSHost) proc() string {
	if h.Proc == "" {
		return "/proc"
	}
	return h.Proc
}

// resolve turns an absolute path of the restored tasks into a path on this
// machine, following symbolic links inside Root as the tasks would (an
// absolute link target is taken from Root, never from the host's /).
func (h OSHost) resolve(p string) (string, error) {
	root := h.Root
	if root == "" {
		root = "/"
	}
	parts := strings.Split(path.Clean("/"+p), "/")[1:]
	cur := "/"
	for links := 0; len(parts) > 0; {
		name := parts[0]
		parts = parts[1:]
		if name == "" || name == "." {
			continue
		}
		if name == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, name)
		fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(next)))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(filepath.Join(root, filepath.FromSlash(next)))
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return filepath.Join(root, filepath.FromSlash(cur)), nil
}

// Stat implements Host.
func (h OSHost) Stat(p string) (FileInfo, error) {
	real, err := h.resolve(p)
	if err != nil {
		return FileInfo{}, err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Mode: unixMode(fi.Mode()), Size: fi.Size()}, nil
}

// unixMode converts a Go file mode to Linux's st_mode.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	switch {
	case m.IsDir():
		u |= ModeDir
	case m&fs.ModeSocket != 0:
		u |= ModeSock
	case m&fs.ModeNamedPipe != 0:
		u |= 0o010000
	case m&fs.ModeCharDevice != 0:
		u |= 0o020000
	case m&fs.ModeDevice != 0:
		u |= 0o060000
	case m&fs.ModeSymlink != 0:
		u |= 0o120000
	default:
		u |= ModeReg
	}
	return u
}

// BuildID implements Host: the NT_GNU_BUILD_ID note of an ELF file.
func (h OSHost) BuildID(p string) ([]byte, error) {
	real, err := h.resolve(p)
	if err != nil {
		return nil, err
	}
	f, err := elf.Open(real)
	if err != nil {
		return nil, nil // not ELF: nothing to compare
	}
	defer f.Close()
	return buildID(f), nil
}

// buildID finds the GNU build-id in the PT_NOTE segments of f.
func buildID(f *elf.File) []byte {
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_NOTE || prog.Filesz > 1<<20 {
			continue
		}
		b := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(b, 0); err != nil {
			continue
		}
		for len(b) >= 12 {
			order := f.ByteOrder
			namesz, descsz, typ := order.Uint32(b), order.Uint32(b[4:]), order.Uint32(b[8:])
			name := (uint64(namesz) + 3) &^ 3
			desc := (uint64(descsz) + 3) &^ 3
			if 12+name+desc > uint64(len(b)) {
				break
			}
			if typ == 3 && namesz == 4 && string(b[12:15]) == "GNU" {
				return append([]byte(nil), b[12+name:12+name+uint64(descsz)]...)
			}
			b = b[12+name+desc:]
		}
	}
	return nil
}

// Listeners implements Host from /proc/net/{tcp,tcp6,udp,udp6}.
func (h OSHost) Listeners() ([]Listener, error) {
	var out []Listener
	for _, t := range []struct{ file, proto, state string }{
		{"tcp", "tcp", "0A"}, {"tcp6", "tcp", "0A"}, {"udp", "udp", ""}, {"udp6", "udp", ""},
	} {
		f, err := os.Open(filepath.Join(h.proc(), "net", t.file))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ls, err := parseProcNet(f, t.proto, t.state)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
		out = append(out, ls...)
	}
	return out, nil
}

// parseProcNet reads the sockets of a /proc/net/tcp-like table whose state
// is state ("" for any).
func parseProcNet(f *os.File, proto, state string) ([]Listener, error) {
	var out []Listener
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || (state != "" && fields[3] != state) {
			continue
		}
		addr, port, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(port, 16, 16)
		if err != nil {
			return nil, err
		}
		ip, err := procNetIP(addr)
		if err != nil {
			return nil, err
		}
		out = append(out, Listener{Proto: proto, Addr: ip.String(), Port: uint32(p)})
	}
	return out, sc.Err()
}

// procNetIP decodes an address of /proc/net: 32-bit words in the host's
// byte order (little-endian on the machines CRIU runs on here).
func procNetIP(s string) (net.IP, error) {
	b, err := hex.DecodeString(s)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return nil, fmt.Errorf("bad address %q", s)
	}
	ip := make(net.IP, len(b))
	for i := 0; i < len(b); i += 4 {
		binary.BigEndian.PutUint32(ip[i:], binary.LittleEndian.Uint32(b[i:]))
	}
	return ip, nil
}

// PIDInUse implements Host: a process or thread with the id exists.
func (h OSHost) PIDInUse(pid uint32) (bool, error) {
	_, err := os.Stat(filepath.Join(h.proc(), strconv.FormatUint(uint64(pid), 10)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// CPU implements Host: the flags of /proc/cpuinfo (the first processor's)
// and, on x86-64, the features critq compares and the xsave figures as
// CPUID gives them, which is what CRIU compares.
func (h OSHost) CPU() (*CPU, error) {
	b, err := os.ReadFile(filepath.Join(h.proc(), "cpuinfo"))
	if err != nil {
		return nil, err
	}
	c := &CPU{Flags: map[string]bool{}}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "flags" {
			for _, f := range strings.Fields(v) {
				c.Flags[f] = true
			}
			break
		}
	}
	if h.Proc == "" || h.Proc == "/proc" {
		// The CPU critq runs on is the one /proc describes: read what
		// compel reads.
		cpuidFlags(c)
		xsaveInfo(c)
	}
	return c, nil
}

// Namespaces implements Host: the kinds of /proc/self/ns, less user when
// /proc/sys/user/max_user_namespaces is 0.
func (h OSHost) Namespaces() (map[string]bool, error) {
	ents, err := os.ReadDir(filepath.Join(h.proc(), "self", "ns"))
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range ents {
		out[e.Name()] = true
	}
	if b, err := os.ReadFile(filepath.Join(h.proc(), "sys", "user", "max_user_namespaces")); err == nil && strings.TrimSpace(string(b)) == "0" {
		out["user"] = false
	}
	return out, nil
}

// Cgroups implements Host from /proc/cgroups and the cgroup.controllers
// of the cgroup2 root, at /sys/fs/cgroup or /sys/fs/cgroup/unified under
// Root.
func (h OSHost) Cgroups() (*Cgroups, error) {
	b, err := os.ReadFile(filepath.Join(h.proc(), "cgroups"))
	if err != nil {
		return nil, err
	}
	cg := &Cgroups{Hierarchy: map[string]int{}, V2: map[string]bool{}}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(f[0], "#") || f[3] != "1" {
			continue
		}
		id, err := strconv.Atoi(f[1])
		if err != nil {
			return nil, fmt.Errorf("%s/cgroups: %q: %w", h.proc(), line, err)
		}
		cg.Hierarchy[f[0]] = id
	}
	for _, p := range []string{"/sys/fs/cgroup/cgroup.controllers", "/sys/fs/cgroup/unified/cgroup.controllers"} {
		real, err := h.resolve(p)
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(real); err == nil {
			for _, c := range strings.Fields(string(b)) {
				cg.V2[c] = true
			}
		}
	}
	return cg, nil
}
