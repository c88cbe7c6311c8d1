package wire_test

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/labnet-dev/labnet/stack/wire"
)

// cmpOpts compares netip.Addr by == (it has unexported fields) and treats a
// nil slice and an empty one as equal: whether Options or Payload of a view
// is nil or zero-length is not part of the contract.
var cmpOpts = []cmp.Option{
	cmpopts.EquateComparable(netip.Addr{}),
	cmpopts.EquateEmpty(),
}

// naiveSum is RFC 1071 §4.1 written as plainly as possible, as an oracle for
// wire.Sum: add the big-endian 16-bit words, padding an odd last byte with a
// zero. It never folds, so nothing can overflow for inputs under 2^48 bytes.
func naiveSum(b []byte) uint64 {
	var s uint64
	for i := 0; i < len(b); i += 2 {
		w := uint64(b[i]) << 8
		if i+1 < len(b) {
			w |= uint64(b[i+1])
		}
		s += w
	}
	return s
}

// naiveFold folds the carries back in until the sum fits in 16 bits and
// returns its one's complement.
func naiveFold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func naiveChecksum(b []byte) uint16 { return naiveFold(naiveSum(b)) }

// naivePseudoHeader lays the pseudo-header out byte by byte: RFC 768 / RFC
// 9293 §3.1 for IPv4 (src, dst, zero, protocol, 16-bit length), RFC 8200
// §8.1 for IPv6 (src, dst, 32-bit length, three zeros, next header).
func naivePseudoHeader(proto uint8, src, dst netip.Addr, length int) []byte {
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		b := slices.Concat(s[:], d[:], []byte{0, proto, 0, 0})
		binary.BigEndian.PutUint16(b[10:], uint16(length))
		return b
	}
	s, d := src.As16(), dst.As16()
	b := slices.Concat(s[:], d[:], []byte{0, 0, 0, 0, 0, 0, 0, proto})
	binary.BigEndian.PutUint32(b[32:], uint32(length))
	return b
}

// naiveChecksumV6 is the ICMPv6 checksum of msg (checksum field included as
// it stands) from src to dst, computed without wire.
func naiveChecksumV6(msg []byte, src, dst netip.Addr) uint16 {
	return naiveChecksum(slices.Concat(naivePseudoHeader(wire.ProtoICMPv6, src, dst, len(msg)), msg))
}

// withChecksumZero returns a copy of b with the 16-bit field at off zeroed,
// ready for a naive checksum computation.
func withChecksumZero(b []byte, off int) []byte {
	c := slices.Clone(b)
	c[off], c[off+1] = 0, 0
	return c
}

// ipv4View collects every accessor of a checked wire.IPv4, so that one
// cmp.Diff covers them all.
type ipv4View struct {
	Version        uint8
	HeaderLength   int
	TOS            uint8
	TotalLength    int
	ID             uint16
	Flags          uint16
	DontFragment   bool
	MoreFragments  bool
	FragmentOffset uint16
	IsFragment     bool
	TTL            uint8
	Protocol       uint8
	Checksum       uint16
	ChecksumValid  bool
	Src, Dst       netip.Addr
	Options        []byte
	Payload        []byte
}

func ipv4ViewOf(v wire.IPv4) ipv4View {
	return ipv4View{
		Version:        v.Version(),
		HeaderLength:   v.HeaderLength(),
		TOS:            v.TOS(),
		TotalLength:    v.TotalLength(),
		ID:             v.ID(),
		Flags:          v.Flags(),
		DontFragment:   v.DontFragment(),
		MoreFragments:  v.MoreFragments(),
		FragmentOffset: v.FragmentOffset(),
		IsFragment:     v.IsFragment(),
		TTL:            v.TTL(),
		Protocol:       v.Protocol(),
		Checksum:       v.Checksum(),
		ChecksumValid:  v.ChecksumValid(),
		Src:            v.Src(),
		Dst:            v.Dst(),
		Options:        v.Options(),
		Payload:        v.Payload(),
	}
}

// ipv6View collects every accessor of a checked wire.IPv6.
type ipv6View struct {
	Version       uint8
	TrafficClass  uint8
	FlowLabel     uint32
	PayloadLength int
	NextHeader    uint8
	HopLimit      uint8
	Src, Dst      netip.Addr
	TotalLength   int
	Payload       []byte
}

func ipv6ViewOf(v wire.IPv6) ipv6View {
	return ipv6View{
		Version:       v.Version(),
		TrafficClass:  v.TrafficClass(),
		FlowLabel:     v.FlowLabel(),
		PayloadLength: v.PayloadLength(),
		NextHeader:    v.NextHeader(),
		HopLimit:      v.HopLimit(),
		Src:           v.Src(),
		Dst:           v.Dst(),
		TotalLength:   v.TotalLength(),
		Payload:       v.Payload(),
	}
}

// icmpView collects every accessor of a checked wire.ICMP.
type icmpView struct {
	Type, Code uint8
	Checksum   uint16
	Rest       uint32
	Ident, Seq uint16
	MTUv4      uint32
	MTUv6      uint32
	Body       []byte
}

func icmpViewOf(v wire.ICMP) icmpView {
	return icmpView{
		Type:     v.Type(),
		Code:     v.Code(),
		Checksum: v.Checksum(),
		Rest:     v.Rest(),
		Ident:    v.Ident(),
		Seq:      v.Seq(),
		MTUv4:    v.MTU(false),
		MTUv6:    v.MTU(true),
		Body:     v.Body(),
	}
}
