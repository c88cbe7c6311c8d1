package stack

import (
	"net/netip"

	"github.com/labnet-dev/labnet/stack/wire"
)

// Deliver hands the stack a packet received on nic. It takes ownership of
// pkt (the stack may rewrite it in place, as forwarding does with the TTL).
// Malformed packets are dropped and counted; Deliver never panics on any
// input.
func (s *Stack) Deliver(nic *NIC, pkt []byte) {
	nic.rxPackets.Add(1)
	nic.rxBytes.Add(uint64(len(pkt)))
	if taps := nic.taps.Load(); taps != nil {
		if mask := taps.wants(pkt); mask != 0 {
			// Taps see the packet as it arrived (forwarding rewrites the
			// TTL in place) and what the stack then did with it.
			rec := TapRecord{Time: s.clock.Now(), Seq: tapSeq.Add(1), Dir: TapIn, Packet: append([]byte(nil), pkt...)}
			rec.Drop = s.input(nic, pkt)
			taps.emit(rec, mask)
			return
		}
	}
	s.input(nic, pkt)
}

// input processes a received packet and says whether and why it was
// dropped.
func (s *Stack) input(nic *NIC, pkt []byte) Drop {
	if len(pkt) == 0 {
		return s.drop(DropMalformed)
	}
	switch pkt[0] >> 4 {
	case wire.IPv4Version:
		return s.input4(nic, pkt)
	case wire.IPv6Version:
		return s.input6(nic, pkt)
	default:
		return s.drop(DropMalformed)
	}
}

// martian reports a source address no packet may carry (RFC 1812 §5.3.7,
// RFC 4291 §2.5.2 and §2.7).
func martian(src netip.Addr) bool {
	return src.IsUnspecified() || src.IsMulticast() || src.IsLoopback() ||
		src == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// input4 is RFC 791 §3.2 receive processing, RFC 1122 §3.2.1 checks first.
func (s *Stack) input4(nic *NIC, pkt []byte) Drop {
	ip := wire.IPv4(pkt)
	// RFC 1122 §3.2.1.1-2: silently discard a bad version or checksum.
	if ip.Check() != nil || !ip.ChecksumValid() || martian(ip.Src()) {
		return s.drop(DropMalformed)
	}
	ip = ip[:ip.TotalLength()] // drop link padding
	dst := ip.Dst()
	switch {
	case s.isLocal(dst):
		return s.deliver4(nic, ip)
	case s.forwarding:
		return s.forward4(nic, ip)
	default:
		// RFC 1122 §3.3.4.2: a host silently discards what is not its own.
		return s.drop(DropNotForUs)
	}
}

func (s *Stack) deliver4(nic *NIC, ip wire.IPv4) Drop {
	if ip.IsFragment() {
		// RFC 791 reassembly is not implemented: our own senders never
		// fragment, they answer with fragmentation-needed instead.
		return s.drop(DropFragment)
	}
	switch ip.Protocol() {
	case wire.ProtoICMPv4:
		return s.icmp4Input(nic, ip)
	default:
		if t := s.transport(ip.Protocol()); t != nil {
			s.stats.delivered.Add(1)
			if !t.HandlePacket(PacketInfo{NIC: nic, Src: ip.Src(), Dst: ip.Dst(), TTL: ip.TTL()}, ip.Payload()) {
				s.sendICMPv4Error(nic, ip, wire.ICMPv4DestUnreach, wire.ICMPv4PortUnreach, 0)
				return DropPortUnreachable
			}
			return DropNone
		}
		// RFC 1122 §3.2.2.1: SHOULD send protocol unreachable.
		s.sendICMPv4Error(nic, ip, wire.ICMPv4DestUnreach, wire.ICMPv4ProtoUnreach, 0)
		return s.drop(DropUnknownProtocol)
	}
}

// forward4 is RFC 1812 §5.2 / §5.3: TTL, route lookup, MTU, next hop.
func (s *Stack) forward4(in *NIC, ip wire.IPv4) Drop {
	dst := ip.Dst()
	if dst.IsMulticast() || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return s.drop(DropNotForUs)
	}
	// RFC 1812 §5.3.1: a router that would decrement the TTL to zero (or
	// receives it zero) discards the packet and sends time exceeded.
	ttl := ip.TTL()
	if ttl <= 1 {
		s.sendICMPv4Error(in, ip, wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded, 0)
		return s.drop(DropTTLExceeded)
	}
	r := s.routes.Load().lookup(dst)
	if r == nil {
		// RFC 1812 §5.2.7.1: network unreachable when there is no route.
		s.sendICMPv4Error(in, ip, wire.ICMPv4DestUnreach, wire.ICMPv4NetUnreach, 0)
		return s.drop(DropNoRoute)
	}
	if len(ip) > r.NIC.mtu {
		// We never fragment (DESIGN: the lab shows path MTU discovery). RFC
		// 1191 §4: fragmentation needed, with the next-hop MTU.
		s.sendICMPv4Error(in, ip, wire.ICMPv4DestUnreach, wire.ICMPv4FragNeeded, uint32(r.NIC.mtu))
		return s.drop(DropTooBig)
	}
	ip.SetTTL(ttl - 1)
	if err := r.NIC.send(r.nextHop(dst), ip); err != nil {
		// RFC 1812 §5.2.7.1: host unreachable when the next hop cannot be
		// reached on its network.
		s.sendICMPv4Error(in, ip, wire.ICMPv4DestUnreach, wire.ICMPv4HostUnreach, 0)
		return s.drop(DropHostUnreachable)
	}
	s.stats.forwarded.Add(1)
	return DropNone
}

// input6 is RFC 8200 receive processing.
func (s *Stack) input6(nic *NIC, pkt []byte) Drop {
	ip := wire.IPv6(pkt)
	if ip.Check() != nil || martian(ip.Src()) {
		return s.drop(DropMalformed)
	}
	ip = ip[:ip.TotalLength()]
	dst := ip.Dst()
	switch {
	case s.isLocal(dst):
		return s.deliver6(nic, ip)
	case s.forwarding:
		return s.forward6(nic, ip)
	default:
		return s.drop(DropNotForUs)
	}
}

func (s *Stack) deliver6(nic *NIC, ip wire.IPv6) Drop {
	switch ip.NextHeader() {
	case wire.ProtoICMPv6:
		return s.icmp6Input(nic, ip)
	case wire.ProtoIPv6Frag:
		return s.drop(DropFragment)
	case wire.ProtoIPv6NoNext:
		s.stats.delivered.Add(1)
		return DropNone
	default:
		if t := s.transport(ip.NextHeader()); t != nil {
			s.stats.delivered.Add(1)
			if !t.HandlePacket(PacketInfo{NIC: nic, Src: ip.Src(), Dst: ip.Dst(), TTL: ip.HopLimit()}, ip.Payload()) {
				s.sendICMPv6Error(nic, ip, wire.ICMPv6DestUnreach, wire.ICMPv6PortUnreach, 0)
				return DropPortUnreachable
			}
			return DropNone
		}
		// RFC 8200 §4: an unrecognised Next Header makes the node discard the
		// packet and send a parameter problem, code 1, pointing at the
		// field (offset 6 of the fixed header). Extension headers are not
		// processed: no sender in the lab emits them.
		s.sendICMPv6Error(nic, ip, wire.ICMPv6ParamProblem, wire.ICMPv6UnrecognizedNH, 6)
		return s.drop(DropUnknownProtocol)
	}
}

// forward6 is RFC 8200 §3 (hop limit) with RFC 4443's errors.
func (s *Stack) forward6(in *NIC, ip wire.IPv6) Drop {
	dst := ip.Dst()
	if dst.IsMulticast() || dst.IsLinkLocalUnicast() || ip.Src().IsLinkLocalUnicast() {
		// RFC 4291 §2.5.6: link-local packets are never forwarded.
		return s.drop(DropNotForUs)
	}
	hl := ip.HopLimit()
	if hl <= 1 {
		// RFC 8200 §3 / RFC 4443 §3.3: hop limit exceeded in transit.
		s.sendICMPv6Error(in, ip, wire.ICMPv6TimeExceeded, wire.ICMPv6HopLimitExceed, 0)
		return s.drop(DropTTLExceeded)
	}
	r := s.routes.Load().lookup(dst)
	if r == nil {
		// RFC 4443 §3.1: code 0, no route to destination.
		s.sendICMPv6Error(in, ip, wire.ICMPv6DestUnreach, wire.ICMPv6NoRoute, 0)
		return s.drop(DropNoRoute)
	}
	if len(ip) > r.NIC.mtu {
		// RFC 8200 §5: routers never fragment; RFC 4443 §3.2 packet too big.
		s.sendICMPv6Error(in, ip, wire.ICMPv6PacketTooBig, 0, uint32(r.NIC.mtu))
		return s.drop(DropTooBig)
	}
	ip.SetHopLimit(hl - 1)
	if err := r.NIC.send(r.nextHop(dst), ip); err != nil {
		// RFC 4443 §3.1: code 3, address unreachable (neighbour resolution
		// failed).
		s.sendICMPv6Error(in, ip, wire.ICMPv6DestUnreach, wire.ICMPv6AddrUnreach, 0)
		return s.drop(DropHostUnreachable)
	}
	s.stats.forwarded.Add(1)
	return DropNone
}

// route finds the outgoing route and source address for a locally sent
// packet to dst. A nil route with a nil error means dst is this host's own.
// Connections do this once (NewPath), not per packet.
func (s *Stack) route(dst netip.Addr) (*Route, netip.Addr, error) {
	r, err := s.routes.Load().route(dst)
	switch {
	case err != nil:
		return nil, netip.Addr{}, err
	case r == nil:
		return nil, dst, nil
	}
	src, ok := s.sourceFor(r.NIC, dst)
	if !ok {
		return nil, netip.Addr{}, ErrNoAddress
	}
	return r, src, nil
}

// output sends a locally built packet: pkt is a whole IP packet with its
// header already written. r is nil when dst is local, and the packet loops
// back into the stack's input as Linux's lo would carry it. Takes ownership
// of pkt.
func (s *Stack) output(r *Route, dst netip.Addr, pkt []byte) error {
	// RFC 791 §3.1, RFC 8200 §3: the length fields are 16 bits (IPv6's
	// counts the payload only; jumbograms are not supported). Neither the
	// loopback nor an MTU above 64 KiB stops a longer packet, whose length
	// field buildIP has wrapped.
	if n := len(pkt); dst.Is4() && n > wire.IPv4MaxTotalLen || !dst.Is4() && n > wire.IPv6HeaderLen+0xffff {
		return ErrMessageTooLong
	}
	if r == nil {
		s.input(s.routes.Load().owner(dst), pkt)
		return nil
	}
	if len(pkt) > r.NIC.mtu {
		return ErrMessageTooLong
	}
	return r.NIC.send(r.nextHop(dst), pkt)
}

// SendIP builds an IP packet around payload (of protocol proto) and sends it
// from src (chosen by route when invalid) to dst with the given TTL / hop
// limit (the stack default when 0). It returns the source address used. The
// payload is copied; the checksum of the transport header, if any, must
// already be in payload.
func (s *Stack) SendIP(src, dst netip.Addr, proto uint8, ttl uint8, payload []byte) (netip.Addr, error) {
	r, rsrc, err := s.route(dst)
	if err != nil {
		return netip.Addr{}, err
	}
	if !src.IsValid() {
		src = rsrc
	}
	pkt := s.buildIP(src, dst, proto, ttl, len(payload))
	copy(pkt[len(pkt)-len(payload):], payload)
	return src, s.output(r, dst, pkt)
}

// buildIP allocates a packet with room for n payload bytes after the header
// and writes the header.
func (s *Stack) buildIP(src, dst netip.Addr, proto uint8, ttl uint8, n int) []byte {
	if ttl == 0 {
		ttl = s.defaultTTL
	}
	if dst.Is4() {
		h := wire.IPv4Header{
			ID:       uint16(s.ipID.Add(1)),
			Flags:    wire.IPv4FlagDF, // RFC 1191: we do path MTU discovery
			TTL:      ttl,
			Protocol: proto,
			Src:      src,
			Dst:      dst,
		}
		pkt := make([]byte, wire.IPv4MinHeaderLen+n)
		h.Encode(pkt, n)
		return pkt
	}
	h := wire.IPv6Header{NextHeader: proto, HopLimit: ttl, Src: src, Dst: dst}
	pkt := make([]byte, wire.IPv6HeaderLen+n)
	h.Encode(pkt, n)
	return pkt
}

// SourceAddr returns the address the stack would send from to reach dst, or
// the routing error (ErrNoRoute, ErrNoAddress).
func (s *Stack) SourceAddr(dst netip.Addr) (netip.Addr, error) {
	_, src, err := s.route(dst)
	return src, err
}
