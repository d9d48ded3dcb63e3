package query

import (
	"bytes"
	"encoding/json"
	"testing"

	"cel.dev/cel-go/common/types"
)

// TestTaggedDumpName: the dump tag of a result is a JSON string whatever
// bytes the dump's name holds.
func TestTaggedDumpName(t *testing.T) {
	for _, name := range []string{"d\xff", "d\x7f", "a\"b\\c", "<&>", "tab\there"} {
		for _, f := range []Format{FormatJSON, FormatNDJSON, FormatPretty} {
			var b bytes.Buffer
			if err := (Output{Format: f}).Write(&b, name, types.Int(1)); err != nil {
				t.Fatal(err)
			}
			var rec struct {
				Dump   string
				Result int
			}
			if err := json.Unmarshal(b.Bytes(), &rec); err != nil || rec.Result != 1 {
				t.Errorf("format %v, dump %q: %v in %s", f, name, err, b.Bytes())
			}
		}
	}
}
