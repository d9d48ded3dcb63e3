package critjson_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/codec/critjson"
	"github.com/critq/critq/proto/images"
)

func ExampleAppendMessage() {
	vma := &images.VmaEntry{
		Start: proto.Uint64(0x400000), End: proto.Uint64(0x401000), Pgoff: proto.Uint64(0), Shmid: proto.Uint64(0),
		Prot: proto.Uint32(5), Flags: proto.Uint32(0x22), Status: proto.Uint32(0x201), Fd: proto.Int64(-1),
	}
	fmt.Println(string(critjson.AppendMessage(nil, vma.ProtoReflect(), critjson.Options{})))
	pretty := critjson.AppendMessage(nil, vma.ProtoReflect(), critjson.Options{Pretty: true})
	fmt.Println(string(pretty))
	var indented bytes.Buffer
	_ = json.Indent(&indented, pretty, "", "    ")
	fmt.Println(indented.String())
	// Output:
	// {"start": 4194304, "end": 4198400, "pgoff": 0, "shmid": 0, "prot": 5, "flags": 34, "status": 513, "fd": -1}
	// {"start": "0x400000", "end": "0x401000", "pgoff": 0, "shmid": 0, "prot": "PROT_READ | PROT_EXEC", "flags": "MAP_PRIVATE | MAP_ANON", "status": "VMA_AREA_REGULAR | VMA_ANON_PRIVATE", "fd": -1}
	// {
	//     "start": "0x400000",
	//     "end": "0x401000",
	//     "pgoff": 0,
	//     "shmid": 0,
	//     "prot": "PROT_READ | PROT_EXEC",
	//     "flags": "MAP_PRIVATE | MAP_ANON",
	//     "status": "VMA_AREA_REGULAR | VMA_ANON_PRIVATE",
	//     "fd": -1
	// }
}

func ExampleEncode() {
	data, err := os.ReadFile("../../testdata/dumps/tcp/pstree.img")
	if err != nil {
		panic(err)
	}
	r, err := codec.NewBytesReader(data, codec.ReadOptions{Name: "pstree.img"})
	if err != nil {
		panic(err)
	}
	if err := critjson.Encode(os.Stdout, r, critjson.Options{}); err != nil {
		panic(err)
	}
	// Output:
	// {"magic": "PSTREE", "entries": [{"pid": 19347, "ppid": 0, "pgid": 19347, "sid": 19347, "threads": [19347]}]}
}

func ExampleDecode() {
	doc := []byte(`{"magic": "PSTREE", "entries": [{"pid": "0x10", "ppid": 1, "pgid": 16, "sid": 16}]}`)
	img, err := critjson.Decode(doc, critjson.Options{})
	if err != nil {
		panic(err)
	}
	var out bytes.Buffer
	if err := img.Write(&out, codec.HeaderFor(img.Kind)); err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", out.Bytes())

	_, err = critjson.Decode([]byte(`{"magic": "PSTREE", "entries": [{"pid": -1}]}`), critjson.Options{})
	fmt.Println(err)
	// Output:
	// 19 43 56 54 30 30 27 50 08 00 00 00 08 10 10 01 18 10 20 10
	// entries[0].pid (line 1, column 41): -1 out of range for uint32
}

func ExampleUnmarshalMessage() {
	var vma images.VmaEntry
	err := critjson.UnmarshalMessage([]byte(`{"start": "0x1000", "end": 8192, "pgoff": 0, "shmid": 0, "prot": "PROT_READ", "flags": "MAP_SHARED | 0x40", "status": 1, "fd": -1}`), vma.ProtoReflect(), critjson.Options{})
	fmt.Println(err, vma.GetStart(), vma.GetFlags())
	// Output:
	// <nil> 4096 65
}
