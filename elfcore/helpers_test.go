package elfcore_test

import (
	"compress/gzip"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/dump"
	"github.com/critq/critq/internal/testcorpus"
	"github.com/critq/critq/internal/testimg"
	"github.com/critq/critq/mem"
	"github.com/critq/critq/proto/images"
)

// writeTarGz writes the dump folder dir as a tar.gz checkpoint archive.
func writeTarGz(path, dir string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	if err := dump.WriteArchive(gz, os.DirFS(dir), nil); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}

// synth describes a dump written by the codec for tests and benchmarks:
// one task (pid 1) with VMAs anonymous VMAs of Pages pages each, every
// page in the dump, plus a file mapping of /lib/x.so whose second page
// only is in the dump.
type synth struct {
	VMAs, Pages int
	Arch        images.CoreEntryMarch
}

const (
	synthBase = 0x7f0000000000
	synthFile = 0x10000
	anonPriv  = 1<<0 | 1<<9
	filePriv  = 1<<0 | 1<<6
)

// imageBytes encodes msgs as an image of kind (see package testimg).
func imageBytes(t testing.TB, kind string, msgs ...proto.Message) []byte {
	t.Helper()
	return testimg.Bytes(t, kind, msgs...)
}

// x86Core returns the core entry of sleep-plain's task (testdata), whose
// registers are real.
func x86Core(t testing.TB) *images.CoreEntry {
	d, err := dump.Open(filepath.Join(testcorpus.Testdata(t), "sleep-plain"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	msg, err := d.FileFor("CORE", 19635).First()
	if err != nil {
		t.Fatal(err)
	}
	return proto.Clone(msg).(*images.CoreEntry)
}

func arm64Core() *images.CoreEntry {
	regs := make([]uint64, 31)
	for i := range regs {
		regs[i] = 0x1000 + uint64(i)
	}
	vregs := make([]uint64, 64)
	for i := range vregs {
		vregs[i] = uint64(i) << 32
	}
	return &images.CoreEntry{
		Mtype: images.CoreEntry_AARCH64.Enum(),
		TiAarch64: &images.ThreadInfoAarch64{ClearTidAddr: proto.Uint64(0), Tls: proto.Uint64(0x7fffdead0000),
			Gpregs: &images.UserAarch64RegsEntry{Regs: regs, Sp: proto.Uint64(synthBase + 0x800), Pc: proto.Uint64(synthBase + 0x10), Pstate: proto.Uint64(0x60000000)},
			Fpsimd: &images.UserAarch64FpsimdContextEntry{Vregs: vregs, Fpsr: proto.Uint32(0x10), Fpcr: proto.Uint32(0x20)}},
		Tc: &images.TaskCoreEntry{TaskState: proto.Uint32(1), ExitCode: proto.Uint32(0), Personality: proto.Uint32(0),
			Flags: proto.Uint32(0), BlkSigset: proto.Uint64(0x4000), Comm: proto.String("synth")},
	}
}

// files returns the images of the dump, by name, and the bytes of its
// pages file.
func (s synth) files(t testing.TB) map[string][]byte {
	ps := uint64(4096)
	var c *images.CoreEntry
	if s.Arch == images.CoreEntry_AARCH64 {
		c = arm64Core()
	} else {
		c = x86Core(t)
	}
	z := proto.Uint64(0)
	vma := func(start, end uint64, status uint32, shmid, pgoff uint64) *images.VmaEntry {
		return &images.VmaEntry{Start: proto.Uint64(start), End: proto.Uint64(end), Pgoff: proto.Uint64(pgoff),
			Shmid: proto.Uint64(shmid), Prot: proto.Uint32(3), Flags: proto.Uint32(0x22), Status: proto.Uint32(status), Fd: proto.Int64(-1)}
	}
	vmas := []*images.VmaEntry{vma(synthFile, synthFile+3*ps, filePriv, 1, 0)}
	vmas[0].Prot = proto.Uint32(5)
	vmas[0].Flags = proto.Uint32(2)
	pms := []proto.Message{&images.PagemapHead{PagesId: proto.Uint32(1)},
		&images.PagemapEntry{Vaddr: proto.Uint64(synthFile + ps), NrPages: proto.Uint64(1), Flags: proto.Uint32(mem.PEPresent)}}
	stride := uint64(s.Pages+1) * ps // a hole between VMAs
	for i := 0; i < s.VMAs; i++ {
		a := synthBase + uint64(i)*stride
		vmas = append(vmas, vma(a, a+uint64(s.Pages)*ps, anonPriv, 0, 0))
		pms = append(pms, &images.PagemapEntry{Vaddr: proto.Uint64(a), NrPages: proto.Uint64(uint64(s.Pages)), Flags: proto.Uint32(mem.PEPresent)})
	}
	args := "synth\x00--flag\x00"
	mm := &images.MmEntry{MmStartCode: z, MmEndCode: z, MmStartData: z, MmEndData: z, MmStartStack: z, MmStartBrk: z, MmBrk: z,
		MmArgStart: proto.Uint64(synthBase), MmArgEnd: proto.Uint64(synthBase + uint64(len(args))), MmEnvStart: z, MmEnvEnd: z,
		ExeFileId: proto.Uint32(1), MmSavedAuxv: []uint64{6, 4096, 25, synthBase + 0x100, 9, synthFile}, Vmas: vmas}
	pages := make([]byte, (1+s.VMAs*s.Pages)*int(ps))
	rand.NewChaCha8([32]byte{7}).Read(pages)
	copy(pages[ps:], args)
	reg := &images.FileEntry{Type: images.FdTypes_REG.Enum(), Id: proto.Uint32(1), Reg: &images.RegFileEntry{Id: proto.Uint32(1),
		Flags: proto.Uint32(0), Pos: z, Fown: &images.FownEntry{Uid: proto.Uint32(0), Euid: proto.Uint32(0), Signum: proto.Uint32(0),
			PidType: proto.Uint32(0), Pid: proto.Uint32(0)}, Name: proto.String("/lib/x.so"), Size: proto.Uint64(2*ps + 100)}}
	return map[string][]byte{
		"inventory.img": imageBytes(t, "INVENTORY", &images.InventoryEntry{ImgVersion: proto.Uint32(2), RootIds: &images.TaskKobjIdsEntry{}}),
		"pstree.img":    imageBytes(t, "PSTREE", &images.PstreeEntry{Pid: proto.Uint32(1), Ppid: proto.Uint32(0), Pgid: proto.Uint32(1), Sid: proto.Uint32(1), Threads: []uint32{1}}),
		"core-1.img":    imageBytes(t, "CORE", c),
		"mm-1.img":      imageBytes(t, "MM", mm),
		"files.img":     imageBytes(t, "FILES", reg),
		"pagemap-1.img": imageBytes(t, "PAGEMAP", pms...),
		"pages-1.img":   pages,
	}
}

// write writes the dump into a new folder.
func (s synth) write(t testing.TB) string {
	dir := t.TempDir()
	for name, b := range s.files(t) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
