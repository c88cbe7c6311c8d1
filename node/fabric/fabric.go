// Package fabric carries packets between the interfaces attached to the
// virtual networks run by this labd. A network is a routed IP segment with no
// link layer: the fabric knows which interface owns each address and delivers
// a packet sent to a next hop straight to that interface's host.
package fabric

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/labnet-dev/labnet/stack"
)

// Fabric holds the segments of this labd, by network resource name.
type Fabric struct {
	clock stack.Clock // times the impairments
	seed  uint64      // of every port's random source, with the port's name

	mu     sync.Mutex
	segs   map[string]*Segment
	byVNI  atomic.Pointer[map[uint32]*Segment] // copy-on-write: read per overlay packet
	remote atomic.Pointer[Remote]
}

// SetNetwork tells the fabric a network's VNI and which of its addresses
// live on other nodes (address -> that node's overlay address). It replaces
// what was set before; the segment is created if need be.
func (f *Fabric) SetNetwork(network string, vni uint32, remote map[netip.Addr]netip.AddrPort) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seg := f.segmentLocked(network)
	if old := seg.vni.Load(); old != vni {
		m := map[uint32]*Segment{}
		for k, v := range *f.byVNI.Load() {
			if v != seg {
				m[k] = v
			}
		}
		if vni != 0 {
			m[vni] = seg
		}
		f.byVNI.Store(&m)
	}
	seg.vni.Store(vni)
	m := make(map[netip.Addr]netip.AddrPort, len(remote))
	for a, p := range remote {
		m[a] = p
	}
	seg.remote.Store(&m)
}

// DeliverRemote hands a packet that came over the overlay to the local
// interface that owns nextHop on the network with this VNI. It takes
// ownership of pkt and reports whether an interface took it.
func (f *Fabric) DeliverRemote(vni uint32, nextHop netip.Addr, pkt []byte) bool {
	seg := (*f.byVNI.Load())[vni]
	if seg == nil {
		return false
	}
	dst, _, _ := seg.arrivals.where(seg, nextHop)
	if dst == nil {
		seg.noOwner.Add(1)
		return false
	}
	seg.delivered.Add(1)
	dst.recv(pkt)
	return true
}

// segmentLocked returns the segment of network, creating it.
func (f *Fabric) segmentLocked(network string) *Segment {
	seg := f.segs[network]
	if seg == nil {
		seg = &Segment{name: network}
		noRemote := map[netip.Addr]netip.AddrPort{}
		seg.remote.Store(&noRemote)
		f.segs[network] = seg
	}
	return seg
}

// An Option configures a Fabric.
type Option func(*Fabric)

// WithClock makes the impairments (delay, jitter, rate) take their time and
// timers from c; the default is stack.SystemClock. Tests pass a virtual
// clock (package vclock).
func WithClock(c stack.Clock) Option { return func(f *Fabric) { f.clock = c } }

// WithSeed seeds the random decisions of the impairments: each port draws
// from its own source, seeded with seed and the port's network and name, so
// that a test sees the same losses on every run. The default is random.
func WithSeed(seed uint64) Option { return func(f *Fabric) { f.seed = seed } }

// New returns an empty fabric.
func New(opts ...Option) *Fabric {
	f := &Fabric{clock: stack.SystemClock{}, seed: rand.Uint64(), segs: map[string]*Segment{}}
	f.byVNI.Store(&map[uint32]*Segment{})
	for _, o := range opts {
		o(f)
	}
	return f
}

// Segment is one virtual network on this labd.
type Segment struct {
	name   string
	vni    atomic.Uint32
	owners owners // read on every packet
	remote atomic.Pointer[map[netip.Addr]netip.AddrPort]

	mu    sync.Mutex // serialises writers of owners and ports
	ports int

	// What became of the packets sent on the segment: delivered to a port
	// here, no owner for the next hop, owned on another node that the
	// fabric has no Remote for or whose Remote refused them, or sent there.
	delivered, noOwner, noRemote, remoteRefused, sentRemote atomic.Uint64
	arrivals                                                hopCache // of DeliverRemote
}

// hopCache remembers the last address a sender looked up and where it
// is, so that a stream of packets to one next hop (any bulk transfer)
// hashes it once: netip.Addr map keys hash slowly, and each packet looks
// its next hop up twice or more. An entry is good while the segment's
// maps are the ones it was found in (they are replaced, never changed).
type hopCache struct{ last atomic.Pointer[hop] }

type hop struct {
	owners *map[netip.Addr]*Port
	remote *map[netip.Addr]netip.AddrPort
	addr   netip.Addr
	port   *Port
	peer   netip.AddrPort
	isPeer bool
}

func (c *hopCache) where(s *Segment, a netip.Addr) (port *Port, peer netip.AddrPort, remote bool) {
	owners, rem := s.owners.shard(a), s.remote.Load()
	if h := c.last.Load(); h != nil && h.addr == a && h.owners == owners && h.remote == rem {
		return h.port, h.peer, h.isPeer
	}
	if owners != nil {
		port = (*owners)[a]
	}
	if port == nil {
		peer, remote = (*rem)[a]
	}
	if port != nil || remote {
		c.last.Store(&hop{owners: owners, remote: rem, addr: a, port: port, peer: peer, isPeer: remote})
	}
	return port, peer, remote
}

// Port is an interface's attachment to a segment. It implements stack.Link.
type Port struct {
	seg   *Segment
	name  string
	addrs []netip.Addr
	recv  func(pkt []byte)
	f     *Fabric
	once  sync.Once

	hops    hopCache // where the port's next hops are
	refused refusals // what the overlay refused of what the port sent

	// impair is nil when the port has no impairments: all Send looks at.
	impair   atomic.Pointer[impairState]
	impairMu sync.Mutex // serialises SetImpair
	eng      *engine    // created by the first SetImpair; kept for its counters
}

// Attach connects an interface owning addrs to network. recv is called with
// every packet addressed to the interface; it must not block and takes
// ownership of the packet.
func (f *Fabric) Attach(network, name string, addrs []netip.Addr, recv func(pkt []byte)) (*Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seg := f.segmentLocked(network)
	seg.mu.Lock()
	defer seg.mu.Unlock()
	for _, a := range addrs {
		if o := seg.owners.get(a); o != nil {
			return nil, fmt.Errorf("fabric: %s: address %v already owned by %s", network, a, o.name)
		}
	}
	p := &Port{seg: seg, name: name, addrs: append([]netip.Addr(nil), addrs...), recv: recv, f: f}
	for _, a := range addrs {
		seg.owners.set(a, p)
	}
	seg.ports++
	return p, nil
}

// Send delivers pkt to the port that owns nextHop (stack.Link), through the
// port's impairments if it has any (SetImpair). It takes ownership of pkt
// unless it returns an error. An impaired packet is dropped, held or
// delivered, and Send returns nil either way: as on a real link, the sender
// does not learn the packet's fate. So does a packet the overlay refuses;
// SendFate tells both.
func (p *Port) Send(nextHop netip.Addr, pkt []byte) error {
	_, err := p.SendFate(nextHop, pkt)
	return err
}

// SendFate is Send, also saying what became of the packet (stack.FateLink:
// the interface counts it and captures show it): what the impairments did
// to it, or why the overlay refused it (a drop that is Refused: the packet
// never left). The overlay's refusal is learnt at once, when it cannot
// queue the packet; a packet the impairments hold and the overlay refuses
// later is counted by the overlay alone.
func (p *Port) SendFate(nextHop netip.Addr, pkt []byte) (stack.LinkFate, error) {
	if port, _, remote := p.hops.where(p.seg, nextHop); port == nil && !remote {
		p.seg.noOwner.Add(1)
		return stack.LinkFate{}, stack.ErrHostUnreachable
	}
	var fate stack.LinkFate
	if im := p.impair.Load(); im != nil {
		fate = im.eng.send(im, nextHop, pkt)
	} else {
		fate.Drop = p.deliver(nextHop, pkt)
	}
	p.refused.count(fate.Drop)
	return fate, nil
}

// Detach removes the port from its segment, dropping the packets its
// impairments hold; the segment goes when its last port does. It is
// idempotent.
func (p *Port) Detach() {
	p.once.Do(func() {
		p.closeImpair()
		f, seg := p.f, p.seg
		f.mu.Lock()
		defer f.mu.Unlock()
		seg.mu.Lock()
		defer seg.mu.Unlock()
		for _, a := range p.addrs {
			if seg.owners.get(a) == p {
				seg.owners.set(a, nil)
			}
		}
		seg.ports--
		if seg.ports == 0 && seg.vni.Load() == 0 && f.segs[seg.name] == seg {
			delete(f.segs, seg.name)
		}
	})
}

// Owner returns the name of the port that owns addr on network.
func (f *Fabric) Owner(network string, addr netip.Addr) (string, bool) {
	f.mu.Lock()
	seg := f.segs[network]
	f.mu.Unlock()
	if seg == nil {
		return "", false
	}
	p := seg.owners.get(addr)
	if p == nil {
		return "", false
	}
	return p.name, true
}
