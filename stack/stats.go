package stack

import "sync/atomic"

// Stats counts what the IP layer did with packets.
type Stats struct {
	Delivered        uint64 // handed to a protocol on this host
	Forwarded        uint64 // sent on towards another host
	Malformed        uint64 // failed a header or checksum check, or a martian source
	TTLExceeded      uint64 // TTL / hop limit ran out while forwarding
	NoRoute          uint64 // forwarding found no route
	HostUnreachable  uint64 // nobody owns the next hop on its network
	NotForUs         uint64 // addressed elsewhere on a host that does not forward
	TooBig           uint64 // larger than the outgoing interface's MTU
	ICMPSent         uint64 // ICMP / ICMPv6 error messages sent
	ICMPRateLimited  uint64 // ICMP errors suppressed by the rate limit
	FragmentsDropped uint64 // fragments (reassembly is not implemented)
	UnknownProtocol  uint64 // no handler for the protocol / next header
}

type ipStats struct {
	delivered, forwarded, malformed, ttlExceeded, noRoute, hostUnreachable atomic.Uint64
	notForUs, tooBig, icmpSent, icmpRateLimited, fragmentsDropped          atomic.Uint64
	unknownProtocol                                                        atomic.Uint64
}

// Stats returns a snapshot of the IP counters.
func (s *Stack) Stats() Stats {
	st := &s.stats
	return Stats{
		Delivered: st.delivered.Load(), Forwarded: st.forwarded.Load(),
		Malformed: st.malformed.Load(), TTLExceeded: st.ttlExceeded.Load(),
		NoRoute: st.noRoute.Load(), HostUnreachable: st.hostUnreachable.Load(),
		NotForUs: st.notForUs.Load(), TooBig: st.tooBig.Load(),
		ICMPSent: st.icmpSent.Load(), ICMPRateLimited: st.icmpRateLimited.Load(),
		FragmentsDropped: st.fragmentsDropped.Load(), UnknownProtocol: st.unknownProtocol.Load(),
	}
}
