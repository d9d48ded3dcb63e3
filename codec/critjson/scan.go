package critjson

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// SyntaxError reports input that is not JSON.
type SyntaxError struct {
	Offset       int // byte offset of the problem
	Line, Column int // 1-based; the column counts bytes
	Msg          string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// ValueError reports JSON that is not a valid crit document: an unknown
// key, a value of the wrong type or out of range, an extra that does not
// match its entry. Path locates the value ("entries[3].vmas[0].prot").
type ValueError struct {
	Path         string
	Line, Column int
	Msg          string
}

func (e *ValueError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s (line %d, column %d): %s", e.Path, e.Line, e.Column, e.Msg)
}

type pathElem struct {
	key   string
	index int // -1 for keys
}

// scanner reads JSON from a byte slice.
type scanner struct {
	data []byte
	pos  int
	path []pathElem
}

func (s *scanner) lineCol(off int) (int, int) {
	off = min(off, len(s.data))
	line := 1 + bytes.Count(s.data[:off], []byte{'\n'})
	col := off + 1
	if i := bytes.LastIndexByte(s.data[:off], '\n'); i >= 0 {
		col = off - i
	}
	return line, col
}

func (s *scanner) syntaxErr(off int, format string, args ...any) error {
	line, col := s.lineCol(off)
	return &SyntaxError{Offset: off, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// valueErr reports a bad value starting at off, at the current path.
func (s *scanner) valueErr(off int, format string, args ...any) error {
	line, col := s.lineCol(off)
	var p []byte
	for _, e := range s.path {
		if e.index >= 0 {
			p = append(p, '[')
			p = strconv.AppendInt(p, int64(e.index), 10)
			p = append(p, ']')
			continue
		}
		if len(p) > 0 {
			p = append(p, '.')
		}
		p = append(p, e.key...)
	}
	return &ValueError{Path: string(p), Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) push(key string, index int) { s.path = append(s.path, pathElem{key, index}) }
func (s *scanner) pop()                       { s.path = s.path[:len(s.path)-1] }

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.unexpected("'" + string(c) + "'")
	}
	s.pos++
	return nil
}

func (s *scanner) unexpected(want string) error {
	if s.pos >= len(s.data) {
		return s.syntaxErr(s.pos, "unexpected end of input, expecting %s", want)
	}
	return s.syntaxErr(s.pos, "unexpected %q, expecting %s", s.data[s.pos], want)
}

// kindOf names the JSON type of the value that starts at the current
// position, for messages.
func (s *scanner) kindOf() string {
	switch s.peek() {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// object reads an object, calling fn for each key with the offset of the
// key and the position at the value; fn must consume the value.
func (s *scanner) object(fn func(key []byte, keyAt int) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.unexpected("a key")
		}
		keyAt := s.pos
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		s.ws()
		if err := fn(key, keyAt); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.unexpected("',' or '}'")
		}
	}
}

// array reads an array, calling fn for each element.
func (s *scanner) array(fn func(i int) error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		s.ws()
		if err := fn(i); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.unexpected("',' or ']'")
		}
	}
}

// str reads a string and returns its bytes, escapes resolved. The lone
// surrogates \udc80..\udcff stand for the bytes 0x80..0xff (see
// appendString). Without escapes the result aliases the input.
func (s *scanner) str() ([]byte, error) {
	if s.peek() != '"' {
		return nil, s.unexpected("a string")
	}
	start := s.pos + 1
	i := start
	ascii := true
	for i < len(s.data) {
		c := s.data[i]
		if c == '"' {
			break
		}
		if c == '\\' {
			return s.strSlow(start)
		}
		if c < 0x20 {
			return nil, s.syntaxErr(i, "control character in string")
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
		i++
	}
	if i >= len(s.data) {
		return nil, s.syntaxErr(s.pos, "unterminated string")
	}
	out := s.data[start:i]
	if !ascii && !utf8.Valid(out) {
		return nil, s.syntaxErr(start, "string is not UTF-8")
	}
	s.pos = i + 1
	return out, nil
}

func (s *scanner) strSlow(start int) ([]byte, error) {
	var out []byte
	i := start
	for {
		if i >= len(s.data) {
			return nil, s.syntaxErr(start-1, "unterminated string")
		}
		c := s.data[i]
		switch {
		case c == '"':
			if !utf8.Valid(s.data[start:i]) { // escapes are ASCII: this checks the raw bytes
				return nil, s.syntaxErr(start, "string is not UTF-8")
			}
			s.pos = i + 1
			return out, nil
		case c < 0x20:
			return nil, s.syntaxErr(i, "control character in string")
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(s.data) {
			return nil, s.syntaxErr(i, "unterminated string")
		}
		esc := s.data[i+1]
		i += 2
		switch esc {
		case '"', '\\', '/':
			out = append(out, esc)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(s.data, i)
			if !ok {
				return nil, s.syntaxErr(i-2, "invalid \\u escape")
			}
			i += 4
			switch {
			case r >= 0xd800 && r < 0xdc00:
				r2, ok := hex4(s.data, i+2)
				if !ok || s.data[i] != '\\' || s.data[i+1] != 'u' || r2 < 0xdc00 || r2 >= 0xe000 {
					return nil, s.syntaxErr(i-6, "lone surrogate \\u%04x", r)
				}
				i += 6
				out = utf8.AppendRune(out, 0x10000+(r-0xd800)<<10+(r2-0xdc00))
			case r >= 0xdc80 && r < 0xdd00:
				out = append(out, byte(r-0xdc00)) // a stray byte, see appendString
			case r >= 0xdc00 && r < 0xe000:
				return nil, s.syntaxErr(i-6, "lone surrogate \\u%04x", r)
			default:
				out = utf8.AppendRune(out, r)
			}
		default:
			return nil, s.syntaxErr(i-2, "invalid escape %q", "\\"+string(rune(esc)))
		}
	}
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[i:i+4]), 16, 32)
	return rune(v), err == nil
}

// number reads a number token and returns its text.
func (s *scanner) number() ([]byte, error) {
	s.ws()
	start := s.pos
	i := start
	if i < len(s.data) && s.data[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s.data) && s.data[i] >= '0' && s.data[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s.data) && s.data[i] == '0' {
		i++
	} else if digits() == 0 {
		return nil, s.unexpected("a value")
	}
	if i < len(s.data) && s.data[i] == '.' {
		i++
		if digits() == 0 {
			return nil, s.syntaxErr(i, "invalid number")
		}
	}
	if i < len(s.data) && (s.data[i] == 'e' || s.data[i] == 'E') {
		i++
		if i < len(s.data) && (s.data[i] == '+' || s.data[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, s.syntaxErr(i, "invalid number")
		}
	}
	s.pos = i
	return s.data[start:i], nil
}

// literal reads true, false or null.
func (s *scanner) literal() (string, error) {
	s.ws()
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(s.data[s.pos:], []byte(lit)) {
			s.pos += len(lit)
			return lit, nil
		}
	}
	return "", s.unexpected("a value")
}

// skip reads any value.
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return s.syntaxErr(s.pos, "nested too deep")
	}
	switch s.peek() {
	case '{':
		return s.object(func([]byte, int) error { return s.skip(depth + 1) })
	case '[':
		return s.array(func(int) error { return s.skip(depth + 1) })
	case '"':
		_, err := s.str()
		return err
	case 't', 'f', 'n':
		_, err := s.literal()
		return err
	}
	_, err := s.number()
	return err
}
