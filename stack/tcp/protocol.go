// Package tcp is the stack's TCP (RFC 9293): the full state machine with
// simultaneous open and close, half-close and TIME-WAIT; RFC 5961's
// protections; ISNs per RFC 6528; MSS and path MTU; window scaling and
// timestamps (RFC 7323); SACK (RFC 2018) with SACK-based loss recovery (RFC
// 6675); RTO per RFC 6298; fast retransmit and recovery (RFC 5681, NewReno
// RFC 6582); CUBIC (RFC 9438) by default; delayed ACKs, Nagle, zero-window
// probing, silly window avoidance and keepalive. Sockets are net.Conn and
// net.Listener.
//
// One protocol concern per file: connect.go (handshake), rcv.go (segment
// arrival), snd.go (output and recovery), timer.go, cc.go, sack.go,
// conn.go (sockets).
package tcp

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// Options configure a Protocol. Zero values take the defaults.
type Options struct {
	// CongestionControl is "cubic" (default) or "newreno".
	CongestionControl string
	// SendBuffer and ReceiveBuffer are per-connection buffer sizes in bytes
	// (default 4 MiB each); the receive buffer bounds the window.
	SendBuffer, ReceiveBuffer int
	// MinRTO bounds the retransmission timeout from below (default 200ms,
	// as Linux; RFC 6298 §2.4 says 1s, a value from slower networks).
	MinRTO time.Duration
	// TimeWait is how long a closed connection stays in TIME-WAIT: 2*MSL
	// (default 60s as Linux; RFC 9293's MSL of 2 minutes gives 4).
	TimeWait time.Duration
	// DelayedAck is the longest an ACK is delayed (default 40ms; RFC 9293
	// §3.8.6.3 requires less than 0.5s).
	DelayedAck time.Duration
	// DisableSACK, DisableTimestamps and DisableWindowScale turn off the
	// options in the SYNs this stack sends and accepts.
	DisableSACK, DisableTimestamps, DisableWindowScale bool
	// DisableTLP turns off tail loss probes (RFC 8985 §7), leaving a lost
	// tail to the RTO (as Linux with net.ipv4.tcp_early_retrans=0).
	DisableTLP bool
}

func (o *Options) defaults() {
	if o.SendBuffer <= 0 {
		o.SendBuffer = 4 << 20
	}
	if o.ReceiveBuffer <= 0 {
		o.ReceiveBuffer = 4 << 20
	}
	if o.MinRTO <= 0 {
		o.MinRTO = 200 * time.Millisecond
	}
	if o.TimeWait <= 0 {
		o.TimeWait = 60 * time.Second
	}
	if o.DelayedAck <= 0 {
		o.DelayedAck = 40 * time.Millisecond
	}
}

// Protocol is TCP on one stack.
type Protocol struct {
	s    *stack.Stack
	opts Options
	isn  *isnGenerator

	mu        sync.RWMutex
	conns     map[fourTuple]*endpoint
	listeners map[netip.AddrPort]*Listener
	closed    bool
	nextPort  uint16

	stats protoStats
	last  atomic.Pointer[endpoint] // the connection of the last segment

	// Batched input (batch.go).
	batching atomic.Bool
	ackMu    sync.Mutex
	ackLater []*endpoint // connections to ACK at the end of the batch
	ackSpare []*endpoint // EndBatch's
}

type protoStats struct {
	segsIn, segsOut, malformed, resetsSent, retransmits atomic.Uint64
	sendErrors                                          atomic.Uint64 // segments IP refused to send
}

// Stats counts what TCP did.
type Stats struct {
	SegmentsIn, SegmentsOut, Malformed, ResetsSent, Retransmits uint64
	// SendErrors counts segments the IP layer refused: no route, larger
	// than the interface's MTU, or the next hop unreachable (as Linux's
	// IP OutNoRoutes and OutDiscards). The connection recovers them as it
	// recovers a loss: by retransmission.
	SendErrors  uint64
	Connections int
}

type fourTuple struct{ local, remote netip.AddrPort }

// New attaches TCP to s.
func New(s *stack.Stack, opts Options) *Protocol {
	opts.defaults()
	p := &Protocol{
		s: s, opts: opts, isn: newISNGenerator(s.Now()),
		conns: map[fourTuple]*endpoint{}, listeners: map[netip.AddrPort]*Listener{},
		nextPort: uint16(49152 + rand.IntN(16384)),
	}
	s.RegisterTransport(wire.ProtoTCP, p)
	return p
}

// Stats returns the protocol's counters.
func (p *Protocol) Stats() Stats {
	p.mu.RLock()
	n := len(p.conns)
	p.mu.RUnlock()
	return Stats{
		SegmentsIn: p.stats.segsIn.Load(), SegmentsOut: p.stats.segsOut.Load(),
		Malformed: p.stats.malformed.Load(), ResetsSent: p.stats.resetsSent.Load(),
		SendErrors:  p.stats.sendErrors.Load(),
		Retransmits: p.stats.retransmits.Load(), Connections: n,
	}
}

var errPortsExhausted = errors.New("no free ephemeral port")

// ephemeralPort picks a free port of the dynamic range (RFC 6335 §6) for a
// connection to remote. Called with p.mu held.
func (p *Protocol) ephemeralPort(local netip.Addr, remote netip.AddrPort) (uint16, error) {
	for range 16384 {
		port := p.nextPort
		p.nextPort++
		if p.nextPort == 0 {
			p.nextPort = 49152
		}
		if _, used := p.conns[fourTuple{netip.AddrPortFrom(local, port), remote}]; used {
			continue
		}
		if p.listeners[netip.AddrPortFrom(local, port)] != nil {
			continue
		}
		return port, nil
	}
	return 0, errPortsExhausted
}

// HandlePacket is the stack.Transport entry: one TCP segment for this host.
func (p *Protocol) HandlePacket(pi stack.PacketInfo, payload []byte) bool {
	t := wire.TCP(payload)
	if t.Check() != nil || !t.ChecksumValid(pi.Src, pi.Dst) {
		p.stats.malformed.Add(1)
		return true
	}
	p.stats.segsIn.Add(1)
	seg := &segment{
		seq: seq(t.Seq()), ack: seq(t.Ack()), flags: t.Flags(), wnd: t.Window(),
		data: t.Payload(),
		src:  netip.AddrPortFrom(pi.Src, t.SrcPort()), dst: netip.AddrPortFrom(pi.Dst, t.DstPort()),
	}
	if !wire.ParseTCPOptions(t.Options(), &seg.opts) {
		p.stats.malformed.Add(1)
		return true
	}
	if e := p.connection(seg.dst, seg.src); e != nil {
		e.handle(seg)
		return true
	}
	if l := p.listener(seg.dst); l != nil {
		l.handleSYN(seg)
		return true
	}
	p.sendReset(seg)
	return true
}

// connection returns the connection from remote to local, or nil.
//
// Bulk traffic is one connection after another segment of it: a one-entry
// cache spares hashing the 4-tuple (map keys of netip values hash slowly).
// It is a receive-side cache, which routes held per connection (Path) do
// not replace; BenchmarkDemux measures what it saves.
func (p *Protocol) connection(local, remote netip.AddrPort) *endpoint {
	if e := p.last.Load(); e != nil && e.local == local && e.remote == remote && !e.removed.Load() {
		return e
	}
	p.mu.RLock()
	e := p.conns[fourTuple{local, remote}]
	p.mu.RUnlock()
	if e != nil {
		p.last.Store(e)
	}
	return e
}

// listener returns the listener for a segment to local: an exact one, else
// one on the family's unspecified address, else one on [::], which takes
// both families (as Linux does with net.ipv6.bindv6only = 0).
func (p *Protocol) listener(local netip.AddrPort) *Listener {
	p.mu.RLock()
	defer p.mu.RUnlock()
	l := p.listeners[local]
	if l == nil && local.Addr().Is4() {
		l = p.listeners[netip.AddrPortFrom(netip.IPv4Unspecified(), local.Port())]
	}
	if l == nil {
		l = p.listeners[netip.AddrPortFrom(netip.IPv6Unspecified(), local.Port())]
	}
	return l
}

// HandleError is the stack.Transport entry for ICMP errors (RFC 5927):
// fragmentation needed lowers the connection's MSS; a hard error during the
// handshake aborts it; otherwise soft errors are remembered for a timeout.
func (p *Protocol) HandleError(ie stack.ICMPError) {
	if len(ie.Quoted) < 8 {
		return
	}
	q := ie.Quoted
	local := netip.AddrPortFrom(ie.Src, uint16(q[0])<<8|uint16(q[1]))
	remote := netip.AddrPortFrom(ie.Dst, uint16(q[2])<<8|uint16(q[3]))
	s := seq(uint32(q[4])<<24 | uint32(q[5])<<16 | uint32(q[6])<<8 | uint32(q[7]))
	p.mu.RLock()
	e := p.conns[fourTuple{local, remote}]
	p.mu.RUnlock()
	if e != nil {
		e.handleICMP(ie, s)
	}
}

// sendReset answers a segment that has no connection (RFC 9293 §3.10.7.1):
// <SEQ=SEG.ACK><CTL=RST> when it carried an ACK, else
// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. A RST is never answered.
func (p *Protocol) sendReset(seg *segment) {
	if seg.flags&wire.TCPFlagRST != 0 {
		return
	}
	h := wire.TCPHeader{SrcPort: seg.dst.Port(), DstPort: seg.src.Port(), Flags: wire.TCPFlagRST}
	if seg.flags&wire.TCPFlagACK != 0 {
		h.Seq = uint32(seg.ack)
	} else {
		h.Ack = uint32(seg.seq.add(seg.len()))
		h.Flags |= wire.TCPFlagACK
	}
	p.writeHeaderOnly(seg.dst.Addr(), seg.src.Addr(), &h)
	p.stats.resetsSent.Add(1)
}

// writeHeaderOnly sends a segment without data outside any connection.
func (p *Protocol) writeHeaderOnly(src, dst netip.Addr, h *wire.TCPHeader) {
	n := h.HeaderLen()
	pkt, b := p.s.NewPacket(src, dst, wire.ProtoTCP, 0, n)
	h.Encode(b)
	wire.TCP(b).SetChecksum(src, dst)
	p.stats.segsOut.Add(1)
	if p.s.WritePacket(dst, pkt) != nil {
		p.stats.sendErrors.Add(1) // a RST or ACK that cannot go is not retried: the peer's next segment asks again
	}
}

// send writes packets built by an endpoint along its path, after its lock
// is released.
func (p *Protocol) send(path *stack.Path, pkts [][]byte) {
	for _, pkt := range pkts {
		p.stats.segsOut.Add(1)
		if path.WritePacket(pkt) != nil {
			p.stats.sendErrors.Add(1)
		}
	}
}

func (p *Protocol) remove(e *endpoint) {
	e.removed.Store(true) // before the map forgets it: the cache checks this
	p.last.CompareAndSwap(e, nil)
	p.mu.Lock()
	if p.conns[fourTuple{e.local, e.remote}] == e {
		delete(p.conns, fourTuple{e.local, e.remote})
	}
	p.mu.Unlock()
}

// Close resets every connection and closes every listener (the host is
// going away). Idempotent.
func (p *Protocol) Close() {
	p.mu.Lock()
	p.closed = true
	var conns []*endpoint
	for _, e := range p.conns {
		conns = append(conns, e)
	}
	var ls []*Listener
	for _, l := range p.listeners {
		ls = append(ls, l)
	}
	p.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for _, e := range conns {
		e.abort(errHostDown, true)
	}
}

// segment is a received segment.
type segment struct {
	seq, ack seq
	flags    uint8
	wnd      uint16
	opts     wire.TCPOptions
	data     []byte
	src, dst netip.AddrPort
}

func (s *segment) has(f uint8) bool { return s.flags&f != 0 }

// len is SEG.LEN: data plus one for SYN and one for FIN.
func (s *segment) len() int {
	n := len(s.data)
	if s.has(wire.TCPFlagSYN) {
		n++
	}
	if s.has(wire.TCPFlagFIN) {
		n++
	}
	return n
}

var _ stack.Transport = (*Protocol)(nil)
