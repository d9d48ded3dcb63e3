//go:build !unix

package mem_test

// maxRSSMB reports 0 where getrusage does not exist.
func maxRSSMB() float64 { return 0 }
