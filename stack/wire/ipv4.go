package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 header layout, RFC 791 §3.1.
const (
	IPv4MinHeaderLen = 20
	IPv4MaxTotalLen  = 65535
	IPv4Version      = 4

	ipv4VersionIHL = 0
	ipv4TOS        = 1
	ipv4TotalLen   = 2
	ipv4ID         = 4
	ipv4FlagsFrag  = 6
	ipv4TTL        = 8
	ipv4Protocol   = 9
	ipv4Checksum   = 10
	ipv4Src        = 12
	ipv4Dst        = 16

	// IPv4FlagDF is "don't fragment", IPv4FlagMF "more fragments" (RFC 791
	// §3.1, Flags).
	IPv4FlagDF = 0x4000
	IPv4FlagMF = 0x2000
)

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
const (
	ProtoICMPv4 = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// IPv4 is a view over an IPv4 packet. Call Check before any accessor.
type IPv4 []byte

// Check validates the fixed header against the buffer: version 4, IHL at
// least 5, and header length <= total length <= len(b). After it returns nil,
// every accessor is safe. It does not verify the checksum (see ChecksumValid)
// so that callers can count the two failures apart.
func (b IPv4) Check() error {
	if len(b) < IPv4MinHeaderLen {
		return ErrTruncated
	}
	if b[ipv4VersionIHL]>>4 != IPv4Version {
		return ErrVersion
	}
	hl := int(b[ipv4VersionIHL]&0x0f) * 4
	if hl < IPv4MinHeaderLen || hl > len(b) {
		return ErrHeaderLen
	}
	tl := int(binary.BigEndian.Uint16(b[ipv4TotalLen:]))
	if tl < hl || tl > len(b) {
		return ErrTotalLen
	}
	return nil
}

func (b IPv4) Version() uint8         { return b[ipv4VersionIHL] >> 4 }
func (b IPv4) HeaderLength() int      { return int(b[ipv4VersionIHL]&0x0f) * 4 }
func (b IPv4) TOS() uint8             { return b[ipv4TOS] }
func (b IPv4) TotalLength() int       { return int(binary.BigEndian.Uint16(b[ipv4TotalLen:])) }
func (b IPv4) ID() uint16             { return binary.BigEndian.Uint16(b[ipv4ID:]) }
func (b IPv4) Flags() uint16          { return binary.BigEndian.Uint16(b[ipv4FlagsFrag:]) & 0xe000 }
func (b IPv4) DontFragment() bool     { return b.Flags()&IPv4FlagDF != 0 }
func (b IPv4) MoreFragments() bool    { return b.Flags()&IPv4FlagMF != 0 }
func (b IPv4) FragmentOffset() uint16 { return binary.BigEndian.Uint16(b[ipv4FlagsFrag:]) & 0x1fff }
func (b IPv4) TTL() uint8             { return b[ipv4TTL] }
func (b IPv4) Protocol() uint8        { return b[ipv4Protocol] }
func (b IPv4) Checksum() uint16       { return binary.BigEndian.Uint16(b[ipv4Checksum:]) }
func (b IPv4) Src() netip.Addr        { return netip.AddrFrom4([4]byte(b[ipv4Src : ipv4Src+4])) }
func (b IPv4) Dst() netip.Addr        { return netip.AddrFrom4([4]byte(b[ipv4Dst : ipv4Dst+4])) }

// Options returns the option bytes between the fixed header and the payload.
func (b IPv4) Options() []byte { return b[IPv4MinHeaderLen:b.HeaderLength()] }

// Payload returns the bytes after the header up to TotalLength; link padding
// beyond TotalLength is excluded.
func (b IPv4) Payload() []byte { return b[b.HeaderLength():b.TotalLength()] }

// IsFragment reports whether the packet is one fragment of a larger datagram.
func (b IPv4) IsFragment() bool { return b.MoreFragments() || b.FragmentOffset() != 0 }

// ChecksumValid reports whether the header checksum verifies (RFC 791 §3.1:
// the one's complement sum of the header, checksum included, is all ones).
func (b IPv4) ChecksumValid() bool { return Checksum(b[:b.HeaderLength()]) == 0 }

// SetChecksum computes and stores the header checksum.
func (b IPv4) SetChecksum() {
	b[ipv4Checksum], b[ipv4Checksum+1] = 0, 0
	binary.BigEndian.PutUint16(b[ipv4Checksum:], Checksum(b[:b.HeaderLength()]))
}

// SetTTL stores ttl and updates the checksum incrementally (RFC 1624), as a
// forwarding router does (RFC 1812 §5.3.1).
func (b IPv4) SetTTL(ttl uint8) {
	old := binary.BigEndian.Uint16(b[ipv4TTL:])
	b[ipv4TTL] = ttl
	cs := updateChecksum16(b.Checksum(), old, binary.BigEndian.Uint16(b[ipv4TTL:]))
	binary.BigEndian.PutUint16(b[ipv4Checksum:], cs)
}

// IPv4Header is the parsed form of an IPv4 header.
type IPv4Header struct {
	TOS            uint8
	TotalLength    int // 0 on Encode: header length + payload length
	ID             uint16
	Flags          uint16 // IPv4FlagDF | IPv4FlagMF
	FragmentOffset uint16 // in 8-byte units
	TTL            uint8
	Protocol       uint8
	Checksum       uint16 // as parsed; Encode computes it
	Src, Dst       netip.Addr
	Options        []byte // length a multiple of 4, at most 40
}

// HeaderLength is the encoded header length in bytes.
func (h *IPv4Header) HeaderLength() int { return IPv4MinHeaderLen + len(h.Options) }

// ParseIPv4 checks b and returns its header and payload. The payload aliases b.
func ParseIPv4(b []byte) (IPv4Header, []byte, error) {
	v := IPv4(b)
	if err := v.Check(); err != nil {
		return IPv4Header{}, nil, err
	}
	h := IPv4Header{
		TOS:            v.TOS(),
		TotalLength:    v.TotalLength(),
		ID:             v.ID(),
		Flags:          v.Flags(),
		FragmentOffset: v.FragmentOffset(),
		TTL:            v.TTL(),
		Protocol:       v.Protocol(),
		Checksum:       v.Checksum(),
		Src:            v.Src(),
		Dst:            v.Dst(),
	}
	if opts := v.Options(); len(opts) > 0 {
		h.Options = opts
	}
	return h, v.Payload(), nil
}

// Encode writes the header into b, which must hold HeaderLength bytes, and
// computes the checksum. TotalLength 0 is taken as HeaderLength+payloadLen.
func (h *IPv4Header) Encode(b []byte, payloadLen int) {
	hl := h.HeaderLength()
	tl := h.TotalLength
	if tl == 0 {
		tl = hl + payloadLen
	}
	b[ipv4VersionIHL] = IPv4Version<<4 | uint8(hl/4)
	b[ipv4TOS] = h.TOS
	binary.BigEndian.PutUint16(b[ipv4TotalLen:], uint16(tl))
	binary.BigEndian.PutUint16(b[ipv4ID:], h.ID)
	binary.BigEndian.PutUint16(b[ipv4FlagsFrag:], h.Flags&0xe000|h.FragmentOffset&0x1fff)
	b[ipv4TTL] = h.TTL
	b[ipv4Protocol] = h.Protocol
	s, d := h.Src.As4(), h.Dst.As4()
	copy(b[ipv4Src:], s[:])
	copy(b[ipv4Dst:], d[:])
	copy(b[IPv4MinHeaderLen:hl], h.Options)
	IPv4(b[:hl]).SetChecksum()
}

// Marshal returns a new packet of the header followed by payload.
func (h *IPv4Header) Marshal(payload []byte) []byte {
	hl := h.HeaderLength()
	b := make([]byte, hl+len(payload))
	h.Encode(b, len(payload))
	copy(b[hl:], payload)
	return b
}
