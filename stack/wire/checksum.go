package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Sum adds b to the running one's-complement sum (RFC 1071 §4.1), treating a
// trailing odd byte as padded with zero. Use Fold to finish the checksum.
//
// RFC 1071 §2(B): the sum may be taken over wider words with end-around
// carry and folded afterwards, so it adds 64-bit big-endian words with
// carry (four to a loop), which is where a TCP stack spends much of its
// time.
func Sum(b []byte, initial uint32) uint32 {
	acc, carry := uint64(initial), uint64(0)
	for len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), carry)
		b = b[8:]
	}
	acc, carry = bits.Add64(acc, 0, carry)
	acc += carry // at most one more wrap, which cannot carry again
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), 0)
		acc += carry
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), 0)
		acc += carry
		b = b[2:]
	}
	if len(b) == 1 {
		acc, carry = bits.Add64(acc, uint64(b[0])<<8, 0)
		acc += carry
	}
	// Fold 64 to 32 bits with end-around carry.
	s, c := bits.Add32(uint32(acc>>32), uint32(acc), 0)
	s += c
	return s
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
