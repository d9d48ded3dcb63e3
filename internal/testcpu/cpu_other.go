//go:build !unix

package testcpu

import "time"

func used() time.Duration { return 0 }
