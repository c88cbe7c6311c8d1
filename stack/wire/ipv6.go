package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv6 header layout, RFC 8200 §3.
const (
	IPv6HeaderLen = 40
	IPv6Version   = 6

	ipv6PayloadLen = 4
	ipv6NextHeader = 6
	ipv6HopLimit   = 7
	ipv6Src        = 8
	ipv6Dst        = 24

	// IPv6MinMTU is the minimum link MTU (RFC 8200 §5).
	IPv6MinMTU = 1280
)

// IPv6 extension header numbers we recognise (RFC 8200 §4).
const (
	ProtoHopByHop    = 0
	ProtoIPv6Route   = 43
	ProtoIPv6Frag    = 44
	ProtoIPv6NoNext  = 59
	ProtoIPv6DstOpts = 60
)

// IPv6 is a view over an IPv6 packet. Call Check before any accessor.
type IPv6 []byte

// Check validates version 6 and that PayloadLength fits in b. A jumbogram
// (PayloadLength 0 with a hop-by-hop option, RFC 2675) is not supported and
// is reported as a bad length.
func (b IPv6) Check() error {
	if len(b) < IPv6HeaderLen {
		return ErrTruncated
	}
	if b[0]>>4 != IPv6Version {
		return ErrVersion
	}
	pl := int(binary.BigEndian.Uint16(b[ipv6PayloadLen:]))
	if IPv6HeaderLen+pl > len(b) {
		return ErrTotalLen
	}
	// RFC 2675 §3: a jumbogram has payload length 0 and a hop-by-hop header
	// carrying the real length. Any other packet with that pair is
	// malformed too: a hop-by-hop header is at least 8 bytes (RFC 8200 §4.3).
	if pl == 0 && b[ipv6NextHeader] == ProtoHopByHop {
		return ErrTotalLen
	}
	return nil
}

func (b IPv6) Version() uint8 { return b[0] >> 4 }
func (b IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(b[0:]) >> 4)
}
func (b IPv6) FlowLabel() uint32   { return binary.BigEndian.Uint32(b[0:]) & 0x000fffff }
func (b IPv6) PayloadLength() int  { return int(binary.BigEndian.Uint16(b[ipv6PayloadLen:])) }
func (b IPv6) NextHeader() uint8   { return b[ipv6NextHeader] }
func (b IPv6) HopLimit() uint8     { return b[ipv6HopLimit] }
func (b IPv6) Src() netip.Addr     { return netip.AddrFrom16([16]byte(b[ipv6Src : ipv6Src+16])) }
func (b IPv6) Dst() netip.Addr     { return netip.AddrFrom16([16]byte(b[ipv6Dst : ipv6Dst+16])) }
func (b IPv6) SetHopLimit(h uint8) { b[ipv6HopLimit] = h }

// TotalLength is header plus payload length.
func (b IPv6) TotalLength() int { return IPv6HeaderLen + b.PayloadLength() }

// Payload returns the bytes after the fixed header up to PayloadLength.
func (b IPv6) Payload() []byte { return b[IPv6HeaderLen : IPv6HeaderLen+b.PayloadLength()] }

// IPv6Header is the parsed form of the fixed IPv6 header.
type IPv6Header struct {
	TrafficClass  uint8
	FlowLabel     uint32
	PayloadLength int // 0 on Encode: the payload's length
	NextHeader    uint8
	HopLimit      uint8
	Src, Dst      netip.Addr
}

// ParseIPv6 checks b and returns its header and payload (aliasing b).
func ParseIPv6(b []byte) (IPv6Header, []byte, error) {
	v := IPv6(b)
	if err := v.Check(); err != nil {
		return IPv6Header{}, nil, err
	}
	return IPv6Header{
		TrafficClass:  v.TrafficClass(),
		FlowLabel:     v.FlowLabel(),
		PayloadLength: v.PayloadLength(),
		NextHeader:    v.NextHeader(),
		HopLimit:      v.HopLimit(),
		Src:           v.Src(),
		Dst:           v.Dst(),
	}, v.Payload(), nil
}

// Encode writes the header into b[:IPv6HeaderLen].
func (h *IPv6Header) Encode(b []byte, payloadLen int) {
	pl := h.PayloadLength
	if pl == 0 {
		pl = payloadLen
	}
	binary.BigEndian.PutUint32(b[0:], IPv6Version<<28|uint32(h.TrafficClass)<<20|h.FlowLabel&0x000fffff)
	binary.BigEndian.PutUint16(b[ipv6PayloadLen:], uint16(pl))
	b[ipv6NextHeader] = h.NextHeader
	b[ipv6HopLimit] = h.HopLimit
	s, d := h.Src.As16(), h.Dst.As16()
	copy(b[ipv6Src:], s[:])
	copy(b[ipv6Dst:], d[:])
}

// Marshal returns a new packet of the header followed by payload.
func (h *IPv6Header) Marshal(payload []byte) []byte {
	b := make([]byte, IPv6HeaderLen+len(payload))
	h.Encode(b, len(payload))
	copy(b[IPv6HeaderLen:], payload)
	return b
}
