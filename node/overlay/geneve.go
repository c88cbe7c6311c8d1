package overlay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// GENEVE header layout, RFC 8926 §3.4:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Virtual Network Identifier (VNI)       |    Reserved   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Variable-Length Options                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// and of each option, RFC 8926 §3.5:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Option Class         |      Type     |R|R|R| Length  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Variable-Length Option Data                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	// Port is the IANA-assigned GENEVE UDP port (RFC 8926 §3.3); tshark
	// decodes it as GENEVE without being told.
	Port = 6081

	// HeaderMinLen is the fixed part of the header; MaxOptLen the most
	// option bytes that Opt Len (6 bits, in 4-byte units) can describe.
	HeaderMinLen = 8
	MaxOptLen    = 0x3f * 4

	// Protocol types (EtherTypes) of the payload that labnet carries: the
	// bare IP packet, no Ethernet header.
	ProtoIPv4 = 0x0800
	ProtoIPv6 = 0x86dd

	// MaxVNI is the largest 24-bit Virtual Network Identifier.
	MaxVNI = 1<<24 - 1

	// OptionClassLabnet is labnet's option class, from the range 0xFFF0-0xFFFF
	// that the IANA "Geneve Option Class" registry (RFC 8926 §7) sets aside for
	// experimental use.
	OptionClassLabnet = 0xfff0
	// OptionTypeNextHop carries the next-hop address: 4 bytes of IPv4 or 16
	// of IPv6. It is not critical: a receiver that does not know it may
	// ignore it (RFC 8926 §3.5).
	OptionTypeNextHop = 0x01
	// OptionCritical is the high bit of an option's Type.
	OptionCritical = 0x80

	// MaxOptionDataLen is the most data one option can carry: Length is 5
	// bits in 4-byte units.
	MaxOptionDataLen = 0x1f * 4

	verOptLen     = 0
	flags         = 1
	protocolType  = 2
	vni           = 4
	flagOAM       = 0x80
	flagCritical  = 0x40
	optHeaderLen  = 4
	optLenMask    = 0x1f
	optReserved   = 0xe0
	reservedFlags = 0x3f
)

// ErrMalformed is wrapped by every error that Check, Parse and Key.Open return
// for bytes that are not a packet labnet accepts, so a receiver counts them
// under one reason with errors.Is.
var ErrMalformed = errors.New("overlay: malformed packet")

// Errors returned by Check and Parse.
var (
	ErrTruncated = malformed("truncated")
	ErrVersion   = malformed("unknown GENEVE version")
	ErrOptLen    = malformed("options beyond the packet")
	ErrCritical  = malformed("unknown critical option")
	ErrProtocol  = malformed("unknown protocol type")
	ErrNextHop   = malformed("bad next-hop option")
)

type malformedError struct{ msg string }

func (e *malformedError) Error() string        { return "overlay: malformed packet: " + e.msg }
func (e *malformedError) Is(target error) bool { return target == ErrMalformed }

func malformed(msg string) error { return &malformedError{msg} }

// Header is a view over a GENEVE packet: the header, its options and the
// payload after them. Call Check before any accessor.
type Header []byte

// Check validates the header against the buffer and against what labnet
// accepts. After it returns nil every accessor is safe. It rejects, as RFC
// 8926 asks:
//
//   - a version other than 0 (§3.4: "MUST be dropped");
//   - Opt Len, or an option's Length, reaching beyond the packet;
//   - the C bit, and any option with its critical bit set: labnet knows no
//     critical option, and an endpoint that does not recognise a critical
//     option must drop the packet (§3.5). The C bit says one is present
//     (§3.4), so it alone is enough to drop;
//   - a protocol type other than IPv4 or IPv6, which labnet cannot deliver;
//   - a next-hop option of a length other than 4 or 16, or a second one.
//
// Unknown options that are not critical are skipped (§3.5.1), and the
// reserved bits are ignored on receipt (§3.4).
func (h Header) Check() error {
	if len(h) < HeaderMinLen {
		return ErrTruncated
	}
	if h.Version() != 0 {
		return ErrVersion
	}
	end := HeaderMinLen + h.OptLen()
	if end > len(h) {
		return ErrOptLen
	}
	if h.Critical() {
		return ErrCritical
	}
	if p := h.ProtocolType(); p != ProtoIPv4 && p != ProtoIPv6 {
		return ErrProtocol
	}
	nextHop := false
	for b := h[HeaderMinLen:end]; len(b) > 0; {
		if len(b) < optHeaderLen {
			return ErrOptLen
		}
		class, typ, n := binary.BigEndian.Uint16(b), b[2], optHeaderLen+int(b[3]&optLenMask)*4
		if n > len(b) {
			return ErrOptLen
		}
		if typ&OptionCritical != 0 {
			return ErrCritical
		}
		if class == OptionClassLabnet && typ == OptionTypeNextHop {
			if nextHop || (n-optHeaderLen != 4 && n-optHeaderLen != 16) {
				return ErrNextHop
			}
			nextHop = true
		}
		b = b[n:]
	}
	return nil
}

func (h Header) Version() uint8       { return h[verOptLen] >> 6 }
func (h Header) OptLen() int          { return int(h[verOptLen]&0x3f) * 4 } // in bytes
func (h Header) OAM() bool            { return h[flags]&flagOAM != 0 }
func (h Header) Critical() bool       { return h[flags]&flagCritical != 0 }
func (h Header) ProtocolType() uint16 { return binary.BigEndian.Uint16(h[protocolType:]) }
func (h Header) VNI() uint32          { return binary.BigEndian.Uint32(h[vni:]) >> 8 }
func (h Header) HeaderLength() int    { return HeaderMinLen + h.OptLen() }
func (h Header) Options() []byte      { return h[HeaderMinLen:h.HeaderLength()] }
func (h Header) Payload() []byte      { return h[h.HeaderLength():] }
func (h Header) NextHop() netip.Addr  { return nextHopIn(h.Options()) }
func (h Header) setVNI(v uint32)      { binary.BigEndian.PutUint32(h[vni:], v<<8) }
func (h Header) setOptLen(n int)      { h[verOptLen] = uint8(n / 4) }
func (h Header) setProtocol(p uint16) { binary.BigEndian.PutUint16(h[protocolType:], p) }

func (h Header) setFlags(oam, critical bool) {
	h[flags] = 0
	if oam {
		h[flags] |= flagOAM
	}
	if critical {
		h[flags] |= flagCritical
	}
}

func encodeOptionHeader(b []byte, class uint16, typ uint8, dataLen int) {
	binary.BigEndian.PutUint16(b, class)
	b[2], b[3] = typ, uint8(dataLen/4)&optLenMask
}

// nextHopIn finds the next-hop option in options that Check has accepted; it
// returns the zero Addr when there is none.
func nextHopIn(b []byte) netip.Addr {
	for len(b) >= optHeaderLen {
		n := optHeaderLen + int(b[3]&optLenMask)*4
		if n > len(b) {
			break
		}
		if binary.BigEndian.Uint16(b) == OptionClassLabnet && b[2] == OptionTypeNextHop {
			if a, ok := netip.AddrFromSlice(b[optHeaderLen:n]); ok {
				return a
			}
		}
		b = b[n:]
	}
	return netip.Addr{}
}

// Option is one GENEVE option in parsed form.
type Option struct {
	Class uint16
	Type  uint8  // the high bit (OptionCritical) is the critical bit
	Data  []byte // a multiple of 4 bytes, at most MaxOptionDataLen
}

// Critical reports whether the option's critical bit is set.
func (o *Option) Critical() bool { return o.Type&OptionCritical != 0 }

func (o *Option) encodedLen() int { return optHeaderLen + len(o.Data) }
func (o *Option) isNextHop() bool { return o.Class == OptionClassLabnet && o.Type == OptionTypeNextHop }

// NextHopOption returns the option that carries a next-hop address.
func NextHopOption(a netip.Addr) Option {
	return Option{Class: OptionClassLabnet, Type: OptionTypeNextHop, Data: a.AsSlice()}
}

// Geneve is the parsed form of a GENEVE header. Version is always 0 and the
// C bit is derived from the options, so neither is a field.
type Geneve struct {
	OAM          bool
	ProtocolType uint16
	VNI          uint32   // at most MaxVNI
	Options      []Option // in wire order, the next-hop option among them
}

// Parse checks b and returns its header and payload. Options' data and the
// payload alias b. The reserved bits are not kept: Encode writes them as zero.
func Parse(b []byte) (Geneve, []byte, error) {
	h := Header(b)
	if err := h.Check(); err != nil {
		return Geneve{}, nil, err
	}
	g := Geneve{OAM: h.OAM(), ProtocolType: h.ProtocolType(), VNI: h.VNI()}
	for o := h.Options(); len(o) > 0; {
		n := optHeaderLen + int(o[3]&optLenMask)*4
		g.Options = append(g.Options, Option{
			Class: binary.BigEndian.Uint16(o),
			Type:  o[2],
			Data:  o[optHeaderLen:n:n],
		})
		o = o[n:]
	}
	return g, h.Payload(), nil
}

// NextHop returns the address in the next-hop option, or the zero Addr.
func (g *Geneve) NextHop() netip.Addr {
	for i := range g.Options {
		if o := &g.Options[i]; o.isNextHop() {
			a, _ := netip.AddrFromSlice(o.Data)
			return a
		}
	}
	return netip.Addr{}
}

// Len is the encoded header length, options included.
func (g *Geneve) Len() int {
	n := HeaderMinLen
	for i := range g.Options {
		n += g.Options[i].encodedLen()
	}
	return n
}

// Encode writes the header into b[:g.Len()]. The C bit is set when an option
// is critical (RFC 8926 §3.4); reserved bits are zero. The options must fit
// the format: each Data a multiple of 4 bytes up to MaxOptionDataLen, all of
// them together up to MaxOptLen, and VNI at most MaxVNI.
func (g *Geneve) Encode(b []byte) {
	h := Header(b[:g.Len()])
	critical := false
	off := HeaderMinLen
	for i := range g.Options {
		o := &g.Options[i]
		critical = critical || o.Critical()
		encodeOptionHeader(h[off:], o.Class, o.Type, len(o.Data))
		off += optHeaderLen + copy(h[off+optHeaderLen:], o.Data)
	}
	h.setOptLen(off - HeaderMinLen)
	h.setFlags(g.OAM, critical)
	h.setProtocol(g.ProtocolType)
	h.setVNI(g.VNI & MaxVNI)
}

// Marshal returns a new packet of the header followed by payload.
func (g *Geneve) Marshal(payload []byte) []byte {
	n := g.Len()
	b := make([]byte, n+len(payload))
	g.Encode(b)
	copy(b[n:], payload)
	return b
}

// EncapLen is the length of the header that AppendPacket writes for a next
// hop of nextHop's family: 8 fixed bytes, 4 of option header, 4 or 16 of
// address.
func EncapLen(nextHop netip.Addr) int {
	return HeaderMinLen + optHeaderLen + nextHop.BitLen()/8
}

// AppendPacket appends to dst a GENEVE packet that carries the IP packet ip
// on network vni to nextHop, and returns the extended buffer. The protocol
// type follows the IP version in ip's first byte. No allocation when dst
// has room.
func AppendPacket(dst []byte, vni uint32, nextHop netip.Addr, ip []byte) ([]byte, error) {
	dst, err := AppendHeader(dst, vni, nextHop, ip)
	if err != nil {
		return dst, err
	}
	return append(dst, ip...), nil
}

// AppendHeader appends to dst the GENEVE header (EncapLen(nextHop) bytes)
// of the packet AppendPacket would make, without ip itself: the sender's
// fast path, which sends the header and the IP packet as two parts of one
// datagram (Datagram). No allocation when dst has room.
func AppendHeader(dst []byte, vni uint32, nextHop netip.Addr, ip []byte) ([]byte, error) {
	if err := checkEncap(vni, nextHop, ip); err != nil {
		return dst, err
	}
	proto := uint16(ProtoIPv4)
	if ip[0]>>4 == 6 {
		proto = ProtoIPv6
	}
	hl := EncapLen(nextHop)
	off := len(dst)
	dst = append(dst, make([]byte, hl)...) // does not allocate when dst has room
	h := Header(dst[off:])
	h[verOptLen] = 0
	h.setOptLen(hl - HeaderMinLen)
	h.setFlags(false, false)
	h.setProtocol(proto)
	h.setVNI(vni)
	encodeOptionHeader(h[HeaderMinLen:], OptionClassLabnet, OptionTypeNextHop, hl-HeaderMinLen-optHeaderLen)
	if nextHop.Is4() {
		a := nextHop.As4()
		copy(h[HeaderMinLen+optHeaderLen:], a[:])
	} else {
		a := nextHop.As16()
		copy(h[HeaderMinLen+optHeaderLen:], a[:])
	}
	return dst, nil
}

// checkEncap reports why ip cannot go in GENEVE on network vni to nextHop.
func checkEncap(vni uint32, nextHop netip.Addr, ip []byte) error {
	if vni > MaxVNI {
		return fmt.Errorf("overlay: VNI %d does not fit in 24 bits", vni)
	}
	if !nextHop.IsValid() || nextHop.Zone() != "" {
		return fmt.Errorf("overlay: next hop %v is not an address", nextHop)
	}
	if len(ip) == 0 || ip[0]>>4 != 4 && ip[0]>>4 != 6 {
		return fmt.Errorf("overlay: payload is not an IPv4 or IPv6 packet")
	}
	return nil
}
