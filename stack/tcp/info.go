package tcp

import (
	"net/netip"
	"slices"
	"time"
)

// Info is a snapshot of a connection, what `labctl connections` (like
// ss -ti) shows.
type Info struct {
	State                        string
	Local, Remote                netip.AddrPort
	ISS, IRS                     uint32
	SndUna, SndNxt, RcvNxt       uint32
	SndWnd, RcvWnd               int
	SndWscale, RcvWscale         uint8
	MSS, Cwnd, Ssthresh          int
	SRTT, RTTVar, RTO            time.Duration
	Retransmits                  uint64
	Timeouts, Recoveries         uint64 // RTO expiries; fast recoveries entered
	CongestionControl            string
	BytesSent, BytesAcked        uint64
	BytesReceived                uint64
	SendQueue, RecvQueue         int
	SACK, Timestamps, InRecovery bool
}

func (e *endpoint) info() Info {
	e.mu.Lock()
	defer e.release()
	return Info{
		State: e.state.String(), Local: e.local, Remote: e.remote,
		ISS: uint32(e.iss), IRS: uint32(e.irs),
		SndUna: uint32(e.sndUna), SndNxt: uint32(e.sndNxt), RcvNxt: uint32(e.rcvNxt),
		SndWnd: e.sndWnd, RcvWnd: max(e.rcvAdvEdge.diff(e.rcvNxt), 0),
		SndWscale: e.sndWscale, RcvWscale: e.rcvWscale,
		MSS: e.mss, Cwnd: e.cwnd, Ssthresh: min(e.ssthresh, 1<<30),
		SRTT: e.srtt, RTTVar: e.rttvar, RTO: e.rto,
		Retransmits: e.retransmits, Timeouts: e.timeouts, Recoveries: e.recoveries, CongestionControl: e.cc.name(),
		BytesSent: e.bytesSent, BytesAcked: e.bytesAcked, BytesReceived: e.bytesReceived,
		SendQueue: e.sndBuf.len(), RecvQueue: e.rcvBuf.len(),
		SACK: e.sackOK, Timestamps: e.tsOK, InRecovery: e.inRecovery,
	}
}

// Info describes the connection.
func (c *Conn) Info() Info { return c.e.info() }

// Connections lists every connection and listener, sorted by local then
// remote address.
func (p *Protocol) Connections() []Info {
	p.mu.RLock()
	eps := make([]*endpoint, 0, len(p.conns))
	for _, e := range p.conns {
		eps = append(eps, e)
	}
	var out []Info
	for a := range p.listeners {
		out = append(out, Info{State: stateListen.String(), Local: a})
	}
	p.mu.RUnlock()
	for _, e := range eps {
		out = append(out, e.info())
	}
	slices.SortFunc(out, func(a, b Info) int {
		if c := a.Local.Compare(b.Local); c != 0 {
			return c
		}
		return a.Remote.Compare(b.Remote)
	})
	return out
}
