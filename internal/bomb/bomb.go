// Package bomb writes hostile checkpoint archives for tests: members of
// gigabytes of zeros and millions of tiny members that compress to little.
// The compressed stream is a sequence of gzip members (or zstd frames),
// which readers join; a block of zeros or of repeated headers is compressed
// once and its bytes written again, so a bomb costs little time and
// memory to write.
package bomb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Writer writes a compressed tar.
type Writer struct {
	w     io.Writer
	zst   *zstd.Encoder
	zeros []byte // the compressed form of zeroBlock zero bytes
	err   error
}

const zeroBlock = 16 << 20

// New returns a writer of a tar compressed with "gz" or "zst".
func New(w io.Writer, compression string) (*Writer, error) {
	b := &Writer{w: w}
	switch compression {
	case "gz":
	case "zst":
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		b.zst = enc
	default:
		return nil, fmt.Errorf("bomb: compression %q: want gz or zst", compression)
	}
	return b, nil
}

// pack returns p compressed as one gzip member or zstd frame.
func (b *Writer) pack(p []byte) []byte {
	if b.zst != nil {
		return b.zst.EncodeAll(p, nil)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(p)
	zw.Close()
	return buf.Bytes()
}

func (b *Writer) write(p []byte) {
	if b.err == nil {
		_, b.err = b.w.Write(p)
	}
}

// Raw writes p, compressed as a member of its own.
func (b *Writer) Raw(p []byte) error {
	if len(p) > 0 {
		b.write(b.pack(p))
	}
	return b.err
}

// Zeros writes n zero bytes.
func (b *Writer) Zeros(n int64) error {
	if n >= zeroBlock && b.zeros == nil {
		b.zeros = b.pack(make([]byte, zeroBlock))
	}
	for ; n >= zeroBlock; n -= zeroBlock {
		b.write(b.zeros)
	}
	return b.Raw(make([]byte, n))
}

// Header returns the tar header block(s) of h.
func Header(h *tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(h)
	return buf.Bytes()
}

// File writes a regular member: its header, data, and the padding to the
// next block.
func (b *Writer) File(name string, data []byte) error {
	b.Raw(Header(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), Typeflag: tar.TypeReg}))
	b.Raw(data)
	return b.Zeros(pad(int64(len(data))))
}

// ZeroFile writes a regular member of size zero bytes.
func (b *Writer) ZeroFile(name string, size int64) error {
	b.Raw(Header(&tar.Header{Name: name, Mode: 0o600, Size: size, Typeflag: tar.TypeReg}))
	return b.Zeros(size + pad(size))
}

// Dir writes a folder member.
func (b *Writer) Dir(name string) error {
	return b.Raw(Header(&tar.Header{Name: name, Mode: 0o700, Typeflag: tar.TypeDir}))
}

// Tiny writes n empty members under folder dir: the first distinct ones
// with names of their own, the others all named dir/same.
func (b *Writer) Tiny(dir string, n, distinct int) error {
	var buf bytes.Buffer
	for i := 0; i < min(n, distinct); i++ {
		buf.Write(Header(&tar.Header{Name: fmt.Sprintf("%s/m%07d", dir, i), Mode: 0o600, Typeflag: tar.TypeReg}))
		if buf.Len() >= 4<<20 {
			b.Raw(buf.Bytes())
			buf.Reset()
		}
	}
	b.Raw(buf.Bytes())
	n -= min(n, distinct)
	if n <= 0 {
		return b.err
	}
	same := Header(&tar.Header{Name: dir + "/same", Mode: 0o600, Typeflag: tar.TypeReg})
	const per = 4096
	block := b.pack(bytes.Repeat(same, per))
	for ; n >= per; n -= per {
		b.write(block)
	}
	return b.Raw(bytes.Repeat(same, n))
}

// Close writes the end of the tar (two zero blocks).
func (b *Writer) Close() error {
	return b.Zeros(1024)
}

func pad(n int64) int64 { return (512 - n%512) % 512 }
