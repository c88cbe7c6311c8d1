package stack

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/labnet-dev/labnet/stack/wire"
)

// EchoEvent is an answer to an echo request sent from an EchoEndpoint: the
// echo reply, or an ICMP error that quotes the request.
type EchoEvent struct {
	Reply      bool       // an echo reply; otherwise an ICMP error
	From       netip.Addr // who sent the reply or error
	Seq        uint16
	TTL        uint8 // TTL / hop limit of the packet as received
	Len        int   // bytes of the ICMP message
	Type, Code uint8 // of the ICMP message
	MTU        uint32
	At         time.Time // the stack clock when it arrived
}

// EchoEndpoint sends ICMP or ICMPv6 echo requests with one identifier and
// receives what answers them: what ping(8) and traceroute -I use.
type EchoEndpoint struct {
	s     *Stack
	v6    bool
	ident uint16

	mu     sync.Mutex
	closed bool
	events chan EchoEvent
}

// echoQueue bounds undelivered events; more are dropped, as a full socket
// buffer drops.
const echoQueue = 256

// OpenEcho opens an echo endpoint for IPv4 (v6 false) or IPv6 with a fresh
// identifier.
func (s *Stack) OpenEcho(v6 bool) (*EchoEndpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.echo4
	if v6 {
		m = s.echo6
	}
	if len(m) >= 0xffff {
		return nil, errors.New("no free echo identifier")
	}
	for m[s.nextIdent] != nil || s.nextIdent == 0 {
		s.nextIdent++
	}
	e := &EchoEndpoint{s: s, v6: v6, ident: s.nextIdent, events: make(chan EchoEvent, echoQueue)}
	s.nextIdent++
	m[e.ident] = e
	return e, nil
}

// Ident is the endpoint's echo identifier.
func (e *EchoEndpoint) Ident() uint16 { return e.ident }

// Events delivers replies and errors. It is closed by Close.
func (e *EchoEndpoint) Events() <-chan EchoEvent { return e.events }

// Send sends an echo request to dst with sequence seq, the given TTL / hop
// limit (the stack default when 0) and data as payload. It returns the
// source address used.
func (e *EchoEndpoint) Send(dst netip.Addr, seq uint16, ttl uint8, data []byte) (netip.Addr, error) {
	if dst.Is6() != e.v6 || dst.Is4In6() {
		return netip.Addr{}, errors.New("address family does not match the endpoint")
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return netip.Addr{}, ErrClosed
	}
	s := e.s
	r, src, err := s.route(dst)
	if err != nil {
		return netip.Addr{}, err
	}
	if e.v6 {
		msg := wire.Echo(wire.ICMPv6EchoRequest, e.ident, seq, data)
		pkt := s.buildIP(src, dst, wire.ProtoICMPv6, ttl, msg.Len())
		msg.EncodeV6(pkt[wire.IPv6HeaderLen:], src, dst)
		return src, s.output(r, dst, pkt)
	}
	msg := wire.Echo(wire.ICMPv4Echo, e.ident, seq, data)
	pkt := s.buildIP(src, dst, wire.ProtoICMPv4, ttl, msg.Len())
	msg.EncodeV4(pkt[wire.IPv4MinHeaderLen:])
	return src, s.output(r, dst, pkt)
}

// Close releases the identifier and closes Events. It is idempotent.
func (e *EchoEndpoint) Close() {
	s := e.s
	s.mu.Lock()
	m := s.echo4
	if e.v6 {
		m = s.echo6
	}
	if m[e.ident] == e {
		delete(m, e.ident)
	}
	s.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.closed = true
		close(e.events)
	}
}

func (s *Stack) echoEvent(v6 bool, ident uint16, ev EchoEvent) {
	s.mu.Lock()
	m := s.echo4
	if v6 {
		m = s.echo6
	}
	e := m[ident]
	s.mu.Unlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	select {
	case e.events <- ev:
	default:
	}
}
