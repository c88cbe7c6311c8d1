package stack

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/labnet-dev/labnet/stack/wire"
)

// Transport is a transport protocol (TCP, UDP) attached to a stack with
// RegisterTransport. The stack calls it on its receive path; it must not
// block.
type Transport interface {
	// HandlePacket is called for every packet of the transport's protocol
	// addressed to this host. payload is the transport header and data; it
	// aliases the packet, which the transport now owns. It returns false
	// when no endpoint wants the packet and the stack should answer with
	// ICMP port unreachable (RFC 1122 §3.2.2.1; RFC 4443 §3.1 code 4).
	HandlePacket(p PacketInfo, payload []byte) bool
	// HandleError is called for an ICMP or ICMPv6 error that quotes one of
	// the transport's packets (RFC 1122 §4.2.3.9, RFC 5927).
	HandleError(e ICMPError)
}

// PacketInfo describes a received packet.
type PacketInfo struct {
	NIC      *NIC
	Src, Dst netip.Addr
	TTL      uint8 // TTL / hop limit as received
}

// ICMPError is an ICMP error about a packet this host sent.
type ICMPError struct {
	From       netip.Addr // who sent the error
	Type, Code uint8
	// MTU is the next-hop MTU of a fragmentation-needed / packet-too-big
	// error (0 otherwise).
	MTU uint32
	// Src and Dst are the quoted packet's addresses (Src is ours).
	Src, Dst netip.Addr
	// Quoted is the quoted transport header: at least 8 bytes (RFC 792),
	// usually more.
	Quoted []byte
}

// Unreachable reports an error that says the destination cannot be reached
// (RFC 1122 §4.2.3.9 "hard errors" are decided by the transport).
func (e ICMPError) Unreachable() bool {
	if e.Src.Is4() {
		return e.Type == wire.ICMPv4DestUnreach && e.Code != wire.ICMPv4FragNeeded
	}
	return e.Type == wire.ICMPv6DestUnreach
}

// TooBig reports a fragmentation-needed or packet-too-big error.
func (e ICMPError) TooBig() bool {
	if e.Src.Is4() {
		return e.Type == wire.ICMPv4DestUnreach && e.Code == wire.ICMPv4FragNeeded
	}
	return e.Type == wire.ICMPv6PacketTooBig
}

// RegisterTransport attaches t as the handler of IP protocol proto. When t
// is a BatchTransport, the stack also calls its batch hooks.
func (s *Stack) RegisterTransport(proto uint8, t Transport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.transports.Load()
	ts := make(transports, 0, len(old)+1)
	for _, e := range old {
		if e.proto != proto {
			ts = append(ts, e)
		}
	}
	ts = append(ts, transportEntry{proto, t})
	slices.SortFunc(ts, func(a, b transportEntry) int { return cmp.Compare(a.proto, b.proto) })
	s.transports.Store(&ts)
	s.setBatchersLocked(ts)
}

// transports are a stack's transports in protocol number order: a stack
// has two or three, found faster by a scan than by hashing, and 100,000
// idle stacks do not each hold a map.
type transports []transportEntry

type transportEntry struct {
	proto uint8
	t     Transport
}

func (s *Stack) transport(proto uint8) Transport {
	for _, e := range *s.transports.Load() {
		if e.proto == proto {
			return e.t
		}
	}
	return nil
}

// Clock is the stack's clock, for its transports.
func (s *Stack) Clock() Clock { return s.clock }

// Now is the stack clock's time.
func (s *Stack) Now() time.Time { return s.clock.Now() }

// Headroom is the IP header length for dst's family: where a transport's
// bytes start in a packet from NewPacket.
func Headroom(dst netip.Addr) int {
	if dst.Is4() {
		return wire.IPv4MinHeaderLen
	}
	return wire.IPv6HeaderLen
}

// NewPacket allocates a packet from src to dst of protocol proto with n
// bytes of payload, writes its IP header and returns the packet and its
// payload slice, for the transport to fill before WritePacket. ttl 0 takes
// the stack default.
func (s *Stack) NewPacket(src, dst netip.Addr, proto, ttl uint8, n int) (pkt, payload []byte) {
	pkt = s.buildIP(src, dst, proto, ttl, n)
	return pkt, pkt[len(pkt)-n:]
}

// WritePacket routes and sends a packet built with NewPacket. It takes
// ownership of pkt. It looks the route up for this one packet: a
// connection sends through its Path instead.
func (s *Stack) WritePacket(dst netip.Addr, pkt []byte) error {
	r, _, err := s.route(dst)
	if err != nil {
		return err
	}
	return s.output(r, dst, pkt)
}

// Route is what a transport needs to know about the path to dst: the source
// address to use and the MTU of the outgoing interface (the local MTU for an
// address of this host: 65535). It looks the route up each time: a
// connection keeps a Path instead.
func (s *Stack) Route(dst netip.Addr) (src netip.Addr, mtu int, err error) {
	r, src, err := s.route(dst)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	if r == nil {
		return src, localMTU, nil
	}
	return src, r.NIC.mtu, nil
}

// IsLocal reports whether a is one of the stack's addresses.
func (s *Stack) IsLocal(a netip.Addr) bool { return s.isLocal(a) }
