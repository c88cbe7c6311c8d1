package wire

import (
	"encoding/binary"
	"net/netip"
)

// UDP header layout, RFC 768.
const (
	UDPHeaderLen = 8
	// UDPMaxLength is the largest value of the Length field: the header and
	// at most 65527 bytes of data (IPv4 leaves room for 65507 of them).
	UDPMaxLength = 0xffff

	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6
)

// ErrUDPLength is returned by UDP.Check and ParseUDP when the Length field is
// shorter than the header or longer than the bytes at hand.
var ErrUDPLength = fmtErr("bad UDP length")

// UDP is a view over a UDP datagram: header and data. Call Check before any
// accessor.
type UDP []byte

// Check validates the header against the buffer: at least the 8-byte header,
// and UDPHeaderLen <= Length <= len(b). Bytes beyond Length (IP payload the
// datagram does not claim) are allowed and ignored, as Linux trims them. After
// it returns nil every accessor is safe. It does not verify the checksum (see
// ChecksumValid), so that callers can count the two failures apart.
func (b UDP) Check() error {
	if len(b) < UDPHeaderLen {
		return ErrTruncated
	}
	// RFC 768: "Length is the length in octets of this user datagram
	// including this header and the data. (This means the minimum value of
	// the length is eight.)" A zero length would be an RFC 2675 jumbogram,
	// which this stack does not support.
	if l := int(binary.BigEndian.Uint16(b[udpLength:])); l < UDPHeaderLen || l > len(b) {
		return ErrUDPLength
	}
	return nil
}

func (b UDP) SrcPort() uint16  { return binary.BigEndian.Uint16(b[udpSrcPort:]) }
func (b UDP) DstPort() uint16  { return binary.BigEndian.Uint16(b[udpDstPort:]) }
func (b UDP) Length() int      { return int(binary.BigEndian.Uint16(b[udpLength:])) }
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[udpChecksum:]) }

// Payload returns the data: the bytes after the header up to Length.
func (b UDP) Payload() []byte { return b[UDPHeaderLen:b.Length()] }

// ChecksumValid reports whether the datagram's checksum verifies over the
// pseudo-header of src and dst and the datagram's Length bytes.
//
// RFC 768: "An all zero transmitted checksum value means that the
// transmitter generated no checksum", which IPv4 accepts; RFC 8200 §8.1 makes
// the checksum mandatory over IPv6: "IPv6 receivers must discard UDP packets
// containing a zero checksum".
func (b UDP) ChecksumValid(src, dst netip.Addr) bool {
	if b.Checksum() == 0 {
		return src.Is4()
	}
	n := b.Length()
	return Fold(Sum(b[:n], PseudoHeaderSum(ProtoUDP, src, dst, n))) == 0
}

// SetChecksum computes and stores the checksum of the datagram's Length bytes
// from src to dst. A computed zero is sent as 0xffff (RFC 768: "If the
// computed checksum is zero, it is transmitted as all ones"), since zero on
// the wire means "no checksum".
func (b UDP) SetChecksum(src, dst netip.Addr) {
	n := b.Length()
	b[udpChecksum], b[udpChecksum+1] = 0, 0
	cs := Fold(Sum(b[:n], PseudoHeaderSum(ProtoUDP, src, dst, n)))
	if cs == 0 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(b[udpChecksum:], cs)
}

// UDPHeader is the parsed form of a UDP header.
type UDPHeader struct {
	SrcPort, DstPort uint16
	Length           int    // as parsed; Encode writes header + payload length
	Checksum         uint16 // as parsed; Encode computes it
}

// ParseUDP checks b and returns its header and payload (the data up to
// Length, aliasing b). The checksum is not verified here (see
// UDP.ChecksumValid).
func ParseUDP(b []byte) (UDPHeader, []byte, error) {
	v := UDP(b)
	if err := v.Check(); err != nil {
		return UDPHeader{}, nil, err
	}
	h := UDPHeader{SrcPort: v.SrcPort(), DstPort: v.DstPort(), Length: v.Length(), Checksum: v.Checksum()}
	return h, v.Payload(), nil
}

// Encode writes the header into b[:UDPHeaderLen], whose payloadLen bytes of
// data must already be in place after it, and computes the checksum over the
// pseudo-header of src and dst (which must be valid addresses of one family).
// Length is written as UDPHeaderLen+payloadLen, which must not exceed
// UDPMaxLength. Writing the data first lets a sender fill a packet from
// stack.NewPacket without a copy.
func (h *UDPHeader) Encode(b []byte, payloadLen int, src, dst netip.Addr) {
	binary.BigEndian.PutUint16(b[udpSrcPort:], h.SrcPort)
	binary.BigEndian.PutUint16(b[udpDstPort:], h.DstPort)
	binary.BigEndian.PutUint16(b[udpLength:], uint16(UDPHeaderLen+payloadLen))
	UDP(b[:UDPHeaderLen+payloadLen]).SetChecksum(src, dst)
}

// Marshal returns a new datagram of the header followed by payload, with its
// checksum from src to dst.
func (h *UDPHeader) Marshal(payload []byte, src, dst netip.Addr) []byte {
	b := make([]byte, UDPHeaderLen+len(payload))
	copy(b[UDPHeaderLen:], payload)
	h.Encode(b, len(payload), src, dst)
	return b
}
