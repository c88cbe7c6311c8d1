package stack

import (
	"fmt"
	"net/netip"
	"sync/atomic"
)

// Link is the interface's wire: the fabric. There is no link layer: the link
// delivers a packet to whichever interface owns nextHop on the network.
type Link interface {
	// Send takes ownership of pkt, a whole IP packet, and carries it to the
	// interface that owns nextHop. It returns ErrHostUnreachable when no
	// interface on the network owns nextHop (the case where ARP or neighbour
	// discovery would fail); on error the link keeps nothing and pkt is the
	// caller's again.
	Send(nextHop netip.Addr, pkt []byte) error
}

// NIC is one interface of a stack. Its link may come after it (SetLink):
// until then the interface is down and what the stack sends through it is
// dropped (DropDown) and counted.
type NIC struct {
	id    int
	name  string
	mtu   int
	stack *Stack
	link  atomic.Pointer[Link] // nil while the interface has no link
	addrs []netip.Prefix       // fixed at creation

	rxPackets, rxBytes, txPackets, txBytes atomic.Uint64
	rxDropped, txDropped                   atomic.Uint64

	taps  atomic.Pointer[tapSet] // nil when untapped
	clock Clock                  // the stack's, for tap timestamps
}

// Name is the interface name, e.g. "eth0".
func (n *NIC) Name() string { return n.name }

// MTU is the link MTU in bytes.
func (n *NIC) MTU() int { return n.mtu }

// Addresses returns the interface's addresses with prefix lengths.
func (n *NIC) Addresses() []netip.Prefix { return append([]netip.Prefix(nil), n.addrs...) }

// CountRxDrop counts a packet for this interface that was dropped before the
// stack saw it (a full queue, say).
func (n *NIC) CountRxDrop() { n.rxDropped.Add(1) }

func (n *NIC) addrOf(v4 bool) (netip.Addr, bool) {
	for _, p := range n.addrs {
		if p.Addr().Is4() == v4 {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// SetLink makes l the interface's wire, replacing the one it had, if any
// (a link may be built after the interface it serves, for it needs the
// interface to receive: Receive). nil takes the interface down. The stack
// calls l from any goroutine from now on.
func (n *NIC) SetLink(l Link) {
	if l == nil {
		n.link.Store(nil)
		return
	}
	n.link.Store(&l)
}

// send hands pkt to the link, counting it. Takes ownership of pkt. A
// packet the link refuses without an error (LinkFate.Drop.Refused: an
// overlay's full queue), or that finds the interface without a link, is
// counted as dropped and send returns nil, as Linux drops what a full or
// down device queue cannot take.
func (n *NIC) send(nextHop netip.Addr, pkt []byte) error {
	size := len(pkt)
	lp := n.link.Load()
	if taps := n.taps.Load(); taps != nil {
		if mask := taps.wants(pkt); mask != 0 {
			return n.sendTapped(taps, mask, lp, nextHop, pkt)
		}
	}
	if fate, err := linkSend(lp, nextHop, pkt); err != nil || fate.Drop.Refused() {
		n.txDropped.Add(1)
		return err
	}
	n.txPackets.Add(1)
	n.txBytes.Add(uint64(size))
	return nil
}

// linkSend gives pkt to the link lp, learning its fate when the link tells
// it; with no link (nil), the packet is dropped as DropDown.
func linkSend(lp *Link, nextHop netip.Addr, pkt []byte) (LinkFate, error) {
	if lp == nil {
		return LinkFate{Drop: DropDown}, nil
	}
	if fl, ok := (*lp).(FateLink); ok {
		return fl.SendFate(nextHop, pkt)
	}
	return LinkFate{}, (*lp).Send(nextHop, pkt)
}

// sendTapped is send while taps watch: they get a copy taken before the
// link owns pkt, stamped with the time it was sent, and what the link did.
func (n *NIC) sendTapped(taps *tapSet, mask uint64, lp *Link, nextHop netip.Addr, pkt []byte) error {
	rec := TapRecord{Time: n.clock.Now(), Seq: tapSeq.Add(1), Dir: TapOut, Packet: append([]byte(nil), pkt...)}
	size := len(pkt)
	fate, err := linkSend(lp, nextHop, pkt)
	rec.Drop, rec.Note = fate.Drop, fate.Note
	if err != nil {
		rec.Drop = DropHostUnreachable
	}
	if err != nil || fate.Drop.Refused() {
		n.txDropped.Add(1)
		taps.emit(rec, mask)
		return err
	}
	n.txPackets.Add(1)
	n.txBytes.Add(uint64(size))
	taps.emit(rec, mask)
	return nil
}

// Counters are an interface's packet and byte counts.
type Counters struct {
	RxPackets, RxBytes, TxPackets, TxBytes uint64
	RxDropped, TxDropped                   uint64
}

// Counters returns a snapshot of the interface's counters.
func (n *NIC) Counters() Counters {
	return Counters{
		RxPackets: n.rxPackets.Load(), RxBytes: n.rxBytes.Load(),
		TxPackets: n.txPackets.Load(), TxBytes: n.txBytes.Load(),
		RxDropped: n.rxDropped.Load(), TxDropped: n.txDropped.Load(),
	}
}

// AddInterface adds an interface with the given addresses (each with its
// subnet's prefix length) and installs their connected routes. link may be
// nil: the interface is down until SetLink gives it one. The stack does not
// validate that addresses are unique across interfaces; the caller does.
func (s *Stack) AddInterface(name string, mtu int, link Link, addrs ...netip.Prefix) (*NIC, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.addInterfaceLocked(name, mtu, addrs)
	if err != nil {
		return nil, err
	}
	n.SetLink(link)
	s.rebuildRoutesLocked()
	return n, nil
}

// addInterfaceLocked checks and adds an interface without a link and
// without rebuilding the routing table (the caller does, once).
func (s *Stack) addInterfaceLocked(name string, mtu int, addrs []netip.Prefix) (*NIC, error) {
	if mtu < 68 {
		return nil, fmt.Errorf("stack %s: interface %s: MTU %d below the IPv4 minimum of 68", s.name, name, mtu)
	}
	for _, a := range addrs {
		if !a.IsValid() {
			return nil, fmt.Errorf("stack %s: interface %s: invalid address %v", s.name, name, a)
		}
		if a.Addr().Is6() && mtu < 1280 {
			return nil, fmt.Errorf("stack %s: interface %s: MTU %d below the IPv6 minimum of 1280", s.name, name, mtu)
		}
	}
	for _, n := range s.nics {
		if n.name == name {
			return nil, fmt.Errorf("stack %s: interface %s exists", s.name, name)
		}
	}
	n := &NIC{id: len(s.nics), name: name, mtu: mtu, stack: s, clock: s.clock, addrs: append([]netip.Prefix(nil), addrs...)}
	s.nics = append(s.nics, n)
	return n, nil
}

// Interfaces returns the stack's interfaces in the order they were added.
func (s *Stack) Interfaces() []*NIC { return append([]*NIC(nil), s.routes.Load().nics...) }
