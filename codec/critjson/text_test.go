package critjson

import (
	"bytes"
	"strings"
	"testing"
)

// The expected strings were printed by CPython 3.11: json.dumps of
// quopri.encodestring(b).decode(), of str values, and of
// base64.encodebytes(b).decode().
func TestAppendQP(t *testing.T) {
	tests := []struct {
		in   string
		want string // as a JSON string
	}{
		{"\x00/run/app.sock", `"=00/run/app.sock"`},
		{"a=b", `"a=3Db"`},
		{"trail ", `"trail=20"`},
		{"tab\t", `"tab=09"`},
		{strings.Repeat("x", 80), `"` + strings.Repeat("x", 75) + `=\nxxxxx"`},
		{strings.Repeat("=", 30), `"` + strings.Repeat("=3D", 25) + `=\n` + strings.Repeat("=3D", 5) + `"`},
		{".", `"=2E"`},
		{"\x7f\x80\xff", `"=7F=80=FF"`},
		{"in\tside", `"in\tside"`},
		{strings.Repeat("a", 74) + "=", `"` + strings.Repeat("a", 74) + `=\n=3D"`},
		{strings.Repeat("a", 73) + "  b", `"` + strings.Repeat("a", 73) + `  b"`},
	}
	for _, tc := range tests {
		enc := appendQP(nil, []byte(tc.in))
		if got := string(appendString(nil, enc)); got != tc.want {
			t.Errorf("appendQP(%q) = %s, want %s", tc.in, got, tc.want)
		}
		if got := decodeQP(enc); !bytes.Equal(got, []byte(tc.in)) {
			t.Errorf("decodeQP(appendQP(%q)) = %q", tc.in, got)
		}
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"héllo", `"h\u00e9llo"`},
		{"\x00\x1f\x7f", `"\u0000\u001f\u007f"`},
		{"😀", `"\ud83d\ude00"`},
		{`a"b\c/`, `"a\"b\\c/"`},
		{"\u2028", `"\u2028"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"bad\xffutf8\xc3", `"bad\udcffutf8\udcc3"`}, // surrogateescape
	}
	for _, tc := range tests {
		got := appendString(nil, tc.in)
		if string(got) != tc.want {
			t.Errorf("appendString(%q) = %s, want %s", tc.in, got, tc.want)
		}
		s := scanner{data: got}
		back, err := s.str()
		if err != nil || string(back) != tc.in {
			t.Errorf("str(%s) = %q, %v; want %q", got, back, err, tc.in)
		}
	}
}

func TestMIME(t *testing.T) {
	in := make([]byte, 100)
	for i := range in {
		in[i] = byte(i)
	}
	want := `AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\nOTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiYw==\n`
	if got := string(appendMIME(nil, in)); got != want {
		t.Errorf("appendMIME = %s, want %s", got, want)
	}
	oneLine := strings.ReplaceAll(want, `\n`, "")
	for _, enc := range []string{strings.ReplaceAll(want, `\n`, "\n"), oneLine, strings.TrimRight(oneLine, "=")} {
		got, err := decodeBase64([]byte(enc))
		if err != nil || !bytes.Equal(got, in) {
			t.Errorf("decodeBase64(%q) = %v, %v", enc, got, err)
		}
	}
	if _, err := decodeBase64([]byte("... <3B>")); err == nil {
		t.Error("decodeBase64 accepted show --nopl text")
	}
}
