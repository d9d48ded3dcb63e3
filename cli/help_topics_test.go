package cli

import (
	"strings"
	"testing"

	"github.com/critq/critq/query"
)

func TestHelpFunctions(t *testing.T) {
	env, err := query.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	fns := env.Functions()
	for _, f := range critqFunctions {
		if _, ok := fns[f.name]; !ok {
			t.Errorf("help functions names %q, which the environment does not declare", f.name)
		}
	}
	out, _, code := runCLI(t, nil, "help", "functions")
	if code != exitOK || !strings.Contains(out, "hex(uint) -> string") || !strings.Contains(out, "cmdline(") {
		t.Errorf("critq help functions: exit %d:\n%s", code, out)
	}
	out, _, code = runCLI(t, nil, "help", "constants")
	if code != exitOK || !strings.Contains(out, "PROT_EXEC=0x4") || !strings.Contains(out, "TASK_DEAD=2") {
		t.Errorf("critq help constants: exit %d:\n%s", code, out)
	}
}
