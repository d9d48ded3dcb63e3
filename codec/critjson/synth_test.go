package critjson_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/critq/critq/codec"
	"github.com/critq/critq/codec/critjson"
	"github.com/critq/critq/magic"
	"github.com/critq/critq/proto/images"
)

type synthEntry struct {
	msg   proto.Message
	extra []byte
}

// synthImage writes an image of kind name with codec.Writer. head is the
// head magic (0 for none: version 1 images, inventory).
func synthImage(t testing.TB, name string, head uint32, order codec.ByteOrder, entries ...synthEntry) []byte {
	t.Helper()
	k, ok := magic.ByName(name)
	if !ok {
		t.Fatalf("no kind %s", name)
	}
	var out bytes.Buffer
	w, err := codec.NewWriter(&out, codec.Header{Kind: k, Head: head, Order: order})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := w.WriteMessage(e.msg, e.extra); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

var (
	le  = binary.LittleEndian
	be  = binary.BigEndian
	u32 = proto.Uint32
	u64 = proto.Uint64
)

func desc(id uint32) *images.IpcDescEntry {
	return &images.IpcDescEntry{Key: u32(0x1234), Uid: u32(0), Gid: u32(0), Cuid: u32(0), Cgid: u32(0), Mode: u32(0o600), Id: u32(id)}
}

const descJSON = `"desc": {"key": 4660, "uid": 0, "gid": 0, "cuid": 0, "cgid": 0, "mode": 384, "id": %d}`

func withDesc(s string, id string) string {
	return strings.Replace(s, "DESC", strings.Replace(descJSON, "%d", id, 1), 1)
}

func marshal(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// msgExtra builds the bytes that follow an ipc_msg_entry (format.md
// section 4): per message a u32 size, the ipc_msg, the text padded to 8.
func msgExtra(t testing.TB, order codec.ByteOrder, texts ...string) []byte {
	var out []byte
	for i, s := range texts {
		m := marshal(t, &images.IpcMsg{Mtype: u64(uint64(i + 1)), Msize: u32(uint32(len(s)))})
		out = order.AppendUint32(out, uint32(len(m)))
		out = append(out, m...)
		out = append(out, s...)
		out = append(out, make([]byte, (len(s)+7)/8*8-len(s))...)
	}
	return out
}

// TestSynthetic covers kinds and layouts the corpus lacks: each image is
// written with codec.Writer, its extras built by hand from the format, and
// checked against the JSON crit's rules give, and for a byte-exact round
// trip through both JSON forms.
func TestSynthetic(t *testing.T) {
	tests := []struct {
		name   string
		image  []byte
		order  codec.ByteOrder
		plain  string   // the whole plain document
		pretty []string // lines the pretty document must hold
	}{{
		name: "binfmt-misc (crit has no handler, B1)",
		image: synthImage(t, "BINFMT_MISC", magic.ImgCommon, le, synthEntry{msg: &images.BinfmtMiscEntry{
			Name: proto.String("qemu-arm"), Enabled: proto.Bool(true), Interpreter: proto.String("/usr/bin/qemu-arm"),
			Flags: proto.String("F"), Magic: proto.String("\x7fELF\x01"), Offset: proto.Int32(0)}}),
		plain: `{"magic": "BINFMT_MISC", "entries": [{"name": "qemu-arm", "enabled": true, "interpreter": "/usr/bin/qemu-arm", "flags": "F", "magic": "\u007fELF\u0001", "offset": 0}]}`,
	}, {
		name: "legacy unixsk: dict names, hex, quoted-printable name",
		image: synthImage(t, "UNIXSK", magic.ImgCommon, le, synthEntry{msg: &images.UnixSkEntry{
			Id: u32(5), Ino: u32(100), Type: u32(1), State: u32(10), Flags: u32(0o4000), Uflags: u32(0), Backlog: u32(0), Peer: u32(0),
			Name: []byte("\x00sock=1 é ")}}),
		plain:  `{"magic": "UNIXSK", "entries": [{"id": 5, "ino": 100, "type": 1, "state": 10, "flags": 2048, "uflags": 0, "backlog": 0, "peer": 0, "name": "=00sock=3D1 =C3=A9=20"}]}`,
		pretty: []string{`"type": "STREAM",`, `"state": "LISTEN",`, `"flags": "0x800",`, `"uflags": "0x0",`, `"name": "=00sock=3D1 =C3=A9=20"`},
	}, {
		name: "legacy inetsk: IPv4 and IPv6 words, little-endian host",
		image: synthImage(t, "INETSK", magic.ImgCommon, le, synthEntry{msg: &images.InetSkEntry{
			Id: u32(1), Ino: u32(2), Family: u32(10), Type: u32(1), Proto: u32(6), State: u32(1), SrcPort: u32(80), DstPort: u32(4000),
			Flags: u32(0), Backlog: u32(0), SrcAddr: []uint32{16777343}, DstAddr: []uint32{0, 0, 0, 16777216}}}),
		plain:  `{"magic": "INETSK", "entries": [{"id": 1, "ino": 2, "family": 10, "type": 1, "proto": 6, "state": 1, "src_port": 80, "dst_port": 4000, "flags": 0, "backlog": 0, "src_addr": [16777343], "dst_addr": [0, 0, 0, 16777216]}]}`,
		pretty: []string{`"family": "INET6",`, `"proto": "TCP",`, `"state": "ESTABLISHED",`, `"127.0.0.1"`, `"::1"`},
	}, {
		name:  "big-endian inetsk: the address words are the bytes in the image's order",
		order: be,
		image: synthImage(t, "INETSK", magic.ImgCommon, be, synthEntry{msg: &images.InetSkEntry{
			Id: u32(1), Ino: u32(2), Family: u32(2), Type: u32(2), Proto: u32(17), State: u32(7), SrcPort: u32(53), DstPort: u32(0),
			Flags: u32(0), Backlog: u32(0), SrcAddr: []uint32{0x0a000001}, DstAddr: []uint32{0x20010db8, 0, 0, 1}}}),
		plain:  `{"magic": "INETSK", "entries": [{"id": 1, "ino": 2, "family": 2, "type": 2, "proto": 17, "state": 7, "src_port": 53, "dst_port": 0, "flags": 0, "backlog": 0, "src_addr": [167772161], "dst_addr": [536939960, 0, 0, 1]}]}`,
		pretty: []string{`"10.0.0.1"`, `"2001:db8::1"`, `"type": "DGRAM",`, `"state": "CLOSE",`},
	}, {
		name:  "version 1 image: no head magic",
		image: synthImage(t, "PSTREE", 0, le, synthEntry{msg: &images.PstreeEntry{Pid: u32(1), Ppid: u32(0), Pgid: u32(1), Sid: u32(1)}}),
		plain: `{"magic": "PSTREE", "entries": [{"pid": 1, "ppid": 0, "pgid": 1, "sid": 1}]}`,
	}, {
		name:  "big-endian IPC semaphores: u16 values padded to 8 bytes",
		order: be,
		image: synthImage(t, "IPCNS_SEM", magic.ImgCommon, be,
			synthEntry{msg: &images.IpcSemEntry{Desc: desc(7), Nsems: u32(3)}, extra: []byte{0, 1, 0, 2, 0xff, 0xff, 0, 0}},
			synthEntry{msg: &images.IpcSemEntry{Desc: desc(8), Nsems: u32(4)}, extra: []byte{0, 9, 0, 8, 0, 7, 0, 6}},
			synthEntry{msg: &images.IpcSemEntry{Desc: desc(9), Nsems: u32(0)}}),
		plain: withDesc(withDesc(withDesc(`{"magic": "IPCNS_SEM", "entries": [{DESC, "nsems": 3, "extra": [1, 2, 65535]}, {DESC, "nsems": 4, "extra": [9, 8, 7, 6]}, {DESC, "nsems": 0, "extra": []}]}`, "7"), "8"), "9"),
	}, {
		name: "IPC message queue: flat array of plain messages and texts",
		image: synthImage(t, "IPCNS_MSG", magic.ImgCommon, le,
			synthEntry{msg: &images.IpcMsgEntry{Desc: desc(1), Qbytes: u32(16384), Qnum: u32(2)}, extra: msgExtra(t, le, "hello", "12345678")},
			synthEntry{msg: &images.IpcMsgEntry{Desc: desc(2), Qbytes: u32(16384), Qnum: u32(0)}}),
		plain: withDesc(withDesc(`{"magic": "IPCNS_MSG", "entries": [{DESC, "qbytes": 16384, "qnum": 2, "extra": [{"mtype": 1, "msize": 5}, "aGVsbG8=\n", {"mtype": 2, "msize": 8}, "MTIzNDU2Nzg=\n"]}, {DESC, "qbytes": 16384, "qnum": 0, "extra": []}]}`, "1"), "2"),
	}, {
		name:  "big-endian IPC message queue",
		order: be,
		image: synthImage(t, "IPCNS_MSG", magic.ImgCommon, be,
			synthEntry{msg: &images.IpcMsgEntry{Desc: desc(1), Qbytes: u32(16384), Qnum: u32(1)}, extra: msgExtra(t, be, "abc")}),
		plain: withDesc(`{"magic": "IPCNS_MSG", "entries": [{DESC, "qbytes": 16384, "qnum": 1, "extra": [{"mtype": 1, "msize": 3}, "YWJj\n"]}]}`, "1"),
	}, {
		name: "IPC shm: legacy inline segment padded to 4; in_pagemaps has no extra (B8)",
		image: synthImage(t, "IPCNS_SHM", magic.ImgCommon, le,
			synthEntry{msg: &images.IpcShmEntry{Desc: desc(3), Size: u64(5)}, extra: []byte("hello\x00\x00\x00")},
			synthEntry{msg: &images.IpcShmEntry{Desc: desc(4), Size: u64(8192), InPagemaps: proto.Bool(true)}}),
		plain: withDesc(withDesc(`{"magic": "IPCNS_SHM", "entries": [{DESC, "size": 5, "extra": "aGVsbG8=\n"}, {DESC, "size": 8192, "in_pagemaps": true}]}`, "3"), "4"),
	}, {
		name: "chunked ghost file: data after each chunk entry",
		image: synthImage(t, "GHOST_FILE", magic.ImgCommon, le,
			synthEntry{msg: &images.GhostFileEntry{Uid: u32(0), Gid: u32(0), Mode: u32(0o100644), Dev: u32(8<<20 | 1), Ino: u64(12), Chunks: proto.Bool(true), Size: u64(20000)}},
			synthEntry{msg: &images.GhostChunkEntry{Len: u64(3), Off: u64(0)}, extra: []byte("abc")},
			synthEntry{msg: &images.GhostChunkEntry{Len: u64(2), Off: u64(16384)}, extra: []byte("de")}),
		plain:  `{"magic": "GHOST_FILE", "entries": [{"uid": 0, "gid": 0, "mode": 33188, "dev": 8388609, "ino": 12, "chunks": true, "size": 20000}, {"len": 3, "off": 0, "extra": "YWJj\n"}, {"len": 2, "off": 16384, "extra": "ZGU=\n"}]}`,
		pretty: []string{`"dev": "8:1",`},
	}, {
		name: "small ghost file: the rest of the file follows entry 0",
		image: synthImage(t, "GHOST_FILE", magic.ImgCommon, le,
			synthEntry{msg: &images.GhostFileEntry{Uid: u32(0), Gid: u32(0), Mode: u32(0o20644), Rdev: u32(0x801)}, extra: []byte("hello")}),
		plain:  `{"magic": "GHOST_FILE", "entries": [{"uid": 0, "gid": 0, "mode": 8612, "rdev": 2049, "extra": "aGVsbG8=\n"}]}`,
		pretty: []string{`"rdev": "8:1",`},
	}, {
		// One state an image: a core image holds one entry.
		name: "task state STOPPED: compel's name at compel's value (crit bug B7)",
		image: synthImage(t, "CORE", magic.ImgCommon, le,
			synthEntry{msg: &images.CoreEntry{Mtype: images.CoreEntry_X86_64.Enum(), Tc: &images.TaskCoreEntry{TaskState: u32(3)}}}),
		plain:  `{"magic": "CORE", "entries": [{"mtype": "X86_64", "tc": {"task_state": 3}}]}`,
		pretty: []string{`"task_state": "STOPPED"`},
	}, {
		name: "task state ZOMBIE (crit bug B7)",
		image: synthImage(t, "CORE", magic.ImgCommon, le,
			synthEntry{msg: &images.CoreEntry{Mtype: images.CoreEntry_X86_64.Enum(), Tc: &images.TaskCoreEntry{TaskState: u32(6)}}}),
		plain:  `{"magic": "CORE", "entries": [{"mtype": "X86_64", "tc": {"task_state": 6}}]}`,
		pretty: []string{`"task_state": "ZOMBIE"`},
	}, {
		name: "task state DEAD (crit bug B7)",
		image: synthImage(t, "CORE", magic.ImgCommon, le,
			synthEntry{msg: &images.CoreEntry{Mtype: images.CoreEntry_X86_64.Enum(), Tc: &images.TaskCoreEntry{TaskState: u32(2)}}}),
		plain:  `{"magic": "CORE", "entries": [{"mtype": "X86_64", "tc": {"task_state": 2}}]}`,
		pretty: []string{`"task_state": "DEAD"`},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			order := tc.order
			if order == nil {
				order = le
			}
			r, err := codec.NewBytesReader(tc.image, codec.ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			hdr := r.Header()
			for _, pretty := range []bool{false, true} {
				doc := encodeBytes(t, tc.image, critjson.Options{Pretty: pretty})
				if !pretty && string(doc) != tc.plain {
					t.Errorf("Encode() = %s\nwant %s", doc, tc.plain)
				}
				if pretty {
					for _, line := range tc.pretty {
						if !bytes.Contains(doc, []byte(line)) {
							t.Errorf("pretty Encode() lacks %s:\n%s", line, doc)
						}
					}
				}
				img, err := critjson.Decode(doc, critjson.Options{Order: order})
				if err != nil {
					t.Fatalf("Decode(pretty=%v): %v", pretty, err)
				}
				var out bytes.Buffer
				if err := img.Write(&out, hdr); err != nil {
					t.Fatalf("Write: %v", err)
				}
				if !bytes.Equal(out.Bytes(), tc.image) {
					t.Errorf("round trip (pretty=%v): got % x\nwant % x", pretty, out.Bytes(), tc.image)
				}
			}
		})
	}
}

func encodeBytes(t testing.TB, image []byte, o critjson.Options) []byte {
	t.Helper()
	r, err := codec.NewBytesReader(image, codec.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := critjson.Encode(&out, r, o); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestProtocAgrees checks payloads that critq encodes from JSON with
// protoc --decode, an independent reading of the schema. It is skipped when
// protoc is not installed.
func TestProtocAgrees(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc not installed")
	}
	tests := []struct {
		json, file, msg, want string
	}{{
		json: `{"magic": "BINFMT_MISC", "entries": [{"name": "qemu-arm", "enabled": true, "interpreter": "/usr/bin/qemu-arm", "offset": -1}]}`,
		file: "critq/images/binfmt-misc.proto", msg: "critq.images.binfmt_misc_entry",
		want: "name: \"qemu-arm\"\nenabled: true\ninterpreter: \"/usr/bin/qemu-arm\"\noffset: -1\n",
	}, {
		json: `{"magic": "INETSK", "entries": [{"id": 1, "ino": 2, "family": "INET", "type": "STREAM", "proto": "TCP", "state": "LISTEN", "src_port": 80, "dst_port": 0, "flags": "0x800", "backlog": 0, "src_addr": ["127.0.0.1"], "dst_addr": ["::1"]}]}`,
		file: "critq/images/sk-inet.proto", msg: "critq.images.inet_sk_entry",
		want: "id: 1\nino: 2\nfamily: 2\ntype: 1\nproto: 6\nstate: 10\nsrc_port: 80\ndst_port: 0\nflags: 2048\nbacklog: 0\nsrc_addr: 16777343\ndst_addr: 0\ndst_addr: 0\ndst_addr: 0\ndst_addr: 16777216\n",
	}, {
		json: `{"magic": "MM", "entries": [{"mm_start_code": "0x400000", "mm_end_code": 0, "mm_start_data": 0, "mm_end_data": 0, "mm_start_stack": 0, "mm_start_brk": 0, "mm_brk": 0, "mm_arg_start": 0, "mm_arg_end": 0, "mm_env_start": 0, "mm_env_end": 0, "exe_file_id": 1, "vmas": [{"start": "0x1000", "end": "0x2000", "pgoff": 0, "shmid": 0, "prot": "PROT_READ | PROT_EXEC", "flags": "MAP_PRIVATE | MAP_ANON", "status": "VMA_AREA_REGULAR | VMA_ANON_PRIVATE | 0x10000000", "fd": -1}]}]}`,
		file: "critq/images/mm.proto", msg: "critq.images.mm_entry",
		want: "mm_start_code: 4194304\nmm_end_code: 0\nmm_start_data: 0\nmm_end_data: 0\nmm_start_stack: 0\nmm_start_brk: 0\nmm_brk: 0\nmm_arg_start: 0\nmm_arg_end: 0\nmm_env_start: 0\nmm_env_end: 0\nexe_file_id: 1\nvmas {\n  start: 4096\n  end: 8192\n  pgoff: 0\n  shmid: 0\n  prot: 5\n  flags: 34\n  status: 268435969\n  fd: -1\n}\n",
	}}
	for _, tc := range tests {
		img, err := critjson.Decode([]byte(tc.json), critjson.Options{})
		if err != nil {
			t.Fatalf("Decode(%s): %v", tc.json, err)
		}
		cmd := exec.Command(protoc, "-I", "../../proto", "--decode="+tc.msg, tc.file)
		cmd.Stdin = bytes.NewReader(img.Entries[0].Payload)
		cmd.Stderr = os.Stderr
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("protoc --decode=%s: %v", tc.msg, err)
		}
		if string(got) != tc.want {
			t.Errorf("protoc --decode=%s of Decode(%s):\n%s\nwant\n%s", tc.msg, tc.json, got, tc.want)
		}
	}
}
