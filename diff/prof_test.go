package diff

import (
	"os"
	"testing"
)

func TestProfSynth(t *testing.T) {
	p := os.Getenv("H7PROF")
	if p == "" {
		t.Skip()
	}
	diffDirs(t, "/tmp/h7synth/"+p+"-a", "/tmp/h7synth/"+p+"-b", Options{})
}
