package wire_test

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/labnet-dev/labnet/stack/wire"
)

func TestNaiveChecksumRFC1071Example(t *testing.T) {
	// RFC 1071 §3's worked example, to pin the oracle itself: the words of
	// 00 01 f2 03 f4 f5 f6 f7 add to 2ddf0, which folds to ddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := naiveSum(b); got != 0x2ddf0 {
		t.Errorf("naiveSum = %#x, want 0x2ddf0", got)
	}
	if got := naiveChecksum(b); got != 0x220d {
		t.Errorf("naiveChecksum = %#04x, want 0x220d", got)
	}
}

func TestChecksum(t *testing.T) {
	ones := func(n int) []byte { return bytes.Repeat([]byte{0xff}, n) }
	tests := []struct {
		name string
		b    []byte
		want uint16
	}{
		// RFC 1071 §3: the sum folds to ddf2, the checksum is its complement.
		{"RFC 1071 example", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0x220d},
		{"empty", nil, 0xffff},
		{"zero word", []byte{0, 0}, 0xffff},
		{"zeros 1500", make([]byte, 1500), 0xffff},
		{"zeros odd 7", make([]byte, 7), 0xffff},
		{"one odd byte", []byte{0x01}, 0xfeff},
		{"one odd byte ff", []byte{0xff}, 0x00ff},
		{"three bytes", []byte{0x12, 0x34, 0x56}, 0x97cb}, // 1234+5600 = 6834
		{"all ones word", ones(2), 0x0000},
		{"all ones 8", ones(8), 0x0000},
		{"all ones 64KiB", ones(1 << 16), 0x0000},
		// ffff+ff00 = 1feff, folds to ff00.
		{"all ones odd 3", ones(3), 0x00ff},
		{"all ones odd 9", ones(9), 0x00ff},
		// 8000+8000 = 10000 folds to 0001: the end-around carry.
		{"carry", []byte{0x80, 0x00, 0x80, 0x00}, 0xfffe},
		// A buffer that holds its own checksum sums to -0.
		{"self-checking", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7, 0x22, 0x0d}, 0x0000},
		// Odd lengths at each position of Sum's 8/4/2/1-byte loop.
		{"len 5", []byte{1, 2, 3, 4, 5}, naiveChecksum([]byte{1, 2, 3, 4, 5})},
		{"len 11", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, naiveChecksum([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})},
		{"len 15", ones(15), 0x00ff},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := naiveChecksum(tc.b); got != tc.want {
				t.Fatalf("oracle disagrees with the table: naiveChecksum = %#04x, want %#04x", got, tc.want)
			}
			if got := wire.Checksum(tc.b); got != tc.want {
				t.Errorf("Checksum(% x) = %#04x, want %#04x", tc.b, got, tc.want)
			}
			if got := wire.Fold(wire.Sum(tc.b, 0)); got != tc.want {
				t.Errorf("Fold(Sum(b, 0)) = %#04x, want %#04x", got, tc.want)
			}
		})
	}
}

func TestFold(t *testing.T) {
	tests := []struct {
		sum  uint32
		want uint16
	}{
		{0, 0xffff},
		{1, 0xfffe},
		{0xffff, 0x0000},
		{0x10000, 0xfffe},    // 1 carried round
		{0x1fffe, 0x0000},    // fffe+1 = ffff
		{0x2ddf0, 0x220d},    // RFC 1071 §3
		{0xffffffff, 0x0000}, // ffff+ffff = 1fffe, then fffe+1 = ffff
		{0xfffeffff, 0x0001}, // fffe+ffff = 1fffd, then fffd+1 = fffe
		{0x80000000, 0x7fff}, // 8000
		{0x12345678, ^uint16(0x1234 + 0x5678)},
	}
	for _, tc := range tests {
		if want := naiveFold(uint64(tc.sum)); want != tc.want {
			t.Fatalf("oracle: naiveFold(%#x) = %#04x, table says %#04x", tc.sum, want, tc.want)
		}
		if got := wire.Fold(tc.sum); got != tc.want {
			t.Errorf("Fold(%#x) = %#04x, want %#04x", tc.sum, got, tc.want)
		}
	}
}

func TestSumMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1071, 1624))
	for n := range 300 {
		for range 20 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			if r.IntN(4) == 0 { // bias towards large words and carries
				for i := range b {
					b[i] |= 0xf0
				}
			}
			initial := r.Uint32()
			if r.IntN(4) == 0 {
				initial = 0xffffffff - uint32(r.IntN(16))
			}
			if got, want := wire.Checksum(b), naiveChecksum(b); got != want {
				t.Fatalf("Checksum(% x) = %#04x, naive %#04x", b, got, want)
			}
			if got, want := wire.Fold(wire.Sum(b, initial)), naiveFold(naiveSum(b)+uint64(initial)); got != want {
				t.Fatalf("Fold(Sum(% x, %#x)) = %#04x, naive %#04x", b, initial, got, want)
			}
		}
	}
}

func TestSumChains(t *testing.T) {
	// Sum(b, Sum(a, 0)) is the sum of a followed by b whenever a has an even
	// length; this is how callers add a pseudo-header or a header in pieces.
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		a := make([]byte, 2*r.IntN(40))
		b := make([]byte, r.IntN(80))
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		got := wire.Fold(wire.Sum(b, wire.Sum(a, 0)))
		if want := naiveChecksum(slices.Concat(a, b)); got != want {
			t.Fatalf("Fold(Sum(b, Sum(a, 0))) = %#04x, want %#04x\na = % x\nb = % x", got, want, a, b)
		}
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	tests := []struct {
		name     string
		proto    uint8
		src, dst netip.Addr
		length   int
	}{
		{"UDP v4", wire.ProtoUDP, hostA4, hostB4, 36},
		{"TCP v4", wire.ProtoTCP, hostB4, hostA4, 1480},
		// A DHCPDISCOVER: the addresses alone sum to ffffffff, so adding the
		// protocol and length carries out of 32 bits.
		{"DHCP discover", wire.ProtoUDP, netip.IPv4Unspecified(), netip.MustParseAddr("255.255.255.255"), 308},
		{"v4 all ones", 255, netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("255.255.255.255"), 0xffff},
		{"v4 zero", 0, netip.IPv4Unspecified(), netip.IPv4Unspecified(), 0},
		{"ICMPv6", wire.ProtoICMPv6, hostA6, hostB6, 16},
		{"ICMPv6 link-local to all-nodes", wire.ProtoICMPv6, netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::1"), 64},
		{"v6 large length", wire.ProtoUDP, hostA6, hostB6, 0x1_0004},
		{"v6 all ones", wire.ProtoICMPv6,
			netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
			netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 0xffff},
		{"v6 sum near 2^32", wire.ProtoTCP,
			netip.MustParseAddr("ffff:ffff::"), netip.IPv6Unspecified(), 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ph := naivePseudoHeader(tc.proto, tc.src, tc.dst, tc.length)
			got := wire.Fold(wire.PseudoHeaderSum(tc.proto, tc.src, tc.dst, tc.length))
			if want := naiveChecksum(ph); got != want {
				t.Errorf("Fold(PseudoHeaderSum(%d, %v, %v, %d)) = %#04x, want %#04x (pseudo-header % x)",
					tc.proto, tc.src, tc.dst, tc.length, got, want, ph)
			}
		})
	}
}

func TestPseudoHeaderSumRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(768, 8200))
	addr := func(v6 bool) netip.Addr {
		var a [16]byte
		for i := range a {
			a[i] = byte(r.Uint32())
			if r.IntN(3) == 0 {
				a[i] = 0xff
			}
		}
		if v6 {
			return netip.AddrFrom16(a)
		}
		return netip.AddrFrom4([4]byte(a[:4]))
	}
	for i := range 5000 {
		v6 := i%2 == 1
		src, dst := addr(v6), addr(v6)
		proto := uint8(r.Uint32())
		payload := make([]byte, r.IntN(64))
		for j := range payload {
			payload[j] = byte(r.Uint32())
		}
		length := len(payload)
		got := wire.Fold(wire.Sum(payload, wire.PseudoHeaderSum(proto, src, dst, length)))
		want := naiveChecksum(slices.Concat(naivePseudoHeader(proto, src, dst, length), payload))
		if got != want {
			t.Fatalf("checksum over pseudo-header(%d, %v, %v, %d) + % x = %#04x, want %#04x",
				proto, src, dst, length, payload, got, want)
		}
	}
}
