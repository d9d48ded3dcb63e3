package annot

import (
	"math/bits"
	"strconv"
)

var sizeUnits = [...]string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// Size renders a byte count as critq prints sizes everywhere (the human()
// function, the mem table): binary units, one decimal below 10, rounding
// up as ls -h does, so that a size is never shown smaller than it is:
// "512 B", "4.0 KiB", "4.1 KiB" (4097), "10 KiB", "116 KiB", "1.0 MiB".
func Size(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	i, u := 0, uint64(1024)
	for i+1 < len(sizeUnits) && n/u >= 1024 {
		i, u = i+1, u*1024
	}
	for {
		hi, lo := bits.Mul64(n, 10)
		tenths, rem := bits.Div64(hi, lo, u)
		if rem != 0 {
			tenths++
		}
		if tenths < 100 {
			return strconv.FormatUint(tenths/10, 10) + "." + strconv.FormatUint(tenths%10, 10) + " " + sizeUnits[i]
		}
		whole := n / u
		if n%u != 0 {
			whole++
		}
		if whole < 1024 || i+1 == len(sizeUnits) {
			return strconv.FormatUint(whole, 10) + " " + sizeUnits[i]
		}
		i, u = i+1, u*1024
	}
}

// CritSize renders n exactly as crit's show --nopl does, which critq
// reproduces byte for byte rather than using Size: 1024 steps, "%d%sB"
// when the scaled number is integral, else Python's "%.1f%sB" (nearest,
// ties to even on the binary value): "4KB", "1.5KB", "1.4MB" (1500000).
func CritSize(n uint64) string {
	v := float64(n)
	for _, unit := range []string{"", "K", "M", "G", "T", "P", "E", "Z"} {
		if v < 1024 {
			if v == float64(int64(v)) {
				return strconv.FormatInt(int64(v), 10) + unit + "B"
			}
			return strconv.FormatFloat(v, 'f', 1, 64) + unit + "B"
		}
		v /= 1024
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + "YB"
}
