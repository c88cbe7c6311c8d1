package wire

import (
	"encoding/binary"
	"net/netip"
)

// TCP header layout, RFC 9293 §3.1.
const (
	TCPMinHeaderLen = 20
	TCPMaxHeaderLen = 60

	TCPFlagFIN = 0x01
	TCPFlagSYN = 0x02
	TCPFlagRST = 0x04
	TCPFlagPSH = 0x08
	TCPFlagACK = 0x10
	TCPFlagURG = 0x20
	TCPFlagECE = 0x40
	TCPFlagCWR = 0x80
)

// TCP option kinds (IANA "TCP Parameters").
const (
	TCPOptEnd           = 0
	TCPOptNOP           = 1
	TCPOptMSS           = 2 // RFC 9293 §3.2
	TCPOptWindowScale   = 3 // RFC 7323 §2
	TCPOptSACKPermitted = 4 // RFC 2018 §2
	TCPOptSACK          = 5 // RFC 2018 §3
	TCPOptTimestamps    = 8 // RFC 7323 §3
)

// TCP is a view over a TCP segment. Call Check before any accessor.
type TCP []byte

// Check validates the data offset against the buffer.
func (b TCP) Check() error {
	if len(b) < TCPMinHeaderLen {
		return ErrTruncated
	}
	off := int(b[12]>>4) * 4
	if off < TCPMinHeaderLen || off > len(b) {
		return ErrHeaderLen
	}
	return nil
}

func (b TCP) SrcPort() uint16       { return binary.BigEndian.Uint16(b[0:]) }
func (b TCP) DstPort() uint16       { return binary.BigEndian.Uint16(b[2:]) }
func (b TCP) Seq() uint32           { return binary.BigEndian.Uint32(b[4:]) }
func (b TCP) Ack() uint32           { return binary.BigEndian.Uint32(b[8:]) }
func (b TCP) DataOffset() int       { return int(b[12]>>4) * 4 }
func (b TCP) Flags() uint8          { return b[13] }
func (b TCP) Window() uint16        { return binary.BigEndian.Uint16(b[14:]) }
func (b TCP) Checksum() uint16      { return binary.BigEndian.Uint16(b[16:]) }
func (b TCP) UrgentPointer() uint16 { return binary.BigEndian.Uint16(b[18:]) }
func (b TCP) Options() []byte       { return b[TCPMinHeaderLen:b.DataOffset()] }
func (b TCP) Payload() []byte       { return b[b.DataOffset():] }

// ChecksumValid verifies the checksum over the pseudo-header (RFC 9293
// §3.1).
func (b TCP) ChecksumValid(src, dst netip.Addr) bool {
	return Fold(Sum(b, PseudoHeaderSum(ProtoTCP, src, dst, len(b)))) == 0
}

// SetChecksum computes and stores the checksum.
func (b TCP) SetChecksum(src, dst netip.Addr) {
	b[16], b[17] = 0, 0
	binary.BigEndian.PutUint16(b[16:], Fold(Sum(b, PseudoHeaderSum(ProtoTCP, src, dst, len(b)))))
}

// SACKBlock is one SACK block: [Left, Right) in sequence space (RFC 2018 §3).
type SACKBlock struct{ Left, Right uint32 }

// TCPOptions are the options this stack understands. Zero values mean
// absent; the *OK flags say whether an option with a legal zero was present.
type TCPOptions struct {
	MSS           uint16
	WindowScale   uint8
	WindowScaleOK bool
	SACKPermitted bool
	SACK          []SACKBlock
	TSVal, TSEcr  uint32
	TimestampsOK  bool
}

// ParseTCPOptions reads the options of a segment. Unknown options are
// skipped by their length; a malformed option list ends the parse and
// reports false (RFC 9293 §3.1: options must be well formed, and a receiver
// must not crash on bad ones; what was parsed before it is kept).
func ParseTCPOptions(b []byte, o *TCPOptions) bool {
	for len(b) > 0 {
		kind := b[0]
		switch kind {
		case TCPOptEnd:
			return true
		case TCPOptNOP:
			b = b[1:]
			continue
		}
		if len(b) < 2 || int(b[1]) < 2 || int(b[1]) > len(b) {
			return false
		}
		n := int(b[1])
		body := b[2:n]
		switch kind {
		case TCPOptMSS:
			if n == 4 {
				o.MSS = binary.BigEndian.Uint16(body)
			}
		case TCPOptWindowScale:
			if n == 3 {
				o.WindowScale, o.WindowScaleOK = body[0], true
			}
		case TCPOptSACKPermitted:
			if n == 2 {
				o.SACKPermitted = true
			}
		case TCPOptSACK:
			if (n-2)%8 == 0 {
				o.SACK = o.SACK[:0]
				for i := 0; i+8 <= len(body); i += 8 {
					o.SACK = append(o.SACK, SACKBlock{binary.BigEndian.Uint32(body[i:]), binary.BigEndian.Uint32(body[i+4:])})
				}
			}
		case TCPOptTimestamps:
			if n == 10 {
				o.TSVal, o.TSEcr, o.TimestampsOK = binary.BigEndian.Uint32(body), binary.BigEndian.Uint32(body[4:]), true
			}
		}
		b = b[n:]
	}
	return true
}

// TCPHeader is the parsed form of a TCP header with its options.
type TCPHeader struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	Window           uint16
	Checksum         uint16 // as parsed; Encode computes it
	Urgent           uint16
	Options          TCPOptions
}

// ParseTCP checks b and returns its header and payload (aliasing b).
func ParseTCP(b []byte) (TCPHeader, []byte, error) {
	v := TCP(b)
	if err := v.Check(); err != nil {
		return TCPHeader{}, nil, err
	}
	h := TCPHeader{
		SrcPort: v.SrcPort(), DstPort: v.DstPort(), Seq: v.Seq(), Ack: v.Ack(),
		Flags: v.Flags(), Window: v.Window(), Checksum: v.Checksum(), Urgent: v.UrgentPointer(),
	}
	ParseTCPOptions(v.Options(), &h.Options)
	return h, v.Payload(), nil
}

// OptionsLen is the encoded length of the options as Encode lays them out
// (always a multiple of 4).
func (o *TCPOptions) OptionsLen() int {
	n := 0
	if o.MSS != 0 {
		n += 4
	}
	switch {
	case o.SACKPermitted && o.TimestampsOK:
		n += 12
	case o.SACKPermitted:
		n += 4
	case o.TimestampsOK:
		n += 12
	}
	if o.WindowScaleOK {
		n += 4
	}
	if len(o.SACK) > 0 {
		n += 4 + 8*len(o.SACK)
	}
	return n
}

// HeaderLen is the encoded header length.
func (h *TCPHeader) HeaderLen() int { return TCPMinHeaderLen + h.Options.OptionsLen() }

// Encode writes the header into b[:h.HeaderLen()] with a zero checksum; the
// caller writes the payload after it and calls TCP.SetChecksum. Options are
// laid out as Linux does (NOP-padded, timestamps 4-byte aligned).
func (h *TCPHeader) Encode(b []byte) {
	hl := h.HeaderLen()
	binary.BigEndian.PutUint16(b[0:], h.SrcPort)
	binary.BigEndian.PutUint16(b[2:], h.DstPort)
	binary.BigEndian.PutUint32(b[4:], h.Seq)
	binary.BigEndian.PutUint32(b[8:], h.Ack)
	b[12] = uint8(hl/4) << 4
	b[13] = h.Flags
	binary.BigEndian.PutUint16(b[14:], h.Window)
	b[16], b[17] = 0, 0
	binary.BigEndian.PutUint16(b[18:], h.Urgent)
	o := &h.Options
	p := b[TCPMinHeaderLen:hl]
	i := 0
	if o.MSS != 0 {
		p[i], p[i+1] = TCPOptMSS, 4
		binary.BigEndian.PutUint16(p[i+2:], o.MSS)
		i += 4
	}
	if o.SACKPermitted && o.TimestampsOK {
		p[i], p[i+1] = TCPOptSACKPermitted, 2
		i += 2
	} else if o.SACKPermitted {
		p[i], p[i+1], p[i+2], p[i+3] = TCPOptNOP, TCPOptNOP, TCPOptSACKPermitted, 2
		i += 4
	}
	if o.TimestampsOK {
		if !o.SACKPermitted {
			p[i], p[i+1] = TCPOptNOP, TCPOptNOP
			i += 2
		}
		p[i], p[i+1] = TCPOptTimestamps, 10
		binary.BigEndian.PutUint32(p[i+2:], o.TSVal)
		binary.BigEndian.PutUint32(p[i+6:], o.TSEcr)
		i += 10
	}
	if o.WindowScaleOK {
		p[i], p[i+1], p[i+2], p[i+3] = TCPOptNOP, TCPOptWindowScale, 3, o.WindowScale
		i += 4
	}
	if len(o.SACK) > 0 {
		p[i], p[i+1], p[i+2], p[i+3] = TCPOptNOP, TCPOptNOP, TCPOptSACK, uint8(2+8*len(o.SACK))
		i += 4
		for _, s := range o.SACK {
			binary.BigEndian.PutUint32(p[i:], s.Left)
			binary.BigEndian.PutUint32(p[i+4:], s.Right)
			i += 8
		}
	}
	for ; i < len(p); i++ {
		p[i] = TCPOptEnd
	}
}
