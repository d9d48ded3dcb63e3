package batch

// scanState is what a scan of CEL text leaves open at its end.
type scanState struct {
	depth int  // open ( [ { not yet closed; negative after a stray closer
	quote byte // the quote of the triple-quoted string left open, or 0
	raw   bool // that string is raw

	// base is the offset of the text scanned in the whole text, set by the
	// caller; opens holds the offsets in the whole text of the brackets
	// still open, innermost last, and quoteAt that of the string left open.
	base    int
	opens   []int
	quoteAt int
}

// scan walks src as CEL lexes it (string and bytes literals of every form,
// // comments) and reports what is left open at the end. When hash is true a
// '#' outside a literal starts a comment to the end of the line, as in
// scripts, and hashes holds the [start, end) offsets of those comments.
// The scan starts in state st, so that text may be scanned a line at a time.
func scan(src string, hash bool, st scanState) (_ scanState, hashes [][2]int) {
	i := 0
	if st.quote != 0 {
		end, closed := skipTriple(src, 0, st.quote, st.raw)
		if !closed {
			return st, nil
		}
		st.quote, st.raw = 0, false
		i = end
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == '#' && hash:
			j := skipLine(src, i)
			hashes = append(hashes, [2]int{i, j})
			i = j
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			i = skipLine(src, i)
		case c == '(' || c == '[' || c == '{':
			st.depth++
			st.opens = append(st.opens, st.base+i)
			i++
		case c == ')' || c == ']' || c == '}':
			st.depth--
			if len(st.opens) > 0 {
				st.opens = st.opens[:len(st.opens)-1]
			}
			i++
		case c == '"' || c == '\'':
			raw := i > 0 && isRawPrefix(src[:i])
			end, closed := skipString(src, i, raw)
			if !closed && isTriple(src, i) {
				st.quote, st.raw, st.quoteAt = c, raw, st.base+i
				return st, hashes
			}
			i = end
		default:
			i++
		}
	}
	return st, hashes
}

// Incomplete reports whether src, a CEL expression typed so far, leaves a
// parenthesis, bracket, brace or triple-quoted string open, so that the
// next line continues it. A single-quoted string cannot span lines in CEL,
// so one left open does not continue: the compiler reports it.
func Incomplete(src string) bool {
	st, _ := scan(src, false, scanState{})
	return st.open()
}

// open reports whether something is left open.
func (st scanState) open() bool {
	return st.depth > 0 || st.quote != 0
}

func skipLine(src string, i int) int {
	for i < len(src) && src[i] != '\n' {
		i++
	}
	return i
}

// isRawPrefix reports whether the text before a quote ends with a raw string
// prefix (r, R, br, rb, ...) that is not the tail of a longer identifier.
func isRawPrefix(before string) bool {
	n := 0
	raw := false
	for j := len(before) - 1; j >= 0 && n < 2; j-- {
		switch before[j] {
		case 'r', 'R':
			raw = true
		case 'b', 'B':
		default:
			if isIdentByte(before[j]) {
				return false
			}
			return raw
		}
		n++
	}
	if n == 2 && len(before) > 2 && isIdentByte(before[len(before)-3]) {
		return false
	}
	return raw
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isTriple(src string, i int) bool {
	return i+2 < len(src) && src[i+1] == src[i] && src[i+2] == src[i]
}

// skipString skips the literal whose opening quote is at src[i] and returns
// the offset after it and whether it was closed. A single-quoted literal
// ends, unclosed, at a newline.
func skipString(src string, i int, raw bool) (int, bool) {
	q := src[i]
	if isTriple(src, i) {
		return skipTriple(src, i+3, q, raw)
	}
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			if !raw {
				j++
			}
		case '\n':
			return j, false
		case q:
			return j + 1, true
		}
	}
	return len(src), false
}

// skipTriple skips the body of a triple-quoted literal from src[i] and
// returns the offset after its closing quotes and whether it found them.
func skipTriple(src string, i int, q byte, raw bool) (int, bool) {
	for j := i; j < len(src); j++ {
		if src[j] == '\\' && !raw {
			j++
			continue
		}
		if src[j] == q && isTriple(src, j) {
			return j + 3, true
		}
	}
	return len(src), false
}
