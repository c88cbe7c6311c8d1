package wire

import (
	"encoding/binary"
	"net/netip"
)

// Sum adds b to the running one's-complement sum (RFC 1071 §4.1), treating a
// trailing odd byte as padded with zero. Use Fold to finish the checksum.
func Sum(b []byte, initial uint32) uint32 {
	sum := uint64(initial)
	for len(b) >= 8 {
		sum += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	if len(b) >= 4 {
		sum += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	for sum>>32 != 0 {
		sum = (sum & 0xffffffff) + (sum >> 32)
	}
	return uint32(sum)
}

// Fold finishes a running sum into the 16-bit Internet checksum (the one's
// complement of the folded sum).
func Fold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = (sum & 0xffff) + (sum >> 16)
	}
	return ^uint16(sum)
}

// Checksum is the Internet checksum of b (RFC 1071).
func Checksum(b []byte) uint16 { return Fold(Sum(b, 0)) }

// PseudoHeaderSum is the running sum of the pseudo-header that TCP, UDP and
// ICMPv6 checksums cover: RFC 9293 §3.1 / RFC 768 for IPv4 (src, dst, zero,
// protocol, length) and RFC 8200 §8.1 for IPv6 (src, dst, 32-bit length,
// three zero bytes, next header).
func PseudoHeaderSum(proto uint8, src, dst netip.Addr, length int) uint32 {
	var sum uint32
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		sum = Sum(s[:], 0)
		sum = Sum(d[:], sum)
	} else {
		s, d := src.As16(), dst.As16()
		sum = Sum(s[:], 0)
		sum = Sum(d[:], sum)
	}
	// Add in 64 bits and fold the carry back in: the address sum alone can
	// be 0xffffffff (0.0.0.0 -> 255.255.255.255, a DHCPDISCOVER), and a
	// carry dropped here would make the checksum off by one.
	s := uint64(sum) + uint64(proto) + uint64(uint32(length)&0xffff) + uint64(uint32(length)>>16)
	for s>>32 != 0 {
		s = (s & 0xffffffff) + (s >> 32)
	}
	return uint32(s)
}

// updateChecksum16 adjusts checksum cs for a 16-bit field changing from old
// to new, by RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
func updateChecksum16(cs, old, new uint16) uint16 {
	sum := uint32(^cs) + uint32(^old) + uint32(new)
	for sum>>16 != 0 {
		sum = (sum & 0xffff) + (sum >> 16)
	}
	return ^uint16(sum)
}
