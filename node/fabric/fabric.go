// Package fabric carries packets between the interfaces attached to the
// virtual networks run by this labd. A network is a routed IP segment with no
// link layer: the fabric knows which interface owns each address and delivers
// a packet sent to a next hop straight to that interface's host.
package fabric

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/labnet-dev/labnet/stack"
)

// Fabric holds the segments of this labd, by network resource name.
type Fabric struct {
	mu   sync.Mutex
	segs map[string]*Segment
}

// New returns an empty fabric.
func New() *Fabric { return &Fabric{segs: map[string]*Segment{}} }

// Segment is one virtual network on this labd.
type Segment struct {
	name   string
	owners atomic.Pointer[map[netip.Addr]*Port] // copy-on-write: read on every packet

	mu    sync.Mutex // serialises writers of owners and ports
	ports int

	delivered, noOwner atomic.Uint64
}

// Port is an interface's attachment to a segment. It implements stack.Link.
type Port struct {
	seg   *Segment
	name  string
	addrs []netip.Addr
	recv  func(pkt []byte)
	f     *Fabric
	once  sync.Once
}

// Attach connects an interface owning addrs to network. recv is called with
// every packet addressed to the interface; it must not block and takes
// ownership of the packet.
func (f *Fabric) Attach(network, name string, addrs []netip.Addr, recv func(pkt []byte)) (*Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seg := f.segs[network]
	if seg == nil {
		seg = &Segment{name: network}
		empty := map[netip.Addr]*Port{}
		seg.owners.Store(&empty)
		f.segs[network] = seg
	}
	seg.mu.Lock()
	defer seg.mu.Unlock()
	old := *seg.owners.Load()
	for _, a := range addrs {
		if o := old[a]; o != nil {
			return nil, fmt.Errorf("fabric: %s: address %v already owned by %s", network, a, o.name)
		}
	}
	p := &Port{seg: seg, name: name, addrs: append([]netip.Addr(nil), addrs...), recv: recv, f: f}
	next := make(map[netip.Addr]*Port, len(old)+len(addrs))
	for a, o := range old {
		next[a] = o
	}
	for _, a := range addrs {
		next[a] = p
	}
	seg.owners.Store(&next)
	seg.ports++
	return p, nil
}

// Send delivers pkt to the port that owns nextHop (stack.Link). It takes
// ownership of pkt unless it returns an error.
func (p *Port) Send(nextHop netip.Addr, pkt []byte) error {
	dst := (*p.seg.owners.Load())[nextHop]
	if dst == nil {
		p.seg.noOwner.Add(1)
		return stack.ErrHostUnreachable
	}
	p.seg.delivered.Add(1)
	dst.recv(pkt)
	return nil
}

// Detach removes the port from its segment; the segment goes when its last
// port does. It is idempotent.
func (p *Port) Detach() {
	p.once.Do(func() {
		f, seg := p.f, p.seg
		f.mu.Lock()
		defer f.mu.Unlock()
		seg.mu.Lock()
		defer seg.mu.Unlock()
		old := *seg.owners.Load()
		next := make(map[netip.Addr]*Port, len(old))
		for a, o := range old {
			if o != p {
				next[a] = o
			}
		}
		seg.owners.Store(&next)
		seg.ports--
		if seg.ports == 0 && f.segs[seg.name] == seg {
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
	p := (*seg.owners.Load())[addr]
	if p == nil {
		return "", false
	}
	return p.name, true
}
