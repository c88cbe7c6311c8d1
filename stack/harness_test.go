package stack_test

// A small, deterministic network for testing stacks against each other: a
// clock advanced by hand, segments that carry packets between the interfaces
// that own addresses on them, and a FIFO drained by run. Nothing here runs a
// goroutine or sleeps, so every test sees the same packets in the same order.

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// epoch is the fake clock's starting time; any fixed instant would do.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a stack.Clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc is never needed by the IP layer's tests; transports are tested
// with package vclock.
func (c *fakeClock) AfterFunc(d time.Duration, f func()) stack.Timer {
	panic("fakeClock.AfterFunc: use vclock")
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// maxDeliveries bounds run: a routing loop or an ICMP storm fails the test
// instead of hanging it.
const maxDeliveries = 10000

// network is the fake fabric. It is used from one goroutine at a time.
type network struct {
	tb    testing.TB
	clock *fakeClock
	nodes map[string]*node
	segs  map[string]*segment
	queue []delivery
	// log is every Link.Send in order, including the ones refused because
	// nobody owned the next hop.
	log []sent
}

// node is one stack in the network with its interfaces by name.
type node struct {
	name string
	s    *stack.Stack
	nics map[string]*stack.NIC
}

// port is one interface of one node: where a segment delivers.
type port struct {
	node *node
	nic  *stack.NIC
}

type delivery struct {
	to  port
	pkt []byte
}

// sent records one Link.Send.
type sent struct {
	from    port
	seg     string
	nextHop netip.Addr
	to      *node  // nil when nobody owned nextHop
	pkt     []byte // a copy as it was sent (forwarding rewrites in place)
}

// segment is one virtual network: it knows which interface owns each address.
type segment struct {
	net    *network
	name   string
	owners map[netip.Addr]port
}

// segLink is an interface's stack.Link onto a segment.
type segLink struct {
	seg  *segment
	from port // filled in once AddInterface has returned the NIC
}

// Send queues pkt for the owner of nextHop, as the fabric would. It takes
// ownership of pkt.
func (l *segLink) Send(nextHop netip.Addr, pkt []byte) error {
	n := l.seg.net
	to, ok := l.seg.owners[nextHop]
	rec := sent{from: l.from, seg: l.seg.name, nextHop: nextHop, pkt: append([]byte(nil), pkt...)}
	if ok {
		rec.to = to.node
	}
	n.log = append(n.log, rec)
	if !ok {
		return stack.ErrHostUnreachable
	}
	n.queue = append(n.queue, delivery{to: to, pkt: pkt})
	return nil
}

func newNetwork(tb testing.TB) *network {
	return &network{tb: tb, clock: newFakeClock(), nodes: map[string]*node{}, segs: map[string]*segment{}}
}

// segment returns the segment called name, creating it on first use.
func (n *network) segment(name string) *segment {
	if s := n.segs[name]; s != nil {
		return s
	}
	s := &segment{net: n, name: name, owners: map[netip.Addr]port{}}
	n.segs[name] = s
	return s
}

// node adds a stack called name. cfg's Name and Clock are filled in.
func (n *network) node(name string, cfg stack.Config) *node {
	n.tb.Helper()
	if n.nodes[name] != nil {
		n.tb.Fatalf("node %s exists", name)
	}
	cfg.Name, cfg.Clock = name, n.clock
	nd := &node{name: name, s: stack.New(cfg), nics: map[string]*stack.NIC{}}
	n.nodes[name] = nd
	return nd
}

// attach adds interface ifname to nd on segment seg with the given MTU and
// addresses ("10.0.1.10/24") and registers the addresses with the segment.
func (n *network) attach(nd *node, ifname string, seg *segment, mtu int, addrs ...string) *stack.NIC {
	n.tb.Helper()
	var ps []netip.Prefix
	for _, a := range addrs {
		ps = append(ps, netip.MustParsePrefix(a))
	}
	l := &segLink{seg: seg}
	nic, err := nd.s.AddInterface(ifname, mtu, l, ps...)
	if err != nil {
		n.tb.Fatalf("attach %s %s: %v", nd.name, ifname, err)
	}
	l.from = port{nd, nic}
	for _, p := range ps {
		if o, dup := seg.owners[p.Addr()]; dup {
			n.tb.Fatalf("attach %s %s: %v already owned by %s", nd.name, ifname, p.Addr(), o.node.name)
		}
		seg.owners[p.Addr()] = l.from
	}
	nd.nics[ifname] = nic
	return nic
}

// run delivers queued packets, and whatever they cause, until the network is
// quiet. It returns the number of deliveries.
func (n *network) run() int {
	n.tb.Helper()
	i := 0
	for ; len(n.queue) > 0; i++ {
		if i >= maxDeliveries {
			n.tb.Fatalf("network not quiet after %d deliveries", maxDeliveries)
		}
		d := n.queue[0]
		n.queue = n.queue[1:]
		d.to.node.s.Deliver(d.to.nic, d.pkt)
	}
	return i
}

// sentBy returns the logged sends by the named node, in order.
func (n *network) sentBy(name string) []sent {
	var out []sent
	for _, s := range n.log {
		if s.from.node.name == name {
			out = append(out, s)
		}
	}
	return out
}

// sentTo returns the logged packets delivered (or to be delivered) to the
// named node.
func (n *network) sentTo(name string) []sent {
	var out []sent
	for _, s := range n.log {
		if s.to != nil && s.to.name == name {
			out = append(out, s)
		}
	}
	return out
}

// route installs a static route on nd or fails the test.
func (nd *node) route(tb testing.TB, dst, via string) {
	tb.Helper()
	if err := nd.s.AddRoute(netip.MustParsePrefix(dst), netip.MustParseAddr(via)); err != nil {
		tb.Fatalf("%s: %v", nd.name, err)
	}
}

// Addresses of the chain topology. Network i (1-based) is 10.0.i.0/24 and
// fd00:0:0:i::/64. Router ri sits between network i and i+1; its address
// facing h1 is .1 / ::1 and its address facing h2 is .2 / ::2 on the next
// network. h1 is .10 on network 1, h2 .10 on the last.

func addr4(netw, host int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", netw, host))
}
func addr6(netw, host int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("fd00:0:0:%d::%d", netw, host))
}

// addr returns addr4 or addr6.
func addr(v6 bool, netw, host int) netip.Addr {
	if v6 {
		return addr6(netw, host)
	}
	return addr4(netw, host)
}

// chainConfig shapes a chain topology.
type chainConfig struct {
	Routers int          // at least 1
	Router  stack.Config // for every router; Forwarding is set
	Host    stack.Config // for h1 and h2
	// MTU of every interface, and of each router's interface toward h2
	// when FarMTU is set.
	MTU, FarMTU int
}

// chain is h1 - lan1 - r1 - lan2 - ... - rN - lan(N+1) - h2.
type chain struct {
	*network
	h1, h2  *node
	routers []*node
	lans    []*segment // lans[0] is lan1
}

// router returns ri, 1-based as in the names.
func (c *chain) router(i int) *node { return c.routers[i-1] }

// h1Addr, h2Addr and the routers' addresses by family.
func (c *chain) h1Addr(v6 bool) netip.Addr { return addr(v6, 1, 10) }
func (c *chain) h2Addr(v6 bool) netip.Addr { return addr(v6, len(c.routers)+1, 10) }

// nearAddr is ri's address on the network toward h1 (network i).
func (c *chain) nearAddr(i int, v6 bool) netip.Addr { return addr(v6, i, 1) }

// farAddr is ri's address on the network toward h2 (network i+1).
func (c *chain) farAddr(i int, v6 bool) netip.Addr { return addr(v6, i+1, 2) }

func newChain(tb testing.TB, cfg chainConfig) *chain {
	tb.Helper()
	if cfg.Routers < 1 {
		tb.Fatalf("newChain: %d routers", cfg.Routers)
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.FarMTU == 0 {
		cfg.FarMTU = cfg.MTU
	}
	n := newNetwork(tb)
	c := &chain{network: n}
	nets := cfg.Routers + 1
	for i := 1; i <= nets; i++ {
		c.lans = append(c.lans, n.segment(fmt.Sprintf("lan%d", i)))
	}
	p := func(a netip.Addr) string {
		if a.Is4() {
			return netip.PrefixFrom(a, 24).String()
		}
		return netip.PrefixFrom(a, 64).String()
	}

	c.h1 = n.node("h1", cfg.Host)
	n.attach(c.h1, "eth0", c.lans[0], cfg.MTU, p(addr4(1, 10)), p(addr6(1, 10)))
	c.h1.route(tb, "0.0.0.0/0", addr4(1, 1).String())
	c.h1.route(tb, "::/0", addr6(1, 1).String())

	for i := 1; i <= cfg.Routers; i++ {
		rc := cfg.Router
		rc.Forwarding = true
		r := n.node(fmt.Sprintf("r%d", i), rc)
		n.attach(r, "eth0", c.lans[i-1], cfg.MTU, p(addr4(i, 1)), p(addr6(i, 1)))
		n.attach(r, "eth1", c.lans[i], cfg.FarMTU, p(addr4(i+1, 2)), p(addr6(i+1, 2)))
		c.routers = append(c.routers, r)
	}
	// Each router gets a route to every network it is not on: toward h1
	// through its left neighbour's far address, toward h2 through its
	// right neighbour's near address. No router has a default route, so
	// anything else is unreachable.
	for i := 1; i <= cfg.Routers; i++ {
		r := c.router(i)
		for j := 1; j <= nets; j++ {
			var via4, via6 netip.Addr
			switch {
			case j < i:
				via4, via6 = addr4(i, 2), addr6(i, 2)
			case j > i+1:
				via4, via6 = addr4(i+1, 1), addr6(i+1, 1)
			default:
				continue
			}
			r.route(tb, fmt.Sprintf("10.0.%d.0/24", j), via4.String())
			r.route(tb, fmt.Sprintf("fd00:0:0:%d::/64", j), via6.String())
		}
	}

	c.h2 = n.node("h2", cfg.Host)
	n.attach(c.h2, "eth0", c.lans[nets-1], cfg.MTU, p(addr4(nets, 10)), p(addr6(nets, 10)))
	c.h2.route(tb, "0.0.0.0/0", addr4(nets, 2).String())
	c.h2.route(tb, "::/0", addr6(nets, 2).String())
	return c
}

// openEcho opens an echo endpoint on nd and closes it at the end of the test.
func openEcho(tb testing.TB, nd *node, v6 bool) *stack.EchoEndpoint {
	tb.Helper()
	ep, err := nd.s.OpenEcho(v6)
	if err != nil {
		tb.Fatalf("%s: OpenEcho: %v", nd.name, err)
	}
	tb.Cleanup(ep.Close)
	return ep
}

// drain returns the events waiting on ep without blocking.
func drain(ep *stack.EchoEndpoint) []stack.EchoEvent {
	var evs []stack.EchoEvent
	for {
		select {
		case ev, ok := <-ep.Events():
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

// cmpOpts compares netip.Addr by == (its fields are unexported).
var cmpOpts = []cmp.Option{cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})}

// Packet builders for injecting packets with Deliver. They use wire's
// encoders; the tests check that the stack's own output verifies with
// wire's views, so an encoder bug would show up as a mismatch there.

// ipPacket builds an IPv4 or IPv6 packet (by src's family) with DF set on
// IPv4.
func ipPacket(src, dst netip.Addr, ttl, proto uint8, payload []byte) []byte {
	if src.Is4() {
		h := wire.IPv4Header{ID: 0x1234, Flags: wire.IPv4FlagDF, TTL: ttl, Protocol: proto, Src: src, Dst: dst}
		return h.Marshal(payload)
	}
	h := wire.IPv6Header{NextHeader: proto, HopLimit: ttl, Src: src, Dst: dst}
	return h.Marshal(payload)
}

// icmpPacket builds an IP packet carrying m with a correct ICMP or ICMPv6
// checksum.
func icmpPacket(src, dst netip.Addr, ttl uint8, m wire.ICMPMessage) []byte {
	b := make([]byte, m.Len())
	if src.Is4() {
		m.EncodeV4(b)
		return ipPacket(src, dst, ttl, wire.ProtoICMPv4, b)
	}
	m.EncodeV6(b, src, dst)
	return ipPacket(src, dst, ttl, wire.ProtoICMPv6, b)
}

// echoPacket builds an echo request.
func echoPacket(src, dst netip.Addr, ttl uint8, ident, seq uint16, data []byte) []byte {
	typ := uint8(wire.ICMPv4Echo)
	if src.Is6() {
		typ = wire.ICMPv6EchoRequest
	}
	return icmpPacket(src, dst, ttl, wire.Echo(typ, ident, seq, data))
}

// checkPacket fails unless pkt is a well-formed IP packet whose length fields
// match the buffer and whose IPv4 header checksum and ICMP / ICMPv6 checksum
// verify. It returns the ICMP message, or nil if pkt carries none.
func checkPacket(tb testing.TB, pkt []byte) wire.ICMP {
	tb.Helper()
	if len(pkt) == 0 {
		tb.Fatalf("empty packet")
	}
	switch pkt[0] >> 4 {
	case 4:
		ip := wire.IPv4(pkt)
		if err := ip.Check(); err != nil {
			tb.Fatalf("IPv4 packet % x: %v", pkt, err)
		}
		if ip.TotalLength() != len(pkt) {
			tb.Errorf("IPv4 total length %d, buffer %d", ip.TotalLength(), len(pkt))
		}
		if !ip.ChecksumValid() {
			tb.Errorf("IPv4 header checksum %#04x does not verify", ip.Checksum())
		}
		if ip.Protocol() != wire.ProtoICMPv4 {
			return nil
		}
		m := wire.ICMP(ip.Payload())
		if err := m.Check(); err != nil {
			tb.Fatalf("ICMP: %v", err)
		}
		if !m.ChecksumValidV4() {
			tb.Errorf("ICMP checksum %#04x does not verify", m.Checksum())
		}
		return m
	case 6:
		ip := wire.IPv6(pkt)
		if err := ip.Check(); err != nil {
			tb.Fatalf("IPv6 packet % x: %v", pkt, err)
		}
		if ip.TotalLength() != len(pkt) {
			tb.Errorf("IPv6 payload length %d, buffer %d", ip.PayloadLength(), len(pkt))
		}
		if ip.NextHeader() != wire.ProtoICMPv6 {
			return nil
		}
		m := wire.ICMP(ip.Payload())
		if err := m.Check(); err != nil {
			tb.Fatalf("ICMPv6: %v", err)
		}
		if !m.ChecksumValidV6(ip.Src(), ip.Dst()) {
			tb.Errorf("ICMPv6 checksum %#04x does not verify", m.Checksum())
		}
		return m
	}
	tb.Fatalf("packet of IP version %d", pkt[0]>>4)
	return nil
}

// hdr is the addresses and TTL / hop limit of a checked packet.
type hdr struct {
	Src, Dst netip.Addr
	TTL      uint8
	Proto    uint8
	Len      int
}

func header(pkt []byte) hdr {
	if pkt[0]>>4 == 4 {
		ip := wire.IPv4(pkt)
		return hdr{ip.Src(), ip.Dst(), ip.TTL(), ip.Protocol(), len(pkt)}
	}
	ip := wire.IPv6(pkt)
	return hdr{ip.Src(), ip.Dst(), ip.HopLimit(), ip.NextHeader(), len(pkt)}
}

// icmpProto is the protocol number of ICMP for the family.
func icmpProto(v6 bool) uint8 {
	if v6 {
		return wire.ProtoICMPv6
	}
	return wire.ProtoICMPv4
}

// family names a subtest.
func family(v6 bool) string {
	if v6 {
		return "v6"
	}
	return "v4"
}

// ipHeaderLen is the header length of packets the stack builds.
func ipHeaderLen(v6 bool) int {
	if v6 {
		return wire.IPv6HeaderLen
	}
	return wire.IPv4MinHeaderLen
}

// payload returns n bytes of recognisable data.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}
