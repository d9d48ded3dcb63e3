// Package linktest links critq's schema beside go-criu's generated types in
// one binary. go-criu registers CRIU's messages under bare names and the
// (criu) option as extension 1018 of FieldOptions; critq's schema lives in
// package critq.images and never registers the extension, so both load
// without a registry conflict, and critq still reads its field options.
// It is a module of its own so that go-criu stays out of critq's go.mod.
package linktest

import (
	"testing"

	gocriumm "github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	gocriuopts "github.com/checkpoint-restore/go-criu/v8/crit/images/opts"
	gocriupstree "github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/critq/critq/magic"
	"github.com/critq/critq/proto/images"
)

func TestLinkBeside(t *testing.T) {
	// Both schemas are registered.
	if _, err := protoregistry.GlobalTypes.FindMessageByName("critq.images.mm_entry"); err != nil {
		t.Fatalf("critq's mm_entry: %v", err)
	}
	if _, err := protoregistry.GlobalTypes.FindMessageByName("mm_entry"); err != nil {
		t.Fatalf("go-criu's mm_entry: %v", err)
	}
	if _, err := protoregistry.GlobalTypes.FindExtensionByNumber("google.protobuf.FieldOptions", 1018); err != nil {
		t.Fatalf("go-criu's (criu) extension is not registered: %v", err)
	}
	_ = gocriuopts.E_Criu

	// critq's options are read although go-criu owns the extension.
	fd := (&images.VmaEntry{}).ProtoReflect().Descriptor().Fields().ByName("prot")
	if got := images.FieldOptions(fd); got.Flags != "mmap.prot" {
		t.Errorf("FieldOptions(vma_entry.prot) = %+v, want Flags mmap.prot", got)
	}
	fd = (&images.VmaEntry{}).ProtoReflect().Descriptor().Fields().ByName("start")
	if got := images.FieldOptions(fd); !got.Hex {
		t.Errorf("FieldOptions(vma_entry.start) = %+v, want Hex", got)
	}

	// The same bytes decode in both.
	b, err := proto.Marshal(&gocriupstree.PstreeEntry{Pid: proto.Uint32(7), Ppid: proto.Uint32(1), Pgid: proto.Uint32(7), Sid: proto.Uint32(7)})
	if err != nil {
		t.Fatal(err)
	}
	var p images.PstreeEntry
	if err := proto.Unmarshal(b, &p); err != nil || p.GetPid() != 7 {
		t.Errorf("critq decodes go-criu's pstree_entry as %v, %v", &p, err)
	}
	_ = gocriumm.MmEntry{}
	if k, ok := magic.ByName("MM"); !ok || k.Entry.Descriptor().FullName() != "critq.images.mm_entry" {
		t.Errorf("magic MM entry = %v", k)
	}
}
