package batch

import (
	"context"
	"os"
	"testing"
)

func BenchmarkParse(b *testing.B) {
	src, err := os.ReadFile("../examples/cookbook.txt")
	if err != nil {
		b.Skip(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("cookbook.txt", src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRun measures the runner's own cost per item.
func BenchmarkRun(b *testing.B) {
	items := make([]int, 1000)
	b.ReportAllocs()
	for b.Loop() {
		err := Run(context.Background(), items, Options{Jobs: 2},
			func(context.Context, int) (int, error) { return 1, nil },
			func(int, int, int, error) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
}
