package capture

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/labnet-dev/labnet/stack/wire"
)

// Dir is the direction a packet crossed its interface.
type Dir uint8

// Directions, as pcapng's epb_flags numbers them (RFC draft
// "PCAP Now Generic", section 4.3.1: 1 inbound, 2 outbound).
const (
	DirUnknown Dir = 0
	In         Dir = 1
	Out        Dir = 2
)

func (d Dir) String() string {
	switch d {
	case In:
		return "in"
	case Out:
		return "out"
	}
	return "?"
}

// Packet is one observation of a packet at an interface.
type Packet struct {
	Time time.Time
	// Seq orders packets of one labd with equal times (stack.TapRecord);
	// 0 when unknown (read from a file).
	Seq   uint64
	Iface string // "host:iface"
	Dir   Dir
	// Data is the IP packet (possibly cut to the snap length); OrigLen its
	// length on the wire.
	Data    []byte
	OrigLen int
	// Drop is why the packet went no further here ("" when it did):
	// "impairment loss", "TTL exceeded", "receive queue full" ...
	Drop string
	// Note is what the link did to it besides: "corrupted", "delayed 5ms".
	Note string
}

// Host is the host part of Iface.
func (p *Packet) Host() string {
	h, _, _ := strings.Cut(p.Iface, ":")
	return h
}

// Comment is the pcapng comment carrying Drop and Note; ParseComment is its
// inverse.
func (p *Packet) Comment() string {
	var parts []string
	if p.Drop != "" {
		parts = append(parts, "dropped: "+p.Drop)
	}
	if p.Note != "" {
		parts = append(parts, p.Note)
	}
	return strings.Join(parts, "; ")
}

// ParseComment sets Drop and Note from a comment Comment wrote.
func (p *Packet) ParseComment(c string) {
	for part := range strings.SplitSeq(c, "; ") {
		if r, ok := strings.CutPrefix(part, "dropped: "); ok && p.Drop == "" {
			p.Drop = r
		} else if part != "" {
			if p.Note != "" {
				p.Note += "; "
			}
			p.Note += part
		}
	}
}

// Filter selects packets, as a small subset of a BPF expression would. The
// zero Filter selects everything.
type Filter struct {
	Proto string     // "tcp", "udp", "icmp" (ICMP and ICMPv6) or ""
	Port  uint16     // either port; 0 for any
	Host  netip.Addr // either address; invalid for any
}

// ParseProto checks a --proto value.
func ParseProto(s string) (string, error) {
	switch s = strings.ToLower(s); s {
	case "", "tcp", "udp", "icmp":
		return s, nil
	}
	return "", fmt.Errorf("protocol %q: want tcp, udp or icmp", s)
}

// All reports whether the filter selects every packet.
func (f *Filter) All() bool { return f.Proto == "" && f.Port == 0 && !f.Host.IsValid() }

// Match reports whether the IP packet pkt passes the filter. Malformed
// packets pass only the zero filter.
func (f *Filter) Match(pkt []byte) bool {
	if f.All() {
		return true
	}
	d, ok := dissectHeaders(pkt, false)
	if !ok {
		return false
	}
	if f.Host.IsValid() && d.src != f.Host && d.dst != f.Host {
		return false
	}
	switch f.Proto {
	case "tcp":
		if d.proto != wire.ProtoTCP {
			return false
		}
	case "udp":
		if d.proto != wire.ProtoUDP {
			return false
		}
	case "icmp":
		if d.proto != wire.ProtoICMPv4 && d.proto != wire.ProtoICMPv6 {
			return false
		}
	}
	if f.Port != 0 {
		if !d.hasPorts || d.sport != f.Port && d.dport != f.Port {
			return false
		}
	}
	return true
}

// dissected is what the decoders need of an IP packet.
type dissected struct {
	v6        bool
	src, dst  netip.Addr
	proto     uint8
	ttl       uint8
	ipID      uint16
	ipOK      bool // header checksum (IPv4) verifies
	l4        []byte
	truncated bool // l4 shorter than the IP header says

	hasPorts     bool
	sport, dport uint16
	l4OK         bool // transport checksum verifies (false when truncated)

	// TCP
	tcp     bool
	seq     uint32
	ack     uint32
	flags   uint8
	win     uint16
	opts    wire.TCPOptions
	dataLen int
	// ICMP
	icmpType, icmpCode uint8
	icmpID, icmpSeq    uint16
}

// dissect reads pkt's IP and transport headers; ok is false when the IP
// header itself cannot be read.
func dissect(pkt []byte) (d dissected, ok bool) { return dissectHeaders(pkt, true) }

// dissectHeaders is dissect; without full it skips what a filter does not
// need (TCP options, checksums), as filters run on every packet.
func dissectHeaders(pkt []byte, full bool) (d dissected, ok bool) {
	if len(pkt) == 0 {
		return d, false
	}
	var total int
	switch pkt[0] >> 4 {
	case wire.IPv4Version:
		ip := wire.IPv4(pkt)
		if ip.Check() != nil && len(pkt) < wire.IPv4MinHeaderLen {
			return d, false
		}
		hl := int(pkt[0]&0x0f) * 4
		if hl < wire.IPv4MinHeaderLen || hl > len(pkt) {
			return d, false
		}
		d.src, d.dst = ip.Src(), ip.Dst()
		d.proto, d.ttl, d.ipID = ip.Protocol(), ip.TTL(), ip.ID()
		d.ipOK = !full || ip.ChecksumValid()
		total = ip.TotalLength()
		d.l4 = pkt[hl:]
		total -= hl
	case wire.IPv6Version:
		if len(pkt) < wire.IPv6HeaderLen {
			return d, false
		}
		ip := wire.IPv6(pkt)
		d.v6 = true
		d.src, d.dst = ip.Src(), ip.Dst()
		d.proto, d.ttl = ip.NextHeader(), ip.HopLimit()
		d.ipOK = true
		total = ip.PayloadLength()
		d.l4 = pkt[wire.IPv6HeaderLen:]
	default:
		return d, false
	}
	if total >= 0 && total <= len(d.l4) {
		d.l4 = d.l4[:total]
	} else {
		d.truncated = true
	}
	switch d.proto {
	case wire.ProtoTCP:
		t := wire.TCP(d.l4)
		if t.Check() != nil {
			break
		}
		d.tcp, d.hasPorts = true, true
		d.sport, d.dport = t.SrcPort(), t.DstPort()
		d.seq, d.ack, d.flags, d.win = t.Seq(), t.Ack(), t.Flags(), t.Window()
		if full {
			wire.ParseTCPOptions(t.Options(), &d.opts)
		}
		d.dataLen = len(t.Payload())
		if d.truncated {
			d.dataLen = total - t.DataOffset()
		}
		d.l4OK = full && !d.truncated && t.ChecksumValid(d.src, d.dst)
	case wire.ProtoUDP:
		u := wire.UDP(d.l4)
		if u.Check() != nil {
			break
		}
		d.hasPorts = true
		d.sport, d.dport = u.SrcPort(), u.DstPort()
		d.dataLen = u.Length() - wire.UDPHeaderLen
		d.l4OK = full && !d.truncated && u.ChecksumValid(d.src, d.dst)
	case wire.ProtoICMPv4, wire.ProtoICMPv6:
		m := wire.ICMP(d.l4)
		if m.Check() != nil {
			break
		}
		d.icmpType, d.icmpCode = m.Type(), m.Code()
		d.icmpID, d.icmpSeq = m.Ident(), m.Seq()
		d.dataLen = len(m.Body())
		switch {
		case !full:
		case d.v6:
			d.l4OK = !d.truncated && m.ChecksumValidV6(d.src, d.dst)
		default:
			d.l4OK = !d.truncated && m.ChecksumValidV4()
		}
	}
	return d, true
}

// endpoint formats an address and port as tcpdump does (10.0.0.1.80) or,
// with colon, as people write them (10.0.0.1:80, [fd00::1]:80).
func endpoint(a netip.Addr, port uint16, colon bool) string {
	if !colon {
		return a.String() + "." + strconv.Itoa(int(port))
	}
	return netip.AddrPortFrom(a, port).String()
}
