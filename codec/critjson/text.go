package critjson

import (
	"encoding/base64"
	"errors"
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way Python's json.dump
// writes it with ensure_ascii: every byte outside space..'~' is escaped,
// characters above U+FFFF as surrogate pairs, hex digits in lower case.
// Bytes that are not UTF-8 are written as the lone surrogates U+DC80..U+DCFF
// (Python's surrogateescape), which parseString turns back into the bytes.
func appendString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= ' ' && c <= '~' && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, `\"`...)
		case '\\':
			dst = append(dst, `\\`...)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		case '\b':
			dst = append(dst, `\b`...)
		case '\f':
			dst = append(dst, `\f`...)
		default:
			if c < utf8.RuneSelf {
				dst = appendU(dst, rune(c))
				break
			}
			r, n := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
			if r == utf8.RuneError && n <= 1 {
				dst = appendU(dst, 0xdc00+rune(c))
				n = 1
			} else if r > 0xffff {
				r -= 0x10000
				dst = appendU(dst, 0xd800+(r>>10))
				dst = appendU(dst, 0xdc00+(r&0x3ff))
			} else {
				dst = appendU(dst, r)
			}
			i += n
			start = i
			continue
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&15], hexDigits[r>>8&15], hexDigits[r>>4&15], hexDigits[r&15])
}

// appendMIME appends b in Python's base64.encodebytes form: lines of 76
// characters, each ending in a newline (escaped, as it sits in a JSON
// string), the last one too; nothing for empty b.
func appendMIME(dst []byte, b []byte) []byte {
	const perLine = 57 // input bytes per 76-character line
	for len(b) > 0 {
		n := min(len(b), perLine)
		dst = base64.StdEncoding.AppendEncode(dst, b[:n])
		dst = append(dst, `\n`...)
		b = b[n:]
	}
	return dst
}

// decodeBase64 decodes MIME or single-line base64, as Python's
// base64.decodebytes does for well-formed input: line breaks and spaces are
// ignored; any other character outside the alphabet is an error.
func decodeBase64(s []byte) ([]byte, error) {
	clean := make([]byte, 0, len(s))
	for _, c := range s {
		switch c {
		case '\n', '\r', ' ', '\t':
			continue
		}
		clean = append(clean, c)
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(out, clean)
	if err != nil {
		// Python accepts missing padding at the end.
		trimmed := clean
		for len(trimmed) > 0 && trimmed[len(trimmed)-1] == '=' {
			trimmed = trimmed[:len(trimmed)-1]
		}
		out = make([]byte, base64.RawStdEncoding.DecodedLen(len(trimmed)))
		if n, err = base64.RawStdEncoding.Decode(out, trimmed); err != nil {
			return nil, errors.New("invalid base64")
		}
	}
	return out[:n], nil
}

// appendQP appends b encoded as Python's quopri.encodestring does
// (binascii.b2a_qp, text mode, no tab quoting, no header mode): bytes above
// '~', '=', control characters other than tab and space, a space or tab at
// the very end, and a '.' alone on a line become "=XX" (upper-case hex);
// lines are cut with a soft break "=\n" before they exceed 76 characters.
//
// One deviation keeps names lossless: CR and LF are quoted as "=0D" and
// "=0A" (b2a_qp's binary mode) where text mode would rewrite line ends.
// No socket name of the corpus holds either.
func appendQP(dst []byte, b []byte) []byte {
	const maxLine = 76
	line := 0
	for i, c := range b {
		quote := c > '~' || c == '=' ||
			(c == '.' && line == 0 && (i+1 == len(b) || b[i+1] == '\n' || b[i+1] == '\r' || b[i+1] == 0)) ||
			c == '\r' || c == '\n' ||
			((c == '\t' || c == ' ') && i+1 == len(b)) ||
			(c < 33 && c != '\t' && c != ' ')
		if quote {
			if line+3 >= maxLine {
				dst = append(dst, '=', '\n')
				line = 0
			}
			dst = append(dst, '=', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
			line += 3
			continue
		}
		if i+1 != len(b) && line+1 >= maxLine {
			dst = append(dst, '=', '\n')
			line = 0
		}
		line++
		dst = append(dst, c)
	}
	return dst
}

// QuotedPrintable returns b as crit prints a unix socket name (its
// unix_name conversion): quoted-printable as Python's quopri.encodestring
// writes it, with appendQP's one deviation. Package explore's crit x fds
// view uses it.
func QuotedPrintable(b []byte) string { return string(appendQP(nil, b)) }

// decodeQP decodes quoted-printable text as Python's quopri.decodestring
// (binascii.a2b_qp) does.
func decodeQP(s []byte) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '=' {
			out = append(out, c)
			i++
			continue
		}
		i++
		if i >= len(s) {
			break
		}
		switch {
		case s[i] == '\n' || s[i] == '\r': // soft line break
			for i < len(s) && s[i] != '\n' {
				i++
			}
			if i < len(s) {
				i++
			}
		case s[i] == '=':
			out = append(out, '=')
			i++
		case i+1 < len(s) && isHex(s[i]) && isHex(s[i+1]):
			v, _ := strconv.ParseUint(string(s[i:i+2]), 16, 8)
			out = append(out, byte(v))
			i += 2
		default:
			out = append(out, '=')
		}
	}
	return out
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
