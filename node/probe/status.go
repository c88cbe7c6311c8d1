package probe

import (
	"net/netip"
	"time"
)

// HostStatus is what a host looks like from inside: ip addr, ip route and
// the counters netstat -s shows.
type HostStatus struct {
	Interfaces []InterfaceStatus
	Routes     []RouteStatus
	IP         IPStats
}

// IPStats counts what IP did with packets (stack.Stats).
type IPStats struct {
	Delivered, Forwarded, Malformed, TTLExceeded, NoRoute, HostUnreachable uint64
	NotForUs, TooBig, ICMPSent, ICMPRateLimited, FragmentsDropped          uint64
	UnknownProtocol                                                        uint64
}

// Counters count an interface's packets (stack.Counters).
type Counters struct {
	RxPackets, RxBytes, TxPackets, TxBytes uint64
	RxDropped, TxDropped                   uint64
}

// InterfaceStatus is one interface.
type InterfaceStatus struct {
	Name      string
	Network   string // the network's short id; filled in by the caller
	MTU       int
	Addresses []netip.Prefix
	Counters  Counters
	Impair    ImpairCounters // filled in by the caller, who runs the link
}

// ImpairCounters is what an interface's egress impairments did.
type ImpairCounters struct {
	Dropped, Duplicated, Corrupted, Delayed, Reordered, QueueDropped uint64
}

// RouteStatus is one route. Via is invalid for a connected route.
type RouteStatus struct {
	Destination netip.Prefix
	Via         netip.Addr
	Interface   string
}

// Connected reports whether the route is an interface's own subnet.
func (r RouteStatus) Connected() bool { return !r.Via.IsValid() }

// Status reports h's interfaces, routes and IP counters.
func Status(h Host) HostStatus {
	var out HostStatus
	for _, n := range h.stack.Interfaces() {
		c := n.Counters()
		out.Interfaces = append(out.Interfaces, InterfaceStatus{
			Name: n.Name(), MTU: n.MTU(), Addresses: n.Addresses(),
			Counters: Counters{
				RxPackets: c.RxPackets, RxBytes: c.RxBytes, TxPackets: c.TxPackets, TxBytes: c.TxBytes,
				RxDropped: c.RxDropped, TxDropped: c.TxDropped,
			},
		})
	}
	for _, r := range h.stack.Routes() {
		out.Routes = append(out.Routes, RouteStatus{Destination: r.Dst, Via: r.Via, Interface: r.NIC.Name()})
	}
	ip := h.stack.Stats()
	out.IP = IPStats{
		Delivered: ip.Delivered, Forwarded: ip.Forwarded, Malformed: ip.Malformed,
		TTLExceeded: ip.TTLExceeded, NoRoute: ip.NoRoute, HostUnreachable: ip.HostUnreachable,
		NotForUs: ip.NotForUs, TooBig: ip.TooBig, ICMPSent: ip.ICMPSent,
		ICMPRateLimited: ip.ICMPRateLimited, FragmentsDropped: ip.FragmentsDropped,
		UnknownProtocol: ip.UnknownProtocol,
	}
	return out
}

// Connection is a TCP connection or listener, or a UDP socket (ss -tuna).
type Connection struct {
	Protocol      string // "tcp" or "udp"
	State         string // "LISTEN", "ESTAB" ...; UDP: "UNCONN" or "ESTAB"
	Local, Remote netip.AddrPort
	// TCP is a connection's state (nil for a listener and for UDP).
	TCP *TCPInfo
}

// TCPInfo is a TCP connection's sequence space, windows, timers and
// counters (RFC 9293 §3.3.1 names).
type TCPInfo struct {
	ISS, IRS, SndUna, SndNxt, RcvNxt uint32
	SndWnd, RcvWnd                   int
	SndWscale, RcvWscale             uint8
	MSS, Cwnd, Ssthresh              int
	SRTT, RTTVar, RTO                time.Duration
	Retransmits                      uint64
	CongestionControl                string
	BytesSent, BytesAcked            uint64
	BytesReceived                    uint64
	SendQueue, RecvQueue             int
	SACK, Timestamps                 bool
}

// Connections lists the TCP connections, then the UDP sockets, of h.
func Connections(h Host) []Connection {
	var out []Connection
	for _, c := range h.tcp.Connections() {
		conn := Connection{Protocol: "tcp", State: c.State, Local: c.Local, Remote: c.Remote}
		if c.State != "LISTEN" {
			conn.TCP = &TCPInfo{
				ISS: c.ISS, IRS: c.IRS, SndUna: c.SndUna, SndNxt: c.SndNxt, RcvNxt: c.RcvNxt,
				SndWnd: c.SndWnd, RcvWnd: c.RcvWnd, SndWscale: c.SndWscale, RcvWscale: c.RcvWscale,
				MSS: c.MSS, Cwnd: c.Cwnd, Ssthresh: c.Ssthresh,
				SRTT: c.SRTT, RTTVar: c.RTTVar, RTO: c.RTO,
				Retransmits: c.Retransmits, CongestionControl: c.CongestionControl,
				BytesSent: c.BytesSent, BytesAcked: c.BytesAcked, BytesReceived: c.BytesReceived,
				SendQueue: c.SendQueue, RecvQueue: c.RecvQueue, SACK: c.SACK, Timestamps: c.Timestamps,
			}
		}
		out = append(out, conn)
	}
	for _, s := range h.udp.Sockets() {
		conn := Connection{Protocol: "udp", State: "UNCONN", Local: s.Local, Remote: s.Remote}
		if s.Remote.IsValid() {
			conn.State = "ESTAB"
		}
		out = append(out, conn)
	}
	return out
}
