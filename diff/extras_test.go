package diff

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critq/critq/dump"
)

// TestExtras flips the first byte of the data that follows an entry (a
// pipe's or FIFO's unread bytes, a queued unix packet, a TCP queue, a ghost
// file's contents) in a copy of a corpus dump: the diff reports exactly that
// entry's data (a TCP stream's receive or send queue), same size (the
// sizes crit's golden JSON gives: pipe 3000 bytes, tcp-stream-5d239 inq_len
// 14), other hash, and with Bytes the flipped byte.
func TestExtras(t *testing.T) {
	for _, tc := range []struct {
		dump, image, section, key string
		path                      string // "data", or the TCP queue
		at, size                  int    // the byte flipped, from the data's start; size of path (0: all the data)
	}{
		{"pipes-fifo", "pipes-data.img", "pipes_data", "pipes-data.img pipe ", "data", 0, 0},
		{"pipes-fifo", "fifo-data.img", "fifo_data", "fifo-data.img pipe ", "data", 0, 0},
		{"unix-sockets", "sk-queues.img", "sk_queues", "sk-queues.img ino ", "data", 0, 0},
		// inq_len 14, outq_len 0 and inq_len 33, outq_len 114688 (crit's
		// golden JSON): the receive queue comes first
		{"tcp", "tcp-stream-5d239.img", "tcp_stream", "tcp-stream-5d239.img[", "data.in", 0, 14},
		{"tcp", "tcp-stream-5d4a8.img", "tcp_stream", "tcp-stream-5d4a8.img[", "data.out", 33, 114688},
		{"fds-zoo", "ghost-file-1.img", "ghost_file", "ghost-file-1.img[", "data", 0, 0},
	} {
		t.Run(tc.dump+"/"+tc.image, func(t *testing.T) {
			src, dst := corpusCopy(t, tc.dump)
			off, size := firstExtra(t, src, tc.image)
			off += int64(tc.at)
			if tc.size != 0 {
				size = tc.size
			}
			path := filepath.Join(dst, tc.image)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			old := b[off]
			b[off] ^= 0xff
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			cs := diffDirs(t, src, dst, Options{Bytes: true})
			if len(cs) != 2 {
				t.Fatalf("%d changes, want 2: %v", len(cs), cs)
			}
			for _, c := range cs {
				if c.GetSection() != tc.section || !strings.HasPrefix(c.GetKey(), tc.key) || c.GetOp() != Changed {
					t.Errorf("unexpected %s", show(c))
				}
			}
			sz := fmt.Sprintf("%d bytes sha256:", size)
			if c := cs[0]; c.GetPath() != tc.path || !strings.HasPrefix(c.GetOld(), sz) || !strings.HasPrefix(c.GetNew(), sz) || c.GetOld() == c.GetNew() {
				t.Errorf("data: %s", show(c))
			}
			if c := cs[1]; c.GetPath() != tc.path+".bytes" || !strings.HasPrefix(c.GetOld(), fmt.Sprintf("0x0: %02x", old)) || !strings.HasPrefix(c.GetNew(), fmt.Sprintf("0x0: %02x", old^0xff)) {
				t.Errorf("data.bytes: %s", show(c))
			}
			t.Logf("%s", show(cs[0]))
		})
	}
}

// firstExtra returns the file offset and the length of the first non-empty
// data that follows an entry of image name in dir.
func firstExtra(t *testing.T, dir, name string) (int64, int) {
	t.Helper()
	d, err := dump.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	img, err := d.File(name).Image()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range img.Entries {
		if len(e.Extra) > 0 {
			return e.Offset + 4 + int64(len(e.Payload)), len(e.Extra)
		}
	}
	t.Fatalf("%s/%s: no entry with data", dir, name)
	return 0, 0
}
