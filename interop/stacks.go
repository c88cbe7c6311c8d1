package interop

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/labnet-dev/labnet/stack"
	ltcp "github.com/labnet-dev/labnet/stack/tcp"
)

// The addresses of the two sides of every pair: side A (our stack in
// Mixed) is .1 / ::1, side B (gVisor in Mixed) is .2 / ::2.
var (
	PrefixA4 = netip.MustParsePrefix("10.0.0.1/24")
	PrefixA6 = netip.MustParsePrefix("fd00::1/64")
	PrefixB4 = netip.MustParsePrefix("10.0.0.2/24")
	PrefixB6 = netip.MustParsePrefix("fd00::2/64")

	AddrA4, AddrA6 = PrefixA4.Addr(), PrefixA6.Addr()
	AddrB4, AddrB6 = PrefixB4.Addr(), PrefixB6.Addr()
)

// gvisorNIC is the id of the one NIC of the gVisor stacks made here.
const gvisorNIC tcpip.NICID = 1

// NewGVisorStack returns a gVisor stack with IPv4, IPv6, ICMP, ICMPv6, TCP
// (with SACK, as Linux) and UDP, whose NIC 1 is ep with addrs and a route to
// each address's subnet.
func NewGVisorStack(ep gstack.LinkEndpoint, addrs ...netip.Prefix) (*gstack.Stack, error) {
	s := gstack.New(gstack.Options{
		NetworkProtocols:   []gstack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []gstack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
	fail := func(format string, args ...any) (*gstack.Stack, error) {
		s.Close()
		s.Wait()
		return nil, fmt.Errorf("gvisor stack: "+format, args...)
	}
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return fail("enable SACK: %v", err)
	}
	if err := s.CreateNIC(gvisorNIC, ep); err != nil {
		return fail("create NIC: %v", err)
	}
	var routes []tcpip.Route
	for _, a := range addrs {
		pa := tcpip.ProtocolAddress{
			Protocol:          netProto(a.Addr()),
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: gvisorAddr(a.Addr()), PrefixLen: a.Bits()},
		}
		if err := s.AddProtocolAddress(gvisorNIC, pa, gstack.AddressProperties{}); err != nil {
			return fail("add address %v: %v", a, err)
		}
		routes = append(routes, tcpip.Route{Destination: pa.AddressWithPrefix.Subnet(), NIC: gvisorNIC})
	}
	s.SetRouteTable(routes)
	return s, nil
}

// NewLabnetStack returns one of our stacks, on the system clock, with one
// interface eth0 on link.
func NewLabnetStack(name string, mtu int, link stack.Link, addrs ...netip.Prefix) (*stack.Stack, *stack.NIC, error) {
	s := stack.New(stack.Config{Name: name, Clock: stack.SystemClock{}})
	nic, err := s.AddInterface("eth0", mtu, link, addrs...)
	if err != nil {
		return nil, nil, err
	}
	return s, nic, nil
}

// Mixed is one of our stacks (side A) and a gVisor stack (side B) joined by
// a link.
type Mixed struct {
	*Wire
	Labnet *stack.Stack
	NIC    *stack.NIC
	GVisor *gstack.Stack
}

// NewMixed builds the stacks and starts the link.
func NewMixed(o Options) (*Mixed, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	w := newWire(o)
	gep := newGVisorEnd(o.MTU, w.ba)
	g, err := NewGVisorStack(gep, PrefixB4, PrefixB6)
	if err != nil {
		return nil, err
	}
	s, nic, err := NewLabnetStack("labnet", o.MTU, &labnetEnd{peer: []netip.Addr{AddrB4, AddrB6}, out: w.ab}, PrefixA4, PrefixA6)
	if err != nil {
		g.Close()
		g.Wait()
		return nil, err
	}
	w.start(nic.Receive, gep.deliver)
	return &Mixed{Wire: w, Labnet: s, NIC: nic, GVisor: g}, nil
}

// Close stops the link, our stack's receive path and the gVisor stack. It
// is idempotent.
func (m *Mixed) Close() {
	m.stop()
	m.Labnet.Close()
	m.GVisor.Close()
	m.GVisor.Wait()
}

// GVisorPair is two gVisor stacks joined by a link: the baseline.
type GVisorPair struct {
	*Wire
	A, B *gstack.Stack
}

// NewGVisorPair builds the stacks and starts the link.
func NewGVisorPair(o Options) (*GVisorPair, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	w := newWire(o)
	aep, bep := newGVisorEnd(o.MTU, w.ab), newGVisorEnd(o.MTU, w.ba)
	a, err := NewGVisorStack(aep, PrefixA4, PrefixA6)
	if err != nil {
		return nil, err
	}
	b, err := NewGVisorStack(bep, PrefixB4, PrefixB6)
	if err != nil {
		a.Close()
		a.Wait()
		return nil, err
	}
	w.start(aep.deliver, bep.deliver)
	return &GVisorPair{Wire: w, A: a, B: b}, nil
}

// Close stops the link and both stacks. It is idempotent.
func (p *GVisorPair) Close() {
	p.stop()
	for _, s := range []*gstack.Stack{p.A, p.B} {
		s.Close()
		s.Wait()
	}
}

// LabnetPair is two of our stacks joined by the same link, so that our TCP
// is measured over exactly what gVisor's is.
type LabnetPair struct {
	*Wire
	A, B       *stack.Stack
	ANIC, BNIC *stack.NIC
}

// NewLabnetPair builds the stacks and starts the link.
func NewLabnetPair(o Options) (*LabnetPair, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	w := newWire(o)
	a, anic, err := NewLabnetStack("a", o.MTU, &labnetEnd{peer: []netip.Addr{AddrB4, AddrB6}, out: w.ab}, PrefixA4, PrefixA6)
	if err != nil {
		return nil, err
	}
	b, bnic, err := NewLabnetStack("b", o.MTU, &labnetEnd{peer: []netip.Addr{AddrA4, AddrA6}, out: w.ba}, PrefixB4, PrefixB6)
	if err != nil {
		return nil, err
	}
	w.start(anic.Receive, bnic.Receive)
	return &LabnetPair{Wire: w, A: a, B: b, ANIC: anic, BNIC: bnic}, nil
}

// Close stops the link and the stacks' receive paths. It is idempotent.
func (p *LabnetPair) Close() {
	p.stop()
	p.A.Close()
	p.B.Close()
}

// TCPStack is what the TCP tests and benchmarks need of a TCP
// implementation: gVisor's through GVisorTCP, ours through LabnetTCP, so
// that one benchmark measures both.
type TCPStack interface {
	Listen(netip.AddrPort) (net.Listener, error)
	Dial(context.Context, netip.AddrPort) (net.Conn, error)
}

// GVisorTCP is gVisor's TCP as a TCPStack, through its gonet adapters.
type GVisorTCP struct{ S *gstack.Stack }

// Listen listens on a.
func (g GVisorTCP) Listen(a netip.AddrPort) (net.Listener, error) {
	l, err := gonet.ListenTCP(g.S, fullAddr(a), netProto(a.Addr()))
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Dial connects to a.
func (g GVisorTCP) Dial(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
	c, err := gonet.DialContextTCP(ctx, g.S, fullAddr(a), netProto(a.Addr()))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// LabnetTCP is our TCP (stack/tcp) as a TCPStack. tcp.Protocol's Listen
// and Dial return the concrete *tcp.Listener and *tcp.Conn, which Go does
// not accept for methods returning net.Listener and net.Conn, hence this
// thin wrapper; callers type-assert back to *tcp.Conn for Info.
type LabnetTCP struct{ P *ltcp.Protocol }

// Listen listens on a.
func (l LabnetTCP) Listen(a netip.AddrPort) (net.Listener, error) {
	ln, err := l.P.Listen(a)
	if err != nil {
		return nil, err // not a nil *tcp.Listener in a non-nil interface
	}
	return ln, nil
}

// Dial connects to a.
func (l LabnetTCP) Dial(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
	c, err := l.P.Dial(ctx, a)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func gvisorAddr(a netip.Addr) tcpip.Address { return tcpip.AddrFromSlice(a.AsSlice()) }

func fullAddr(a netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: gvisorNIC, Addr: gvisorAddr(a.Addr()), Port: a.Port()}
}

func netProto(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}
