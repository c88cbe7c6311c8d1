package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Sum adds b to the running one's-complement sum (RFC 1071 §4.1), treating a
// trailing odd byte as padded with zero. Use Fold to finish the checksum.
//
// It is where a TCP stack spends much of its time, so it uses two
// properties of the sum (RFC 1071 §2): it may be taken over wider words
// with end-around carry and folded afterwards (§2(B), "parallel
// summation"), here 64-bit words with carry, eight to a loop; and it is
// independent of byte order (§2(A)): the words are loaded in the machine's
// order (little-endian loads need no byte swap on the machines we run on,
// and are correct on any) and the folded 16-bit sum is swapped once at the
// end.
func Sum(b []byte, initial uint32) uint32 {
	var acc, carry uint64
	for len(b) >= 64 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[32:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[40:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[48:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[56:]), carry)
		b = b[64:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b), carry)
		b = b[8:]
	}
	acc, carry = bits.Add64(acc, 0, carry)
	acc += carry // at most one more wrap, which cannot carry again
	// The last 0 to 7 bytes, as one little-endian word padded with zeros
	// (the odd byte's pad is the zero RFC 1071 appends after it).
	var tail uint64
	switch n := len(b); {
	case n >= 4:
		tail = uint64(binary.LittleEndian.Uint32(b))
		if n >= 6 {
			tail |= uint64(binary.LittleEndian.Uint16(b[4:])) << 32
		}
		if n&1 == 1 {
			tail |= uint64(b[n-1]) << (8 * (n - 1))
		}
	case n >= 2:
		tail = uint64(binary.LittleEndian.Uint16(b))
		if n == 3 {
			tail |= uint64(b[2]) << 16
		}
	case n == 1:
		tail = uint64(b[0])
	}
	acc, carry = bits.Add64(acc, tail, 0)
	acc += carry
	// Fold to 16 bits, swap into network order, add the caller's sum.
	s, c := bits.Add32(uint32(acc>>32), uint32(acc), 0)
	s += c
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	t, c := bits.Add32(uint32(bits.ReverseBytes16(uint16(s))), initial, 0)
	return t + c // the carry lands in the low bits, which cannot carry again
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
