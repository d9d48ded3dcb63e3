package annot

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// IPAddr returns the address held in the words of a (criu).ipadd field,
// such as inet_sk_entry.src_addr: the address bytes in network order,
// packed into 32-bit words stored in the dumping host's byte order (the
// image's order). One word is an IPv4 address, four an IPv6 address; any
// other count is not an address. A nil order is little-endian.
func IPAddr(words []uint32, order binary.ByteOrder) (netip.Addr, bool) {
	if order == nil {
		order = binary.LittleEndian
	}
	var b [16]byte
	switch len(words) {
	case 1:
		order.PutUint32(b[:4], words[0])
		return netip.AddrFrom4([4]byte(b[:4])), true
	case 4:
		for i, w := range words {
			order.PutUint32(b[4*i:], w)
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// FormatIP renders the words of a (criu).ipadd field as crit does:
// "127.0.0.1", "::1", "::ffff:10.0.0.1". The error names a word count that
// is not 1 or 4.
func FormatIP(words []uint32, order binary.ByteOrder) (string, error) {
	a, ok := IPAddr(words, order)
	if !ok {
		return "", fmt.Errorf("%d words: want 1 (IPv4) or 4 (IPv6)", len(words))
	}
	return a.String(), nil
}

// ParseIP returns the (criu).ipadd words of an address in the image's byte
// order: one word for an IPv4 address, four for an IPv6 one. An address
// with a zone is refused: the image has no place for it.
func ParseIP(s string, order binary.ByteOrder) ([]uint32, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return nil, fmt.Errorf("%q is not an IP address", s)
	}
	return AddrWords(a, order), nil
}

// AddrWords returns the (criu).ipadd words of a: one for IPv4, four for
// IPv6, in order (nil is little-endian).
func AddrWords(a netip.Addr, order binary.ByteOrder) []uint32 {
	if order == nil {
		order = binary.LittleEndian
	}
	if a.Is4() {
		b := a.As4()
		return []uint32{order.Uint32(b[:])}
	}
	b := a.As16()
	return []uint32{order.Uint32(b[0:]), order.Uint32(b[4:]), order.Uint32(b[8:]), order.Uint32(b[12:])}
}
