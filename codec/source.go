package codec

import (
	"bufio"
	"errors"
	"io"
)

// source is where a Reader takes bytes from: a byte slice (zero copy) or a
// stream (bounded reads). take never returns fewer than n bytes without an
// error; a short read is io.ErrUnexpectedEOF, a read of 0 bytes at the end
// io.EOF.
type source interface {
	take(n int) ([]byte, error)
	// rest returns every byte up to the end, at most max of them.
	rest(max int64) ([]byte, error)
	// left returns the number of bytes left, or -1 when unknown.
	left() int64
	offset() int64
}

type bytesSource struct {
	b   []byte
	off int
}

func (s *bytesSource) take(n int) ([]byte, error) {
	if n < 0 {
		return nil, errors.New("negative length")
	}
	if s.off == len(s.b) && n > 0 {
		return nil, io.EOF
	}
	if len(s.b)-s.off < n {
		s.off = len(s.b)
		return nil, io.ErrUnexpectedEOF
	}
	p := s.b[s.off : s.off+n : s.off+n]
	s.off += n
	return p, nil
}

func (s *bytesSource) rest(max int64) ([]byte, error) {
	n := int64(len(s.b) - s.off)
	if n > max {
		return nil, &SizeError{What: "rest of file", Size: uint64(n), Limit: max}
	}
	p := s.b[s.off:]
	s.off = len(s.b)
	return p, nil
}

func (s *bytesSource) left() int64   { return int64(len(s.b) - s.off) }
func (s *bytesSource) offset() int64 { return int64(s.off) }

type streamSource struct {
	r    *bufio.Reader
	off  int64
	size int64 // total size when known, else -1
}

func newStreamSource(r io.Reader, size int64) *streamSource {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &streamSource{r: br, size: size}
}

func (s *streamSource) take(n int) ([]byte, error) {
	if n < 0 {
		return nil, errors.New("negative length")
	}
	if n == 0 {
		return []byte{}, nil // empty, not absent: as bytesSource
	}
	// Allocate in steps so that a lying size on a stream of unknown length
	// costs no more memory than the bytes that really arrive.
	const step = 1 << 20
	buf := make([]byte, min(n, step))
	got := 0
	for {
		m, err := io.ReadFull(s.r, buf[got:])
		got += m
		s.off += int64(m)
		if err != nil {
			if got == 0 && err == io.EOF {
				return nil, io.EOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if got == n {
			return buf, nil
		}
		grow := min(n-got, len(buf))
		buf = append(buf, make([]byte, grow)...)
	}
}

func (s *streamSource) rest(max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(s.r, max+1))
	s.off += int64(len(b))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, &SizeError{What: "rest of file", Size: uint64(len(b)), Limit: max}
	}
	return b, nil
}

func (s *streamSource) left() int64 {
	if s.size < 0 {
		return -1
	}
	return s.size - s.off
}

func (s *streamSource) offset() int64 { return s.off }
