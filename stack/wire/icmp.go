package wire

import (
	"encoding/binary"
	"net/netip"
)

// ICMPv4 message types and codes, RFC 792.
const (
	ICMPv4EchoReply      = 0
	ICMPv4DestUnreach    = 3
	ICMPv4Redirect       = 5
	ICMPv4Echo           = 8
	ICMPv4TimeExceeded   = 11
	ICMPv4ParamProblem   = 12
	ICMPv4NetUnreach     = 0 // codes of ICMPv4DestUnreach
	ICMPv4HostUnreach    = 1
	ICMPv4ProtoUnreach   = 2
	ICMPv4PortUnreach    = 3
	ICMPv4FragNeeded     = 4 // RFC 1191 §4: next-hop MTU in bytes 6-7
	ICMPv4AdminProhib    = 13
	ICMPv4TTLExceeded    = 0 // codes of ICMPv4TimeExceeded
	ICMPv4ReassemblyTime = 1
)

// ICMPv6 message types and codes, RFC 4443.
const (
	ICMPv6DestUnreach    = 1
	ICMPv6PacketTooBig   = 2
	ICMPv6TimeExceeded   = 3
	ICMPv6ParamProblem   = 4
	ICMPv6EchoRequest    = 128
	ICMPv6EchoReply      = 129
	ICMPv6NoRoute        = 0 // codes of ICMPv6DestUnreach (RFC 4443 §3.1)
	ICMPv6AdminProhib    = 1
	ICMPv6BeyondScope    = 2
	ICMPv6AddrUnreach    = 3
	ICMPv6PortUnreach    = 4
	ICMPv6HopLimitExceed = 0 // code of ICMPv6TimeExceeded
	ICMPv6UnrecognizedNH = 1 // code of ICMPv6ParamProblem
)

// ICMPHeaderLen is the fixed part of every ICMP and ICMPv6 message: type,
// code, checksum and four bytes whose meaning depends on the type.
const ICMPHeaderLen = 8

// ICMP is a view over an ICMPv4 or ICMPv6 message (they share the layout of
// the first eight bytes). Call Check before any accessor.
type ICMP []byte

// Check validates that the fixed header is present.
func (b ICMP) Check() error {
	if len(b) < ICMPHeaderLen {
		return ErrTruncated
	}
	return nil
}

func (b ICMP) Type() uint8      { return b[0] }
func (b ICMP) Code() uint8      { return b[1] }
func (b ICMP) Checksum() uint16 { return binary.BigEndian.Uint16(b[2:]) }

// Rest is the type-specific second word ("rest of header").
func (b ICMP) Rest() uint32 { return binary.BigEndian.Uint32(b[4:]) }

// Ident and Seq are the echo identifier and sequence number (RFC 792 "Echo
// or Echo Reply Message"; RFC 4443 §4.1).
func (b ICMP) Ident() uint16 { return binary.BigEndian.Uint16(b[4:]) }
func (b ICMP) Seq() uint16   { return binary.BigEndian.Uint16(b[6:]) }

// MTU is the next-hop MTU of an ICMPv4 fragmentation-needed message (RFC
// 1191 §4, the low 16 bits) or of an ICMPv6 packet-too-big (RFC 4443 §3.2).
func (b ICMP) MTU(v6 bool) uint32 {
	if v6 {
		return b.Rest()
	}
	return uint32(binary.BigEndian.Uint16(b[6:]))
}

// Body is what follows the fixed header: echo data, or the invoking packet
// of an error message.
func (b ICMP) Body() []byte { return b[ICMPHeaderLen:] }

// ChecksumValidV4 verifies an ICMPv4 checksum (RFC 792: over the message).
func (b ICMP) ChecksumValidV4() bool { return Checksum(b) == 0 }

// ChecksumValidV6 verifies an ICMPv6 checksum, which also covers the IPv6
// pseudo-header (RFC 4443 §2.3).
func (b ICMP) ChecksumValidV6(src, dst netip.Addr) bool {
	return Fold(Sum(b, PseudoHeaderSum(ProtoICMPv6, src, dst, len(b)))) == 0
}

// ICMPMessage is the parsed form of an ICMP or ICMPv6 message.
type ICMPMessage struct {
	Type, Code uint8
	Checksum   uint16 // as parsed; Encode computes it
	Rest       uint32 // ident<<16|seq for echo, MTU, pointer, or unused
	Body       []byte
}

// Echo returns an echo request or reply message.
func Echo(typ uint8, ident, seq uint16, data []byte) ICMPMessage {
	return ICMPMessage{Type: typ, Rest: uint32(ident)<<16 | uint32(seq), Body: data}
}

// Ident and Seq read Rest as an echo message's identifier and sequence.
func (m *ICMPMessage) Ident() uint16 { return uint16(m.Rest >> 16) }
func (m *ICMPMessage) Seq() uint16   { return uint16(m.Rest) }

// ParseICMP checks b and returns its parsed form; Body aliases b. The
// checksum is not verified here (see ICMP.ChecksumValidV4/V6).
func ParseICMP(b []byte) (ICMPMessage, error) {
	v := ICMP(b)
	if err := v.Check(); err != nil {
		return ICMPMessage{}, err
	}
	return ICMPMessage{Type: v.Type(), Code: v.Code(), Checksum: v.Checksum(), Rest: v.Rest(), Body: v.Body()}, nil
}

// Len is the encoded length.
func (m *ICMPMessage) Len() int { return ICMPHeaderLen + len(m.Body) }

// EncodeV4 writes the message into b[:m.Len()] with its ICMPv4 checksum.
func (m *ICMPMessage) EncodeV4(b []byte) {
	m.encode(b)
	binary.BigEndian.PutUint16(b[2:], Checksum(b[:m.Len()]))
}

// EncodeV6 writes the message into b[:m.Len()] with its ICMPv6 checksum over
// the pseudo-header of src and dst (RFC 4443 §2.3).
func (m *ICMPMessage) EncodeV6(b []byte, src, dst netip.Addr) {
	m.encode(b)
	n := m.Len()
	binary.BigEndian.PutUint16(b[2:], Fold(Sum(b[:n], PseudoHeaderSum(ProtoICMPv6, src, dst, n))))
}

func (m *ICMPMessage) encode(b []byte) {
	b[0], b[1], b[2], b[3] = m.Type, m.Code, 0, 0
	binary.BigEndian.PutUint32(b[4:], m.Rest)
	copy(b[ICMPHeaderLen:], m.Body)
}
