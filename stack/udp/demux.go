package udp

import (
	"encoding/binary"
	"net/netip"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// HandlePacket is the stack's receive path for UDP (stack.Transport). payload
// aliases the packet, which UDP now owns: the datagram's data is queued
// without a copy. It returns false when no socket wants the datagram, and the
// stack answers with port unreachable.
func (p *Protocol) HandlePacket(pi stack.PacketInfo, payload []byte) bool {
	u := wire.UDP(payload)
	if u.Check() != nil {
		// A Length that does not fit the IP payload (RFC 768): silently
		// discarded and counted, as Linux counts a "short packet".
		p.stats.inErrors.Add(1)
		return true
	}
	// RFC 1122 §4.1.3.4: "If a UDP datagram is received with a checksum
	// that is non-zero and invalid, UDP MUST silently discard the
	// datagram"; RFC 8200 §8.1: over IPv6, a zero checksum as well.
	if !u.ChecksumValid(pi.Src, pi.Dst) {
		p.stats.inErrors.Add(1)
		p.stats.inCsumErrors.Add(1)
		return true
	}
	from := netip.AddrPortFrom(pi.Src, u.SrcPort())
	e := p.lookup(pi.Dst, u.DstPort(), from)
	if e == nil {
		// RFC 1122 §4.1.3.1: port unreachable when there is no socket.
		p.stats.noPorts.Add(1)
		return false
	}
	switch e.deliver(datagram{from: from, data: u.Payload()}) {
	case delivered:
		p.stats.inDatagrams.Add(1)
	case queueFull:
		p.stats.inErrors.Add(1)
		p.stats.rcvbufErrors.Add(1)
	case endpointClosed:
		// Closed between lookup and delivery: as if it had been closed
		// before, but too late to send port unreachable for it.
		p.stats.noPorts.Add(1)
	}
	return true
}

// lookup finds the socket for a datagram to local address dst, port port,
// from remote. Like Linux's compute_score, it prefers the most specific
// match: a socket connected to remote over an unconnected one, a bound
// address over a wildcard, a wildcard of the datagram's family over one of
// both families. A socket connected to another peer never matches.
func (p *Protocol) lookup(dst netip.Addr, port uint16, remote netip.AddrPort) *endpoint {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var best *endpoint
	bestScore := 0
	for _, e := range p.ports[port] {
		score := e.score(dst, remote)
		if score > bestScore {
			best, bestScore = e, score
		}
	}
	return best
}

// score rates how well e matches a datagram to dst from remote; 0 is no
// match.
func (e *endpoint) score(dst netip.Addr, remote netip.AddrPort) int {
	score := 1
	switch la := e.local.Addr(); {
	case !la.IsValid(): // both families
	case la.Is4() != dst.Is4():
		return 0
	case la.IsUnspecified():
		score++
	case la == dst:
		score += 2
	default:
		return 0
	}
	if e.remote.IsValid() {
		if e.remote != remote {
			return 0
		}
		score += 4
	}
	return score
}

// HandleError is the stack's ICMP error path for UDP (stack.Transport): the
// error quotes a datagram this host sent, whose ports find the socket.
func (p *Protocol) HandleError(ie stack.ICMPError) {
	if len(ie.Quoted) < 4 {
		return
	}
	// Only the ports are read: the quote may be cut short of the length
	// its header claims, so it is not a datagram wire.UDP would pass.
	local := netip.AddrPortFrom(ie.Src, binary.BigEndian.Uint16(ie.Quoted[0:]))
	remote := netip.AddrPortFrom(ie.Dst, binary.BigEndian.Uint16(ie.Quoted[2:]))
	if ie.TooBig() {
		p.pmtu.update(p.s.Now(), ie.Dst, int(ie.MTU))
	}
	errno, hard := icmpErrno(ie)
	if !hard {
		return
	}
	// RFC 1122 §4.1.3.3: UDP MUST pass ICMP errors to the application.
	// Linux (without IP_RECVERR) does so only for a connected socket, as
	// its pending error (sk_err); an unconnected socket cannot tell which
	// of its sends failed.
	p.mu.RLock()
	var target *endpoint
	for _, e := range p.ports[local.Port()] {
		if e.remote == remote && e.score(local.Addr(), remote) > 0 {
			target = e
			break
		}
	}
	p.mu.RUnlock()
	if target != nil {
		target.setError(errno)
	}
}
