// Package synthdump writes small synthetic CRIU dumps for tests and
// benchmarks: a pstree with one task, its core, and an mm image with as many
// VMAs as asked for. Images go through codec.Writer, so they are framed as
// CRIU frames them.
package synthdump

import (
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/proto/images"
)

// Pid is the pid of the one task of a synthetic dump.
const Pid = 1

// ExecEvery is the period of executable VMAs: VMA i has PROT_EXEC when
// i%ExecEvery == 0, so a dump of n VMAs has (n+ExecEvery-1)/ExecEvery of
// them.
const ExecEvery = 3

// Write writes pstree.img, core-1.img and mm-1.img with nvmas VMAs into
// dir, which must exist.
func Write(dir string, nvmas int) error {
	mm := &images.MmEntry{
		MmStartCode: proto.Uint64(0x400000), MmEndCode: proto.Uint64(0x401000),
		MmStartData: proto.Uint64(0x600000), MmEndData: proto.Uint64(0x601000),
		MmStartStack: proto.Uint64(0x7ffd0000), MmStartBrk: proto.Uint64(0x700000), MmBrk: proto.Uint64(0x710000),
		MmArgStart: proto.Uint64(0x7ffd1000), MmArgEnd: proto.Uint64(0x7ffd1010),
		MmEnvStart: proto.Uint64(0x7ffd1010), MmEnvEnd: proto.Uint64(0x7ffd1100),
		ExeFileId: proto.Uint32(1),
	}
	mm.Vmas = make([]*images.VmaEntry, nvmas)
	for i := range mm.Vmas {
		start := uint64(0x10000000) + uint64(i)*0x2000
		prot := uint32(1 | 2) // PROT_READ | PROT_WRITE
		if i%ExecEvery == 0 {
			prot = 1 | 4 // PROT_READ | PROT_EXEC
		}
		mm.Vmas[i] = &images.VmaEntry{
			Start: proto.Uint64(start), End: proto.Uint64(start + 0x1000), Pgoff: proto.Uint64(0),
			Shmid: proto.Uint64(0), Prot: proto.Uint32(prot), Flags: proto.Uint32(0x22),
			Status: proto.Uint32(1 | 1<<9), Fd: proto.Int64(-1),
		}
	}
	core := &images.CoreEntry{
		Mtype: images.CoreEntry_X86_64.Enum(),
		Tc: &images.TaskCoreEntry{
			TaskState: proto.Uint32(1), ExitCode: proto.Uint32(0), Personality: proto.Uint32(0),
			Flags: proto.Uint32(0), BlkSigset: proto.Uint64(0), Comm: proto.String("synth"),
		},
	}
	ps := &images.PstreeEntry{Pid: proto.Uint32(Pid), Ppid: proto.Uint32(0), Pgid: proto.Uint32(Pid), Sid: proto.Uint32(Pid), Threads: []uint32{Pid}}
	for _, img := range []struct {
		kind, name string
		msg        proto.Message
	}{
		{"PSTREE", "pstree.img", ps},
		{"CORE", fmt.Sprintf("core-%d.img", Pid), core},
		{"MM", fmt.Sprintf("mm-%d.img", Pid), mm},
	} {
		if err := writeImage(filepath.Join(dir, img.name), img.kind, img.msg); err != nil {
			return err
		}
	}
	return nil
}

func writeImage(path, kind string, m proto.Message) error {
	k, ok := magic.ByName(kind)
	if !ok {
		return fmt.Errorf("synthdump: no kind %s", kind)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w, err := codec.NewWriter(f, codec.HeaderFor(k))
	if err == nil {
		err = w.WriteMessage(m, nil)
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
