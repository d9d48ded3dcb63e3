package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// hexdumper writes bytes in xxd's layout, squeezing a run of identical
// 16-byte lines into one "*" line as hexdump -C and xxd -a do (unless
// all). A run that ends a span still shows its last line, as xxd -a does,
// so that the span's end address is visible. Call write for consecutive
// chunks of one span, then end before the next span.
type hexdumper struct {
	w   io.Writer
	all bool // -v: print every line

	prev     [16]byte // the last full line written or squeezed
	havePrev bool
	squeezed bool   // lines after the one printed are being squeezed
	lastAddr uint64 // address of the last squeezed line
}

// write writes b, the bytes at addr, which follow the bytes of the
// previous write of the span.
func (h *hexdumper) write(addr uint64, b []byte) error {
	var sb strings.Builder
	for off := 0; off < len(b); off += 16 {
		line := b[off:min(off+16, len(b))]
		a := addr + uint64(off)
		if len(line) == 16 && h.havePrev && !h.all && bytes.Equal(line, h.prev[:]) {
			if !h.squeezed {
				sb.WriteString("*\n")
				h.squeezed = true
			}
			h.lastAddr = a
			continue
		}
		h.squeezed = false
		h.havePrev = len(line) == 16
		copy(h.prev[:], line)
		hexLine(&sb, a, line)
	}
	_, err := io.WriteString(h.w, sb.String())
	return err
}

// end finishes a span: a squeezed run at its end shows its last line.
func (h *hexdumper) end() error {
	var err error
	if h.squeezed {
		var sb strings.Builder
		hexLine(&sb, h.lastAddr, h.prev[:])
		_, err = io.WriteString(h.w, sb.String())
	}
	*h = hexdumper{w: h.w, all: h.all}
	return err
}

// hexLine writes one line of at most 16 bytes as xxd does.
func hexLine(sb *strings.Builder, addr uint64, line []byte) {
	fmt.Fprintf(sb, "%08x: ", addr)
	for i := 0; i < 16; i++ {
		if i < len(line) {
			fmt.Fprintf(sb, "%02x", line[i])
		} else {
			sb.WriteString("  ")
		}
		if i%2 == 1 {
			sb.WriteByte(' ')
		}
	}
	sb.WriteByte(' ')
	for _, c := range line {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		sb.WriteByte(c)
	}
	sb.WriteByte('\n')
}
