package stack

import (
	"errors"
	"net/netip"

	"github.com/labnet-dev/labnet/stack/wire"
)

// Quoting limits for ICMP errors: RFC 1812 §4.3.2.3 (the whole ICMPv4 error
// datagram no longer than 576 bytes) and RFC 4443 §2.4(c) (ICMPv6: no longer
// than the IPv6 minimum MTU).
const (
	icmp4MaxError = 576
	icmp6MaxError = wire.IPv6MinMTU
)

// icmp4IsError reports ICMPv4 error types (RFC 792), about which no error is
// ever sent (RFC 1122 §3.2.2).
func icmp4IsError(typ uint8) bool {
	switch typ {
	case wire.ICMPv4DestUnreach, wire.ICMPv4Redirect, wire.ICMPv4TimeExceeded, wire.ICMPv4ParamProblem, 4 /* source quench */ :
		return true
	}
	return false
}

// icmp4Input handles an ICMPv4 message for this host (RFC 792).
func (s *Stack) icmp4Input(nic *NIC, ip wire.IPv4) Drop {
	m := wire.ICMP(ip.Payload())
	if m.Check() != nil || !m.ChecksumValidV4() {
		return s.drop(DropMalformed)
	}
	s.stats.delivered.Add(1)
	switch m.Type() {
	case wire.ICMPv4Echo:
		// RFC 792 Echo: reverse the addresses, type 0, data unchanged
		// (RFC 1122 §3.2.2.6: the reply's source is the request's
		// destination).
		if m.Code() != 0 {
			return DropNone
		}
		src, dst := ip.Dst(), ip.Src()
		r, _, err := s.route(dst)
		if err != nil {
			return DropNone
		}
		pkt := s.buildIP(src, dst, wire.ProtoICMPv4, 0, len(m))
		reply := wire.ICMPMessage{Type: wire.ICMPv4EchoReply, Rest: m.Rest(), Body: m.Body()}
		reply.EncodeV4(pkt[wire.IPv4MinHeaderLen:])
		s.sendReply(r, dst, pkt)
	case wire.ICMPv4EchoReply:
		s.echoEvent(false, m.Ident(), EchoEvent{
			Reply: true, From: ip.Src(), Seq: m.Seq(), TTL: ip.TTL(), Len: len(m),
			Type: m.Type(), Code: m.Code(), At: s.clock.Now(),
		})
	case wire.ICMPv4DestUnreach, wire.ICMPv4TimeExceeded, wire.ICMPv4ParamProblem:
		s.icmp4Error(ip, m)
	}
	return DropNone
}

// icmp4Error passes an ICMP error to the endpoint whose packet it quotes
// (RFC 1122 §3.2.2: the quoted IP header and first 8 data bytes identify it).
func (s *Stack) icmp4Error(ip wire.IPv4, m wire.ICMP) {
	q := m.Body()
	if len(q) < wire.IPv4MinHeaderLen || q[0]>>4 != wire.IPv4Version {
		return
	}
	hl := int(q[0]&0x0f) * 4
	if hl < wire.IPv4MinHeaderLen || len(q) < hl+wire.ICMPHeaderLen {
		return
	}
	if q[9] != wire.ProtoICMPv4 {
		if t := s.transport(q[9]); t != nil {
			t.HandleError(ICMPError{
				From: ip.Src(), Type: m.Type(), Code: m.Code(), MTU: m.MTU(false),
				Src: wire.IPv4(q).Src(), Dst: wire.IPv4(q).Dst(), Quoted: q[hl:],
			})
		}
		return
	}
	inner := wire.ICMP(q[hl:])
	if inner.Type() != wire.ICMPv4Echo {
		return
	}
	s.echoEvent(false, inner.Ident(), EchoEvent{
		From: ip.Src(), Seq: inner.Seq(), TTL: ip.TTL(), Len: len(m),
		Type: m.Type(), Code: m.Code(), MTU: m.MTU(false), At: s.clock.Now(),
	})
}

// sendICMPv4Error sends an ICMP error about orig, received on in, to its
// source, obeying RFC 1122 §3.2.2 and RFC 1812 §4.3.2.7 (never about an ICMP
// error, a non-initial fragment, or a packet with a non-unicast address) and
// the rate limit.
func (s *Stack) sendICMPv4Error(in *NIC, orig wire.IPv4, typ, code uint8, rest uint32) {
	if orig.FragmentOffset() != 0 {
		return
	}
	dst := orig.Src()
	if martian(dst) || orig.Dst().IsMulticast() || orig.Dst() == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return
	}
	if orig.Protocol() == wire.ProtoICMPv4 {
		p := orig.Payload()
		if len(p) == 0 || icmp4IsError(p[0]) {
			return
		}
	}
	if !s.errLimit.allow(s.clock.Now()) {
		s.stats.icmpRateLimited.Add(1)
		return
	}
	r, src, err := s.route(dst)
	if err != nil {
		return
	}
	// RFC 1812 §4.3.2.4 lets a router use the address of the interface the
	// packet came in on; traceroute then shows the side facing the prober,
	// as Linux routers do.
	if in != nil {
		if a, ok := in.addrOf(true); ok {
			src = a
		}
	}
	quote := orig[:min(len(orig), icmp4MaxError-wire.IPv4MinHeaderLen-wire.ICMPHeaderLen)]
	msg := wire.ICMPMessage{Type: typ, Code: code, Rest: rest, Body: quote}
	pkt := s.buildIP(src, dst, wire.ProtoICMPv4, 0, msg.Len())
	msg.EncodeV4(pkt[wire.IPv4MinHeaderLen:])
	if s.output(r, dst, pkt) == nil {
		s.stats.icmpSent.Add(1)
	}
}

// icmp6Input handles an ICMPv6 message for this host (RFC 4443).
func (s *Stack) icmp6Input(nic *NIC, ip wire.IPv6) Drop {
	m := wire.ICMP(ip.Payload())
	if m.Check() != nil || !m.ChecksumValidV6(ip.Src(), ip.Dst()) {
		return s.drop(DropMalformed)
	}
	s.stats.delivered.Add(1)
	switch m.Type() {
	case wire.ICMPv6EchoRequest:
		// RFC 4443 §4.2: the reply carries the request's identifier,
		// sequence and data; its source is the request's (unicast)
		// destination.
		if m.Code() != 0 {
			return DropNone
		}
		src, dst := ip.Dst(), ip.Src()
		r, _, err := s.route(dst)
		if err != nil {
			return DropNone
		}
		pkt := s.buildIP(src, dst, wire.ProtoICMPv6, 0, len(m))
		reply := wire.ICMPMessage{Type: wire.ICMPv6EchoReply, Rest: m.Rest(), Body: m.Body()}
		reply.EncodeV6(pkt[wire.IPv6HeaderLen:], src, dst)
		s.sendReply(r, dst, pkt)
	case wire.ICMPv6EchoReply:
		s.echoEvent(true, m.Ident(), EchoEvent{
			Reply: true, From: ip.Src(), Seq: m.Seq(), TTL: ip.HopLimit(), Len: len(m),
			Type: m.Type(), Code: m.Code(), At: s.clock.Now(),
		})
	case wire.ICMPv6DestUnreach, wire.ICMPv6PacketTooBig, wire.ICMPv6TimeExceeded, wire.ICMPv6ParamProblem:
		s.icmp6Error(ip, m)
	}
	return DropNone
}

func (s *Stack) icmp6Error(ip wire.IPv6, m wire.ICMP) {
	q := m.Body()
	if len(q) < wire.IPv6HeaderLen+wire.ICMPHeaderLen || q[0]>>4 != wire.IPv6Version {
		return
	}
	if q[6] != wire.ProtoICMPv6 {
		if t := s.transport(q[6]); t != nil {
			t.HandleError(ICMPError{
				From: ip.Src(), Type: m.Type(), Code: m.Code(), MTU: m.MTU(true),
				Src: wire.IPv6(q).Src(), Dst: wire.IPv6(q).Dst(), Quoted: q[wire.IPv6HeaderLen:],
			})
		}
		return
	}
	inner := wire.ICMP(q[wire.IPv6HeaderLen:])
	if inner.Type() != wire.ICMPv6EchoRequest {
		return
	}
	s.echoEvent(true, inner.Ident(), EchoEvent{
		From: ip.Src(), Seq: inner.Seq(), TTL: ip.HopLimit(), Len: len(m),
		Type: m.Type(), Code: m.Code(), MTU: m.MTU(true), At: s.clock.Now(),
	})
}

// sendICMPv6Error sends an ICMPv6 error about orig to its source, obeying
// RFC 4443 §2.4(e) (never about an ICMPv6 error, a packet to a multicast
// address, or from a non-unicast source) and §2.4(f) (rate limit).
func (s *Stack) sendICMPv6Error(in *NIC, orig wire.IPv6, typ, code uint8, rest uint32) {
	dst := orig.Src()
	if martian(dst) || orig.Dst().IsMulticast() {
		return
	}
	if orig.NextHeader() == wire.ProtoICMPv6 {
		p := orig.Payload()
		if len(p) == 0 || p[0] < 128 { // RFC 4443 §2.1: types 0-127 are errors
			return
		}
	}
	if !s.errLimit.allow(s.clock.Now()) {
		s.stats.icmpRateLimited.Add(1)
		return
	}
	r, src, err := s.route(dst)
	if err != nil {
		return
	}
	// RFC 4443 §2.2(a): an error about a packet sent to one of our unicast
	// addresses MUST come from that address. Otherwise §2.2(b) lets a
	// router pick the more informative address of the incoming interface.
	if s.isLocal(orig.Dst()) {
		src = orig.Dst()
	} else if in != nil {
		if a, ok := in.addrOf(false); ok {
			src = a
		}
	}
	quote := orig[:min(len(orig), icmp6MaxError-wire.IPv6HeaderLen-wire.ICMPHeaderLen)]
	msg := wire.ICMPMessage{Type: typ, Code: code, Rest: rest, Body: quote}
	pkt := s.buildIP(src, dst, wire.ProtoICMPv6, 0, msg.Len())
	msg.EncodeV6(pkt[wire.IPv6HeaderLen:], src, dst)
	if s.output(r, dst, pkt) == nil {
		s.stats.icmpSent.Add(1)
	}
}

// sendReply sends an echo reply. A reply that cannot go is lost as one
// lost on the wire would be (the pinger's timeout tells) but counted: by
// the interface that refused it (TxDropped), or here when it is larger
// than the MTU of the way back (the request came over a larger one).
func (s *Stack) sendReply(r *Route, dst netip.Addr, pkt []byte) {
	if err := s.output(r, dst, pkt); errors.Is(err, ErrMessageTooLong) {
		s.drop(DropTooBig)
	}
}
