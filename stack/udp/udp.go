// Package udp is UDP (RFC 768) over the stack's IPv4 and IPv6, with sockets
// that are a net.PacketConn (ListenPacket) or a connected net.Conn (Dial), as
// gVisor's gonet adapters are, so ordinary Go code runs on a virtual host.
//
// The files follow the datagram: udp.go binds ports, demux.go takes
// datagrams and ICMP errors in and finds their socket, endpoint.go queues
// datagrams and sends them, conn.go is the net.Conn / net.PacketConn edge,
// errors.go maps ICMP and stack errors to the errnos Linux reports and keeps
// the path MTUs ICMP teaches, and deadline.go holds the read and write
// deadlines.
//
// Deadlines are wall-clock time, as net.Conn defines them; everything else
// is driven by the stack's packets and clock, and the package starts no
// goroutine of its own.
package udp

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// Ephemeral ports: the IANA dynamic range, RFC 6335 §6.
const (
	ephemeralFirst = 49152
	ephemeralLast  = 65535
)

// Protocol is UDP on one stack. All methods are safe for concurrent use.
type Protocol struct {
	s *stack.Stack

	mu     sync.RWMutex
	ports  map[uint16][]*endpoint // by local port
	closed bool

	pmtu  pmtuCache
	stats stats
}

var _ stack.Transport = (*Protocol)(nil)

// New returns UDP for s and registers it as the stack's handler of IP
// protocol 17.
func New(s *stack.Stack) *Protocol {
	p := &Protocol{s: s, ports: map[uint16][]*endpoint{}}
	p.pmtu.init()
	s.RegisterTransport(wire.ProtoUDP, p)
	return p
}

// Stats counts what UDP did, under the names of Linux's Udp: and Udp6: lines
// in /proc/net/snmp (netstat -su), which RFC 4113's udpIn* counters inspired.
type Stats struct {
	InDatagrams  uint64 // delivered to a socket's queue
	NoPorts      uint64 // no socket for the port: answered with port unreachable
	InErrors     uint64 // dropped: malformed, bad checksum or a full queue (as Linux counts)
	InCsumErrors uint64 // of InErrors: bad checksum (or none over IPv6)
	RcvbufErrors uint64 // of InErrors: the socket's receive queue was full
	OutDatagrams uint64 // handed to IP
}

type stats struct {
	inDatagrams, noPorts, inErrors, inCsumErrors, rcvbufErrors, outDatagrams atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (p *Protocol) Stats() Stats {
	st := &p.stats
	return Stats{
		InDatagrams: st.inDatagrams.Load(), NoPorts: st.noPorts.Load(),
		InErrors: st.inErrors.Load(), InCsumErrors: st.inCsumErrors.Load(),
		RcvbufErrors: st.rcvbufErrors.Load(), OutDatagrams: st.outDatagrams.Load(),
	}
}

// SocketInfo describes an open socket for `labctl connections`.
type SocketInfo struct {
	// Local is the bound address: 0.0.0.0 or [::] for a wildcard ([::] also
	// for a socket bound to both families).
	Local netip.AddrPort
	// Remote is the peer of a connected socket; the zero AddrPort otherwise.
	Remote netip.AddrPort
	// Queued is the bytes waiting to be read (ss's Recv-Q).
	Queued int
}

// Sockets lists the open sockets, ordered by local port, then local and
// remote address.
func (p *Protocol) Sockets() []SocketInfo {
	p.mu.RLock()
	var out []SocketInfo
	for _, eps := range p.ports {
		for _, e := range eps {
			local := e.local
			if !local.Addr().IsValid() {
				local = netip.AddrPortFrom(netip.IPv6Unspecified(), local.Port())
			}
			out = append(out, SocketInfo{Local: local, Remote: e.remote, Queued: e.queuedBytes()})
		}
	}
	p.mu.RUnlock()
	slices.SortFunc(out, func(a, b SocketInfo) int {
		return cmp.Or(
			cmp.Compare(a.Local.Port(), b.Local.Port()),
			a.Local.Addr().Compare(b.Local.Addr()),
			a.Remote.Compare(b.Remote),
		)
	})
	return out
}

// Close closes every socket, as a host that stops does; later ListenPacket
// and Dial calls fail with net.ErrClosed. It is idempotent.
func (p *Protocol) Close() {
	p.mu.Lock()
	p.closed = true
	var all []*endpoint
	for _, eps := range p.ports {
		all = append(all, eps...)
	}
	p.mu.Unlock()
	for _, e := range all {
		e.close()
	}
}

// overlaps reports whether two local addresses could both receive one
// datagram: the same address, or a wildcard of a family that includes the
// other. The invalid Addr is a socket bound to both families.
func overlaps(a, b netip.Addr) bool {
	if !a.IsValid() || !b.IsValid() {
		return true
	}
	if a.Is4() != b.Is4() {
		return false
	}
	return a == b || a.IsUnspecified() || b.IsUnspecified()
}

// conflicts reports whether e may not be bound beside o: their local
// addresses overlap and they would want the same datagrams. Unconnected
// sockets follow bind(2) without SO_REUSEADDR: EADDRINUSE. A connected
// socket may share its local port with unconnected ones and with sockets
// connected elsewhere, as it could on Linux with SO_REUSEADDR set; the most
// specific socket gets each datagram (see lookup).
func conflicts(e, o *endpoint) bool {
	return overlaps(e.local.Addr(), o.local.Addr()) && e.remote == o.remote
}

// bind adds e to the port table. A zero local port takes an ephemeral port
// that no socket uses: a random start, then each port in turn (RFC 6056 §3.3.1,
// "Simple Port Randomization").
func (p *Protocol) bind(e *endpoint) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errProtocolClosed
	}
	if port := e.local.Port(); port != 0 {
		for _, o := range p.ports[port] {
			if conflicts(e, o) {
				return syscall.EADDRINUSE
			}
		}
		p.ports[port] = append(p.ports[port], e)
		return nil
	}
	const n = ephemeralLast - ephemeralFirst + 1
	start := rand.IntN(n)
	for i := range n {
		port := uint16(ephemeralFirst + (start+i)%n)
		if len(p.ports[port]) == 0 {
			e.local = netip.AddrPortFrom(e.local.Addr(), port)
			p.ports[port] = []*endpoint{e}
			return nil
		}
	}
	// Linux says EAGAIN ("resource temporarily unavailable") here, which
	// reads as if a retry would help; EADDRINUSE is what one would see
	// from an explicit bind.
	return syscall.EADDRINUSE
}

// unbind removes e from the port table.
func (p *Protocol) unbind(e *endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	port := e.local.Port()
	eps := slices.DeleteFunc(p.ports[port], func(o *endpoint) bool { return o == e })
	if len(eps) == 0 {
		delete(p.ports, port)
	} else {
		p.ports[port] = eps
	}
}
