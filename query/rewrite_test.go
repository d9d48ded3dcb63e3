package query

import (
	"strings"
	"testing"
)

func TestRewriteBitwise(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"and before comparison", "v.prot & 4 != 0", "_bitand_(v.prot, 4) != 0"},
		{"and binds tighter than or", "a | b & c", "_bitor_(a, _bitand_(b, c))"},
		{"or after and", "a & b | c", "_bitor_(_bitand_(a, b), c)"},
		{"and like multiplication, after plus", "a + b & c", "a + _bitand_(b, c)"},
		{"and after times, left to right", "a * b & c", "_bitand_(a * b, c)"},
		{"times after and, left to right", "a & b * c", "_bitand_(a, b) * c"},
		{"or like addition", "a | b + c", "_bitor_(a, b) + c"},
		{"plus then or", "a + b | c", "_bitor_(a + b, c)"},
		{"xor", "a ^ b", "_bitxor_(a, b)"},
		{"shift binds like multiplication", "1 << 2 + 3", "_shl_(1, 2) + 3"},
		{"shift right before comparison", "x >> 1 == 0", "_shr_(x, 1) == 0"},
		{"shifts left to right", "x << 1 >> 2", "_shr_(_shl_(x, 1), 2)"},
		{"complement", "~x", "_bitnot_(x)"},
		{"complement of negation", "~-x & 3", "_bitand_(_bitnot_(-x), 3)"},
		{"negation of complement", "-~x", "-_bitnot_(x)"},
		{"not of complement", "!~x", "!_bitnot_(x)"},
		{"complement binds tighter", "~a & b", "_bitand_(_bitnot_(a), b)"},
		{"complement of member", "~v.prot & 7", "_bitand_(_bitnot_(v.prot), 7)"},
		{"logical operators untouched", "a && b & c || d", "a && _bitand_(b, c) || d"},
		{"parentheses", "(a | b) & c", "_bitand_((_bitor_(a, b)), c)"},
		{"nested parentheses", "((a & (b | c)))", "((_bitand_(a, (_bitor_(b, c)))))"},
		{"call arguments, list, map", "f(a & b, [c | d], {e: f ^ g})", "f(_bitand_(a, b), [_bitor_(c, d)], {e: _bitxor_(f, g)})"},
		{"struct literal", "T{x: a | b}.x", "T{x: _bitor_(a, b)}.x"},
		{"conditional", "x ? a & b : c | d", "x ? _bitand_(a, b) : _bitor_(c, d)"},
		{"nested conditional", "x ? y : z ? a & b : c", "x ? y : z ? _bitand_(a, b) : c"},
		{"member calls", "a.b(c & d).e & f", "_bitand_(a.b(_bitand_(c, d)).e, f)"},
		{"index", "m[k & 1]", "m[_bitand_(k, 1)]"},
		{"in", "a & b in c", "_bitand_(a, b) in c"},
		{"in list", "x in [a & b]", "x in [_bitand_(a, b)]"},
		{"macro", "vmas.filter(v, v.prot & 4).size()", "vmas.filter(v, _bitand_(v.prot, 4)).size()"},
		{"numbers", "0x1F & 0xffu | 1.5e-3", "_bitor_(_bitand_(0x1F, 0xffu), 1.5e-3)"},
		{"leading-dot number", "x & .5", "_bitand_(x, .5)"},
		{"leading-dot name", ".a.b & 1", "_bitand_(.a.b, 1)"},
		{"double-quotedAfter string", `"a & b" + s & 1`, `"a & b" + _bitand_(s, 1)`},
		{"single-quotedAfter string", `'a | b' + s | 1`, `_bitor_('a | b' + s, 1)`},
		{"escaped quote", `"\"&" & 1`, `_bitand_("\"&", 1)`},
		{"escaped quote, single", `'\'|' & 1`, `_bitand_('\'|', 1)`},
		{"raw string ends at quote", `r"a\" & 1`, `_bitand_(r"a\", 1)`},
		{"raw string, capital", `R'\' | 1`, `_bitor_(R'\', 1)`},
		{"triple-quoted", `'''x & "y" ' ''' & 1`, `_bitand_('''x & "y" ' ''', 1)`},
		{"triple-quotedAfter over lines", "\"\"\"a\n| b\"\"\" & 1", "_bitand_(\"\"\"a\n| b\"\"\", 1)"},
		{"bytes", `b"\x00&" & 1`, `_bitand_(b"\x00&", 1)`},
		{"raw bytes", `br"\" ^ 1`, `_bitxor_(br"\", 1)`},
		{"comment after", "a & b // c | d", "_bitand_(a, b) // c | d"},
		{"comment inside", "a &\n// x & y\nb", "_bitand_(a, b)"},
		{"comment before", "// x & y\na | b", "// x & y\n_bitor_(a, b)"},
		{"backquoted field", "a.`b&c` & 1", "_bitand_(a.`b&c`, 1)"},
		{"optional select and index", "a.?b & c[?0]", "_bitand_(a.?b, c[?0])"},
		{"optional list element", "[?a, b & c]", "[?a, _bitand_(b, c)]"},
		{"trailing comma", "[a & b,]", "[_bitand_(a, b),]"},
		{"unicode around", "'é' + s & 1 == x", "'é' + _bitand_(s, 1) == x"},
		{"spaces kept outside", "  a&b  ", "  _bitand_(a, b)  "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rewriteBitwise(tt.in)
			if got.text != tt.want {
				t.Errorf("rewriteBitwise(%q) got %q, wanted %q", tt.in, got.text, tt.want)
			}
			if !got.changed || got.standIn != "" {
				t.Errorf("rewriteBitwise(%q): changed %v, stand-in %q", tt.in, got.changed, got.standIn)
			}
		})
	}
}

func TestRewriteUnchanged(t *testing.T) {
	tests := []struct {
		name, in string
		bad      bool // has a bitwise operator but does not parse
	}{
		{"no operators", "a && b || !c", false},
		{"operators in strings", `"a & b" + 'c | d' + r"~" + b'^' + """<<""" + '''>>'''`, false},
		{"operators in comments", "a // & | ^ ~ << >>\n|| b", false},
		{"comparisons", "a <= b && c >= d && e < f && g > h", false},
		{"empty", "", false},
		{"only a comment", "// a & b", false},
		{"unterminated string", `"a & b`, false},
		{"missing operand", "1 & 2 ==", true},
		{"operator at start", "& 1", true},
		{"unbalanced", "(a & b", true},
		{"triple and", "a &&& b", true},
		{"stray character", "a & b # c", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rewriteBitwise(tt.in)
			if got.text != tt.in || got.changed {
				t.Errorf("rewriteBitwise(%q) got %q (changed %v), wanted the input", tt.in, got.text, got.changed)
			}
			if (got.standIn != "") != tt.bad {
				t.Errorf("rewriteBitwise(%q) stand-in %q, wanted one: %v", tt.in, got.standIn, tt.bad)
			}
			if tt.bad && len(got.standIn) != len(tt.in) {
				t.Errorf("stand-in %q is not as long as %q", got.standIn, tt.in)
			}
		})
	}
}

func TestStandIn(t *testing.T) {
	in := "~a & b | c ^ d << e >> f && '&'"
	want := "-a * b + c + d /  e /  f && '&'"
	if got := standInText(in, tokenizeCEL(in)); got != want {
		t.Errorf("standIn(%q) got %q, wanted %q", in, got, want)
	}
}

// TestRewritePositions checks that every byte copied from the user's text
// maps back to where it came from, and that inserted text maps to the
// operator it stands for.
func TestRewritePositions(t *testing.T) {
	tests := []struct {
		in   string
		at   string // a piece of the rewritten text
		want string // the user's text from where it maps to
	}{
		{"v.prot & 4 != 0", "(v.prot", "& 4 != 0"},
		{"v.prot & 4 != 0", "v.prot,", "v.prot & 4"},
		{"v.prot & 4 != 0", ", 4", "& 4 != 0"},
		{"v.prot & 4 != 0", ") != 0", "& 4 != 0"},
		{"v.prot & 4 != 0", "!= 0", "!= 0"},
		{"a |\n  ~b", "(b", "~b"},
		{"a |\n  ~b", "_bitnot_", "~b"},
		{"a |\n  ~b", "b)", "b"},
		{"x << 2 == 'é' | y", "y)", "y"},
	}
	for _, tt := range tests {
		rw := rewriteBitwise(tt.in)
		i := strings.Index(rw.text, tt.at)
		if i < 0 {
			t.Fatalf("%q not in %q", tt.at, rw.text)
		}
		if got := tt.in[rw.pos.source(i):]; !strings.HasPrefix(got, tt.want) {
			t.Errorf("rewriteBitwise(%q): %q at %d maps to %q, wanted %q", tt.in, tt.at, i, got, tt.want)
		}
	}
	// Copied text maps to the same text; inserted text to an operator.
	for _, in := range []string{"a & b | ~c ^ d << 1 >> 2", "f(a & b, [c | d])", "'é' & x"} {
		checkPosMap(t, in, rewriteBitwise(in))
	}
}

// checkPosMap checks the segments of a rewrite against its input.
func checkPosMap(t *testing.T, in string, rw rewriteResult) {
	t.Helper()
	for i, s := range rw.pos.segs {
		end := len(rw.text)
		if i+1 < len(rw.pos.segs) {
			end = rw.pos.segs[i+1].out
		}
		switch {
		case s.n > 0 && (s.out+s.n != end || s.in+s.n > len(in) || rw.text[s.out:end] != in[s.in:s.in+s.n]):
			t.Fatalf("rewriteBitwise(%q): segment %+v: %q is not a copy of the input", in, s, rw.text[s.out:end])
		case s.n == 0 && (s.in >= len(in) || !strings.ContainsRune("&|^~<>", rune(in[s.in]))):
			t.Fatalf("rewriteBitwise(%q): segment %+v does not map to an operator", in, s)
		}
	}
	for i := 0; i <= len(rw.text); i++ {
		if s := rw.pos.source(i); s < 0 || s > len(in) {
			t.Fatalf("rewriteBitwise(%q): offset %d maps to %d, outside the input", in, i, s)
		}
	}
}

func TestTokenize(t *testing.T) {
	in := `a.b && 1u|| "x\"y" r'\' b"""q""" 1.5e+3 (.5 x.5 // c & d` + "\n~"
	var got []string
	for _, tok := range tokenizeCEL(in) {
		got = append(got, in[tok.pos:tok.end])
	}
	want := []string{"a", ".", "b", "&&", "1u", "||", `"x\"y"`, `r'\'`, `b"""q"""`, "1.5e+3", "(", ".5", "x", ".", "5", "~", ""}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("tokenize(%q) got %q, wanted %q", in, got, want)
	}
}

func FuzzRewrite(f *testing.F) {
	for _, s := range []string{
		"v.prot & 4 != 0", "a | b & c ^ d << 1 >> ~2", `"a & b" + r'\' & b"""x|y"""`,
		"vmas.filter(v, v.prot & PROT_EXEC).size()", "x ? a & b : {c: [d | e]}", "// & \n a", "1 & 2 ==",
		"((((a & b))))", "a.?b & c[?0]", "'é' & x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		rw := rewriteBitwise(src)
		hasOp := false
		for _, tok := range tokenizeCEL(src) {
			if tok.kind == tkOp && bitFunc(tok.op) != "" {
				hasOp = true
			}
		}
		if !hasOp && (rw.text != src || rw.changed) {
			t.Fatalf("rewriteBitwise(%q) changed text without bitwise operators: %q", src, rw.text)
		}
		if rw.standIn != "" && len(rw.standIn) != len(src) {
			t.Fatalf("stand-in of %q has another length: %q", src, rw.standIn)
		}
		checkPosMap(t, src, rw)
		// The rewrite is stable: rewriting again changes nothing, as no
		// bitwise operator is left outside literals and comments.
		if rw.changed {
			if again := rewriteBitwise(rw.text); again.changed {
				t.Fatalf("rewriteBitwise(%q) = %q still has bitwise operators", src, rw.text)
			}
		}
	})
}

func BenchmarkRewrite(b *testing.B) {
	for _, src := range []string{
		"vmas.filter(v, v.prot & PROT_EXEC && v.status & VMA_AREA_REGULAR != 0).size()",
		"tasks.filter(t, t.pid == 1 && t.comm.startsWith('sleep')).map(t, t.pid)",
	} {
		b.Run(src[:5], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rewriteBitwise(src)
			}
		})
	}
}
