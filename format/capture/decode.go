package capture

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/labnet-dev/labnet/stack/wire"
)

// Decoder writes one line per packet, as tcpdump does, with TCP sequence
// and acknowledgement numbers relative to each direction's first sequence
// number (the ISN when the SYN was seen), as Wireshark shows them.
type Decoder struct {
	// Location is the time zone of the times shown; time.Local when nil.
	Location *time.Location
	seqs     seqBases
}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder { return &Decoder{seqs: seqBases{}} }

// flowKey is one direction of a TCP connection.
type flowKey struct {
	src, dst     netip.Addr
	sport, dport uint16
}

func (k flowKey) reverse() flowKey { return flowKey{k.dst, k.src, k.dport, k.sport} }

// seqBases remembers each direction's first sequence number.
type seqBases map[flowKey]uint32

// rel returns d's sequence and acknowledgement numbers relative to the
// bases, learning bases from it.
func (b seqBases) rel(d *dissected) (seq, ack uint32) {
	k := flowKey{d.src, d.dst, d.sport, d.dport}
	base, ok := b[k]
	if !ok || d.flags&wire.TCPFlagSYN != 0 {
		// RFC 9293 §3.4: the SYN carries the ISN; a capture that starts
		// mid-connection takes the first number it sees.
		base = d.seq
		b[k] = base
	}
	rk := k.reverse()
	rbase, ok := b[rk]
	if !ok && d.flags&wire.TCPFlagACK != 0 {
		rbase = d.ack - 1
		if d.flags&wire.TCPFlagSYN == 0 {
			rbase = d.ack
		}
		b[rk] = rbase
	}
	return d.seq - base, d.ack - rbase
}

// Line decodes p into one line (no newline):
//
//	12:00:00.000123 h1:eth0 out IP 10.0.1.10.49152 > 10.0.2.10.80: Flags [S], seq 0, win 65535, options [mss 1360,sackOK,wscale 7], length 0
//
// with what happened to the packet at the end: "DROPPED (impairment
// loss)", "(corrupted)", "[bad tcp cksum]".
func (dc *Decoder) Line(p *Packet) string {
	var b strings.Builder
	loc := dc.Location
	if loc == nil {
		loc = time.Local
	}
	fmt.Fprintf(&b, "%s %s %-3s ", p.Time.In(loc).Format("15:04:05.000000"), p.Iface, p.Dir)
	d, ok := dissect(p.Data)
	if !ok {
		fmt.Fprintf(&b, "malformed packet, length %d", max(p.OrigLen, len(p.Data)))
	} else {
		dc.describe(&b, &d)
	}
	if p.Drop != "" {
		fmt.Fprintf(&b, " -- DROPPED (%s)", p.Drop)
	}
	if p.Note != "" {
		fmt.Fprintf(&b, " (%s)", p.Note)
	}
	return b.String()
}

func (dc *Decoder) describe(b *strings.Builder, d *dissected) {
	ipv := "IP"
	if d.v6 {
		ipv = "IP6"
	}
	b.WriteString(ipv + " ")
	if !d.ipOK {
		defer b.WriteString(" [bad ip cksum]")
	}
	switch {
	case d.tcp:
		fmt.Fprintf(b, "%s > %s: Flags [%s]", endpoint(d.src, d.sport, false), endpoint(d.dst, d.dport, false), tcpFlags(d.flags))
		seq, ack := dc.seqs.rel(d)
		span := uint32(d.dataLen)
		if span > 0 {
			fmt.Fprintf(b, ", seq %d:%d", seq, seq+span)
		} else {
			fmt.Fprintf(b, ", seq %d", seq)
		}
		if d.flags&wire.TCPFlagACK != 0 {
			fmt.Fprintf(b, ", ack %d", ack)
		}
		fmt.Fprintf(b, ", win %d", d.win)
		if o := tcpOptions(&d.opts, dc.seqs, d); o != "" {
			fmt.Fprintf(b, ", options [%s]", o)
		}
		fmt.Fprintf(b, ", length %d", d.dataLen)
		if !d.l4OK {
			b.WriteString(" [bad tcp cksum]")
		}
	case d.proto == wire.ProtoUDP && d.hasPorts:
		fmt.Fprintf(b, "%s > %s: UDP, length %d", endpoint(d.src, d.sport, false), endpoint(d.dst, d.dport, false), d.dataLen)
		if !d.l4OK {
			b.WriteString(" [bad udp cksum]")
		}
	case d.proto == wire.ProtoICMPv4 || d.proto == wire.ProtoICMPv6:
		fmt.Fprintf(b, "%s > %s: %s, length %d", d.src, d.dst, icmpText(d), len(d.l4))
		if !d.l4OK && len(d.l4) >= wire.ICMPHeaderLen {
			b.WriteString(" [bad icmp cksum]")
		}
	default:
		fmt.Fprintf(b, "%s > %s: ip-proto-%d, length %d", d.src, d.dst, d.proto, len(d.l4))
	}
}

// tcpFlags is tcpdump's notation: S F R P U E W, "." for ACK.
func tcpFlags(f uint8) string {
	var s strings.Builder
	for _, x := range []struct {
		bit uint8
		c   byte
	}{{wire.TCPFlagSYN, 'S'}, {wire.TCPFlagFIN, 'F'}, {wire.TCPFlagRST, 'R'}, {wire.TCPFlagPSH, 'P'}, {wire.TCPFlagURG, 'U'}, {wire.TCPFlagECE, 'E'}, {wire.TCPFlagCWR, 'W'}, {wire.TCPFlagACK, '.'}} {
		if f&x.bit != 0 {
			s.WriteByte(x.c)
		}
	}
	if s.Len() == 0 {
		return "none"
	}
	return s.String()
}

// tcpOptions lists the options tcpdump would, SACK blocks relative to the
// sender's peer's base.
func tcpOptions(o *wire.TCPOptions, bases seqBases, d *dissected) string {
	var parts []string
	if o.MSS != 0 {
		parts = append(parts, fmt.Sprintf("mss %d", o.MSS))
	}
	if o.SACKPermitted {
		parts = append(parts, "sackOK")
	}
	if o.TimestampsOK {
		parts = append(parts, fmt.Sprintf("TS val %d ecr %d", o.TSVal, o.TSEcr))
	}
	if o.WindowScaleOK {
		parts = append(parts, fmt.Sprintf("wscale %d", o.WindowScale))
	}
	if len(o.SACK) > 0 {
		rb := bases[flowKey{d.dst, d.src, d.dport, d.sport}]
		var bl []string
		for _, s := range o.SACK {
			bl = append(bl, fmt.Sprintf("{%d:%d}", s.Left-rb, s.Right-rb))
		}
		parts = append(parts, "sack "+strings.Join(bl, ""))
	}
	return strings.Join(parts, ",")
}

// icmpText names an ICMP or ICMPv6 message (RFC 792, RFC 4443).
func icmpText(d *dissected) string {
	if len(d.l4) < wire.ICMPHeaderLen {
		return "ICMP (truncated)"
	}
	if !d.v6 {
		switch d.icmpType {
		case wire.ICMPv4Echo:
			return fmt.Sprintf("ICMP echo request, id %d, seq %d", d.icmpID, d.icmpSeq)
		case wire.ICMPv4EchoReply:
			return fmt.Sprintf("ICMP echo reply, id %d, seq %d", d.icmpID, d.icmpSeq)
		case wire.ICMPv4TimeExceeded:
			return "ICMP time exceeded in-transit"
		case wire.ICMPv4DestUnreach:
			switch d.icmpCode {
			case wire.ICMPv4NetUnreach:
				return "ICMP net unreachable"
			case wire.ICMPv4HostUnreach:
				return "ICMP host unreachable"
			case wire.ICMPv4ProtoUnreach:
				return "ICMP protocol unreachable"
			case wire.ICMPv4PortUnreach:
				return "ICMP " + quotedPort(d) + " unreachable"
			case wire.ICMPv4FragNeeded:
				return fmt.Sprintf("ICMP unreachable - need to frag (mtu %d)", wire.ICMP(d.l4).MTU(false))
			}
			return fmt.Sprintf("ICMP unreachable, code %d", d.icmpCode)
		}
		return fmt.Sprintf("ICMP type %d, code %d", d.icmpType, d.icmpCode)
	}
	switch d.icmpType {
	case wire.ICMPv6EchoRequest:
		return fmt.Sprintf("ICMP6, echo request, id %d, seq %d", d.icmpID, d.icmpSeq)
	case wire.ICMPv6EchoReply:
		return fmt.Sprintf("ICMP6, echo reply, id %d, seq %d", d.icmpID, d.icmpSeq)
	case wire.ICMPv6TimeExceeded:
		return "ICMP6, time exceeded in-transit"
	case wire.ICMPv6PacketTooBig:
		return fmt.Sprintf("ICMP6, packet too big, mtu %d", wire.ICMP(d.l4).MTU(true))
	case wire.ICMPv6DestUnreach:
		switch d.icmpCode {
		case wire.ICMPv6NoRoute:
			return "ICMP6, destination unreachable, unreachable route"
		case wire.ICMPv6AddrUnreach:
			return "ICMP6, destination unreachable, unreachable address"
		case wire.ICMPv6PortUnreach:
			return "ICMP6, destination unreachable, unreachable " + quotedPort(d)
		}
		return fmt.Sprintf("ICMP6, destination unreachable, code %d", d.icmpCode)
	case wire.ICMPv6ParamProblem:
		return "ICMP6, parameter problem"
	}
	return fmt.Sprintf("ICMP6, type %d, code %d", d.icmpType, d.icmpCode)
}

// quotedPort names the port an ICMP port unreachable quotes: "udp port 9".
func quotedPort(d *dissected) string {
	q, ok := dissect(wire.ICMP(d.l4).Body())
	if !ok || !q.hasPorts {
		return "port"
	}
	proto := "udp"
	if q.tcp {
		proto = "tcp"
	}
	return fmt.Sprintf("%s port %d", proto, q.dport)
}
