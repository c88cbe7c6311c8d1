package stack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/labnet-dev/labnet/stack/wire"
)

// ErrAddressFamily is NewPath's error for a source and a destination of
// different families.
var ErrAddressFamily = errors.New("source and destination address families differ")

// Path is the way from one of this host's addresses to one destination for
// one transport protocol: what a connection (a TCP endpoint, a connected
// UDP socket) holds so that its packets are not routed one by one. It
// keeps the resolved route (outgoing interface, next hop, MTU) together
// with the routing table generation it was resolved in, and resolves again
// only when the table has changed since (Linux keeps a dst_entry on the
// socket and checks it against the FIB's generation; gVisor's endpoints
// hold a stack.Route). It also keeps a template of the IP header, which
// is the same on every packet but for the length and the identification.
//
// The source address is fixed when the path is made: a connection keeps
// its address when its route moves to another interface (RFC 9293 §3.3.1:
// the socket pair names the connection).
//
// A Path is safe for concurrent use.
type Path struct {
	s        *Stack
	src, dst netip.Addr
	hdr      [wire.IPv6HeaderLen]byte // the IP header with zero length, ID and checksum
	hdrLen   int
	hdrSum   uint32 // IPv4: the one's-complement sum of hdr, folded to 16 bits
	r        atomic.Pointer[resolvedRoute]
}

// resolvedRoute is one resolution of a path's route, immutable: a table
// change makes a new one.
type resolvedRoute struct {
	gen   uint64 // the routeTable generation it was resolved in
	route *Route // in that table; nil when dst is this host's own
	err   error  // ErrNoRoute: no route in that generation
}

// NewPath returns the path from src to dst for IP protocol proto, with its
// route resolved. An invalid or unspecified src is chosen by source address
// selection (sourceFor: RFC 1122 §3.3.4.3, RFC 6724 rule 5), and the error
// is the routing error that prevents the choice (ErrNoRoute,
// ErrNoAddress). A path from a given src is returned whatever the routing
// table says now: a connection that has no route yet (a listener's
// connection whose peer is unreachable, say) keeps its path and finds the
// route once one is added; Err says whether there is one.
func (s *Stack) NewPath(src, dst netip.Addr, proto uint8) (*Path, error) {
	if !dst.IsValid() {
		return nil, fmt.Errorf("stack %s: path to %v: invalid destination", s.name, dst)
	}
	if src.IsValid() && src.Is4() != dst.Is4() {
		return nil, fmt.Errorf("stack %s: path from %v to %v: %w", s.name, src, dst, ErrAddressFamily)
	}
	if !src.IsValid() || src.IsUnspecified() {
		_, a, err := s.route(dst)
		if err != nil {
			return nil, err
		}
		src = a
	}
	p := &Path{s: s, src: src, dst: dst}
	if dst.Is4() {
		h := wire.IPv4Header{
			Flags:    wire.IPv4FlagDF, // RFC 1191: we do path MTU discovery
			TTL:      s.defaultTTL,
			Protocol: proto,
			Src:      src,
			Dst:      dst,
		}
		h.Encode(p.hdr[:], 0)
		// Encode wrote a total length of 20 and the checksum: zero both,
		// so that each packet adds its own length and ID to hdrSum.
		binary.BigEndian.PutUint16(p.hdr[2:], 0)
		binary.BigEndian.PutUint16(p.hdr[10:], 0)
		p.hdrLen = wire.IPv4MinHeaderLen
		p.hdrSum = uint32(^wire.Checksum(p.hdr[:wire.IPv4MinHeaderLen]))
	} else {
		h := wire.IPv6Header{NextHeader: proto, HopLimit: s.defaultTTL, Src: src, Dst: dst}
		h.Encode(p.hdr[:], 0)
		p.hdrLen = wire.IPv6HeaderLen
	}
	p.resolve()
	return p, nil
}

// Src is the path's source address.
func (p *Path) Src() netip.Addr { return p.src }

// Dst is the path's destination address.
func (p *Path) Dst() netip.Addr { return p.dst }

// Valid reports whether the route was resolved in the routing table in use
// now. Callers need not check it: every method resolves the route again
// when it is not.
func (p *Path) Valid() bool {
	r := p.r.Load()
	return r != nil && r.gen == p.s.routes.Load().gen
}

// resolve returns the route for the current routing table, resolving it
// again if the table changed. Two goroutines that find it stale at once
// both resolve it, to the same answer.
func (p *Path) resolve() *resolvedRoute {
	t := p.s.routes.Load()
	if r := p.r.Load(); r != nil && r.gen == t.gen {
		return r
	}
	r := &resolvedRoute{gen: t.gen}
	r.route, r.err = t.route(p.dst)
	p.r.Store(r)
	return r
}

// Err is the routing error of the path now: nil, or ErrNoRoute when the
// routing table has no route to its destination.
func (p *Path) Err() error { return p.resolve().err }

// MTU is the MTU of the path's outgoing interface: 65535 for an address of
// this host (the loopback's limit), 0 when there is no route. Path MTUs
// learned from ICMP are the transport's to apply.
func (p *Path) MTU() int {
	switch r := p.resolve(); {
	case r.err != nil:
		return 0
	case r.route == nil:
		return localMTU
	default:
		return r.route.NIC.mtu
	}
}

// NIC is the outgoing interface, nil for an address of this host or when
// there is no route.
func (p *Path) NIC() *NIC {
	if r := p.resolve(); r.route != nil {
		return r.route.NIC
	}
	return nil
}

// Headroom is the IP header length: where the transport's bytes start in
// a packet from NewPacket.
func (p *Path) Headroom() int { return p.hdrLen }

// NewPacket allocates a packet of the path's protocol with n bytes of
// payload, writes its IP header (the stack's default TTL) and returns the
// packet and its payload slice, for the transport to fill before
// WritePacket.
func (p *Path) NewPacket(n int) (pkt, payload []byte) {
	pkt = make([]byte, p.hdrLen+n)
	copy(pkt, p.hdr[:p.hdrLen])
	p.fill(pkt, n)
	return pkt, pkt[p.hdrLen:]
}

// BuildPacket is NewPacket for a payload that exists already: hdr (the
// transport's header), then data1 and data2 (its data, in one or two
// pieces), copied. The copy is the packet's only write: its memory is not
// zeroed first, which NewPacket's is (a tenth of what sending a 9000-byte
// segment costs).
func (p *Path) BuildPacket(hdr, data1, data2 []byte) (pkt, payload []byte) {
	pkt = bytes.Join([][]byte{p.hdr[:p.hdrLen], hdr, data1, data2}, nil)
	p.fill(pkt, len(pkt)-p.hdrLen)
	return pkt, pkt[p.hdrLen:]
}

// fill completes the header template at the start of pkt for n bytes of
// payload: the length, and for IPv4 the identification and the checksum,
// which adds them to the template's sum taken once (the sum is commutative
// and associative, RFC 1071 §2(A)).
func (p *Path) fill(pkt []byte, n int) {
	if p.hdrLen == wire.IPv4MinHeaderLen {
		tl, id := uint16(p.hdrLen+n), uint16(p.s.ipID.Add(1))
		binary.BigEndian.PutUint16(pkt[2:], tl)
		binary.BigEndian.PutUint16(pkt[4:], id)
		binary.BigEndian.PutUint16(pkt[10:], wire.Fold(p.hdrSum+uint32(tl)+uint32(id)))
	} else {
		binary.BigEndian.PutUint16(pkt[4:], uint16(n))
	}
}

// WritePacket sends a packet built with NewPacket along the path, without
// a route lookup unless the routing table changed. It takes ownership of
// pkt.
func (p *Path) WritePacket(pkt []byte) error {
	r := p.resolve()
	if r.err != nil {
		return r.err
	}
	return p.s.output(r.route, p.dst, pkt)
}
