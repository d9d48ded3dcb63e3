package annot

import (
	"strconv"
	"strings"
)

// DevMajor returns the major number of a device number in the kernel's
// encoding, which CRIU images use: dev >> 20.
func DevMajor(dev uint64) uint64 { return dev >> 20 }

// DevMinor returns the minor number of a device number in the kernel's
// encoding: the low 20 bits.
func DevMinor(dev uint64) uint64 { return dev & (1<<20 - 1) }

// devParts splits a device number; odev selects glibc's user-space dev_t
// encoding (the (criu).odev option) instead of the kernel's.
func devParts(v uint64, odev bool) (major, minor uint64) {
	if odev {
		return (v>>8)&0xfff | uint64(uint32(v>>32)&^0xfff), v&0xff | uint64(uint32(v>>12)&^0xff)
	}
	return DevMajor(v), DevMinor(v)
}

// AppendDev appends a device number as crit prints a (criu).dev field:
// "major:minor", without quotes.
func AppendDev(dst []byte, v uint64, odev bool) []byte {
	major, minor := devParts(v, odev)
	dst = strconv.AppendUint(dst, major, 10)
	dst = append(dst, ':')
	return strconv.AppendUint(dst, minor, 10)
}

// FormatDev returns AppendDev's form of v.
func FormatDev(v uint64, odev bool) string { return string(AppendDev(nil, v, odev)) }

// ParseDev reads "major:minor" (spaces around either number allowed, as
// crit's int() allows them) back into a device number. In glibc's encoding
// each part must fit 32 bits; in the kernel's the minor must fit 20 bits
// and the major the 44 bits above it, so that every 64-bit value AppendDev
// prints reads back.
func ParseDev(s string, odev bool) (uint64, bool) {
	maj, mnr, found := strings.Cut(s, ":")
	a, err1 := strconv.ParseUint(strings.TrimSpace(maj), 10, 64)
	b, err2 := strconv.ParseUint(strings.TrimSpace(mnr), 10, 32)
	if !found || err1 != nil || err2 != nil {
		return 0, false
	}
	if odev { // glibc's makedev
		if a >= 1<<32 {
			return 0, false
		}
		return (a&0xfff)<<8 | (a&^0xfff)<<32 | b&0xff | (b&^0xff)<<12, true
	}
	if a >= 1<<44 || b >= 1<<20 {
		return 0, false
	}
	return a<<20 | b, true
}
