package tcp

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

var (
	errReset    = syscall.ECONNRESET
	errRefused  = syscall.ECONNREFUSED
	errTimedOut = syscall.ETIMEDOUT
	errHostDown = errors.New("host stopped")
	errClosed   = errors.New("use of closed network connection")
)

// endpoint is one connection: the TCB of RFC 9293 §3.3.1. Every field is
// guarded by mu. Packets it builds while locked are queued in out and sent
// by unlock, so that no lock is held while the stack delivers (a connection
// to this host's own address loops straight back into HandlePacket). mu is
// released by unlock or release only, never directly: they also forget the
// time read while it was held (now).
type endpoint struct {
	p       *Protocol
	mu      sync.Mutex
	nowT    time.Time // the clock, read once per hold of mu
	nowOK   bool
	removed atomic.Bool // gone from the demultiplexer (Protocol.last may still hold it)

	state         state
	local, remote netip.AddrPort
	listener      *Listener // passive open, until accepted
	// path is the route to the peer, resolved when the connection is made
	// and again only when the routing table changes. It is set once, by
	// newEndpoint, so it is read without mu.
	path *stack.Path

	// Send sequence variables (RFC 9293 §3.3.1).
	iss, sndUna, sndNxt seq
	sndWnd              int // peer's window, scaled
	maxSndWnd           int
	sndWl1, sndWl2      seq
	sndBuf              ring
	finQueued           bool // the application closed its side: FIN after the data
	finAt               seq  // the FIN's sequence number, once queued
	mss                 int  // send MSS: peer's option, our MTU and path MTU
	peerMSS             int
	nodelay             bool

	// Receive sequence variables.
	irs, rcvNxt  seq
	rcvBuf       ring
	ooo          []oooSegment
	oooBytes     int
	lastOOO      span // the most recently received out-of-order block (RFC 2018 §4)
	rcvAdvEdge   seq  // right edge of the window we last advertised
	peerFin      bool // FIN received (in order)
	peerFinSeq   seq
	peerFinSeen  bool // a FIN arrived, maybe beyond a hole
	ackPending   int  // segments received since the last ACK sent
	ackQueued    bool // in Protocol.ackLater, to ACK at the end of the batch
	rcvWscale    uint8
	sndWscale    uint8
	wsOK         bool
	sackOK, tsOK bool
	tsRecent     uint32
	tsOffset     uint32
	lastAckSent  seq
	readShut     bool
	appClosed    bool // Close was called: nobody reads or writes any more

	// Loss recovery (RFC 6675, RFC 6582) and congestion control.
	sb            scoreboard
	inRecovery    bool
	rtoRecovery   bool
	recoveryPoint seq
	highRxt       seq
	renoLostEdge  seq         // without SACK: the one segment NewReno retransmits
	rxts          []rxtRecord // retransmissions of this recovery, for lossTimer
	tlpTimer      stack.Timer
	tlpSent       bool // a tail loss probe is out (RFC 8985 §7)
	tlpSeq        seq  // where the probe started
	tlpLoss       bool // this recovery began because the probe was SACKed
	tlpProbes     uint64
	lossTimer     stack.Timer
	lossRunning   bool
	dupAcks       int
	cc            congestionControl
	cwnd          int
	ssthresh      int

	// RTT estimation (RFC 6298) with Karn's algorithm.
	srtt, rttvar, rto time.Duration
	rttSeq            seq
	rttStart          time.Time
	rttTiming         bool
	backoff           int

	// Timers.
	rtxTimer, persistTimer, delackTimer, keepTimer, waitTimer stack.Timer
	delackArmed                                               bool      // delackTimer is running
	delackDue                                                 time.Time // when the pending ACK is due (armDelack)
	finTimer                                                  stack.Timer
	rtxRunning                                                bool
	persisting                                                bool
	persistBackoff                                            int
	swsOverride                                               bool // the persist timer fired on a small window: send what fits
	keepalive                                                 time.Duration
	keepProbes                                                int
	lastRecv                                                  time.Time

	// The application side.
	err       error // why the connection ended, for Read/Write
	rcvSignal chan struct{}
	sndSignal chan struct{}
	estSignal chan struct{} // closed when the handshake completes or fails
	estClosed bool

	out      [][]byte // built under mu, sent by unlock
	outSpare [][]byte // out's other buffer, while the sender sends one
	sending  bool     // a goroutine is in unlock sending out

	retransmits, bytesSent, bytesAcked, bytesReceived uint64
	timeouts, recoveries                              uint64
}

// rxtRecord is one retransmission: [start, end) sent at at.
type rxtRecord struct {
	start, end seq
	at         time.Time
}

type oooSegment struct {
	start seq
	data  []byte
}

// newEndpoint makes the connection from local to remote along path, whose
// source is local's address.
func newEndpoint(p *Protocol, local, remote netip.AddrPort, path *stack.Path) *endpoint {
	e := &endpoint{
		p: p, local: local, remote: remote, path: path,
		sndBuf:    newRing(p.opts.SendBuffer),
		rcvBuf:    newRing(p.opts.ReceiveBuffer),
		cc:        newCC(p.opts.CongestionControl),
		rto:       time.Second, // RFC 6298 §2.1
		rcvSignal: make(chan struct{}, 1),
		sndSignal: make(chan struct{}, 1),
		estSignal: make(chan struct{}),
		tsOffset:  uint32(time.Now().UnixNano()),
	}
	// RFC 7323 §2.3: the smallest shift that lets the window cover the
	// receive buffer.
	for e.rcvWscale < 14 && p.opts.ReceiveBuffer>>e.rcvWscale > 65535 {
		e.rcvWscale++
	}
	if p.opts.DisableWindowScale {
		e.rcvWscale = 0
	}
	return e
}

// unlock releases the endpoint and sends what it queued, in the order it
// was built. Packets go out after the lock is released (a packet to this
// host's own address comes straight back into the stack, to this
// endpoint), and the application's goroutine and the host's receive loop
// both build segments: whoever finds no send in progress becomes the
// sender and sends until nothing is left, so the other's packets wait
// their turn instead of overtaking. Segments overtaking each other look
// like loss to the receiver (RFC 5681 §3.2: a duplicate ACK) and cost
// spurious fast retransmits.
func (e *endpoint) unlock() {
	if len(e.out) == 0 {
		e.release()
		return
	}
	if e.sending {
		e.release() // the sender, up this goroutine's stack or another's, takes them
		return
	}
	e.sending = true
	for len(e.out) > 0 {
		out := e.out
		e.out = e.outSpare[:0]
		e.release()
		e.p.send(e.path, out)
		clear(out) // the link owns the packets now
		e.mu.Lock()
		e.outSpare = out
	}
	e.sending = false
	e.release()
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// now is the stack clock's time, read once while mu is held: whatever one
// event (a segment, a timer, a call) makes the connection do happens at
// one instant, as Linux reads its clock once per event (tcp_mstamp), and
// a connection sending a train of segments reads the clock once, not once
// per segment for its timestamp.
func (e *endpoint) now() time.Time {
	if !e.nowOK {
		e.nowT, e.nowOK = e.p.s.Now(), true
	}
	return e.nowT
}

// release unlocks mu without sending (see unlock), forgetting now's time.
func (e *endpoint) release() {
	e.nowOK = false
	e.mu.Unlock()
}

// tsVal is our timestamp clock: milliseconds (RFC 7323 §5.4 asks for a tick
// between 1ms and 1s) plus a random per-connection offset.
func (e *endpoint) tsVal() uint32 {
	return uint32(e.now().UnixMilli()) + e.tsOffset
}

// headerMSS is the MSS our MTU allows: MTU minus the IP and TCP headers
// (RFC 9293 §3.7.1).
func headerMSS(remote netip.Addr, mtu int) int {
	return mtu - stack.Headroom(remote) - wire.TCPMinHeaderLen
}

// rcvWindow is the window to advertise: free receive buffer, never moving
// the right edge left (RFC 9293 §3.8.6: "shrinking the window" is strongly
// discouraged) and moving it right only by a useful amount (receiver SWS
// avoidance, §3.8.6.2.2).
func (e *endpoint) rcvWindow() int {
	free := max(0, e.rcvBuf.free()-e.oooBytes)
	free = min(free, 65535<<e.rcvWscale)
	old := maxSeq(e.rcvAdvEdge, e.rcvNxt)
	edge := e.rcvNxt.add(free)
	if edge.diff(old) < min(e.rcvBuf.cap()/2, max(e.mss, 536)) {
		return old.diff(e.rcvNxt)
	}
	return free
}

// sendSegment queues a segment [s, s+n) of the send queue with flags. For
// data, n counts bytes; FIN is added when the range reaches the FIN.
func (e *endpoint) sendSegment(flags uint8, s seq, n int) {
	var h wire.TCPHeader
	h.SrcPort, h.DstPort = e.local.Port(), e.remote.Port()
	h.Seq = uint32(s)
	h.Flags = flags
	o := &h.Options
	if flags&wire.TCPFlagSYN != 0 {
		o.MSS = uint16(min(e.ourMSS(), 65535))
		if !e.p.opts.DisableWindowScale && (e.state == stateSynSent || e.wsOK) {
			o.WindowScale, o.WindowScaleOK = e.rcvWscale, true
		}
		o.SACKPermitted = !e.p.opts.DisableSACK && (e.state == stateSynSent || e.sackOK)
		o.TimestampsOK = !e.p.opts.DisableTimestamps && (e.state == stateSynSent || e.tsOK)
	} else {
		o.TimestampsOK = e.tsOK
		// SACK blocks go on segments without data, which is what a
		// receiver with a hole sends; data segments keep their full size.
		if e.sackOK && len(e.ooo) > 0 && n == 0 {
			o.SACK = e.sackBlocks(o.TimestampsOK)
		}
	}
	if o.TimestampsOK {
		o.TSVal, o.TSEcr = e.tsVal(), e.tsRecent
	}
	if flags&wire.TCPFlagACK != 0 {
		h.Ack = uint32(e.rcvNxt)
		wnd := e.rcvWindow()
		e.rcvAdvEdge = e.rcvNxt.add(wnd)
		if flags&wire.TCPFlagSYN != 0 {
			h.Window = uint16(min(wnd, 65535)) // RFC 7323 §2.2: never scaled on a SYN
		} else {
			h.Window = uint16(min(wnd>>e.rcvWscale, 65535))
		}
		e.lastAckSent = e.rcvNxt
		e.ackPending = 0 // a running delayed-ACK timer finds nothing to do
	} else if flags&wire.TCPFlagSYN != 0 {
		h.Window = uint16(min(e.rcvBuf.free(), 65535))
	}
	dataLen := 0
	if flags&(wire.TCPFlagSYN|wire.TCPFlagRST) == 0 && n > 0 {
		dataLen = max(min(n, e.sndBuf.len()-s.diff(e.sndUna)), 0)
		if e.finQueued && dataLen < n && s.add(dataLen) == e.finSeq() {
			h.Flags |= wire.TCPFlagFIN
		}
		if dataLen > 0 && s.add(dataLen) == e.sndUna.add(e.sndBuf.len()) {
			h.Flags |= wire.TCPFlagPSH
		}
	}
	var th [wire.TCPMaxHeaderLen]byte
	hl := h.HeaderLen()
	h.Encode(th[:hl])
	d1, d2 := e.sndBuf.views(s.diff(e.sndUna), dataLen)
	e.bytesSent += uint64(dataLen)
	pkt, b := e.path.BuildPacket(th[:hl], d1, d2)
	wire.TCP(b).SetChecksum(e.local.Addr(), e.remote.Addr())
	e.out = append(e.out, pkt)
}

// ourMSS is the largest segment our interface toward the peer carries.
func (e *endpoint) ourMSS() int {
	mtu := e.path.MTU()
	if mtu == 0 { // no route (yet): assume Ethernet's
		mtu = 1500
	}
	return headerMSS(e.remote.Addr(), mtu)
}

// sendACK queues an ACK now.
func (e *endpoint) sendACK() { e.sendSegment(wire.TCPFlagACK, e.sndNxt, 0) }

// finSeq is the sequence number of our FIN (valid when finQueued): fixed
// when the application closes, as nothing can be written after.
func (e *endpoint) finSeq() seq { return e.finAt }

// finAcked reports whether our FIN has been acknowledged.
func (e *endpoint) finAcked() bool {
	return e.finQueued && e.sndUna.gt(e.finAt)
}

// sackBlocks lists the out-of-order blocks to report, the most recent first
// (RFC 2018 §4), at most 3 with timestamps (40 bytes of options).
func (e *endpoint) sackBlocks(ts bool) []wire.SACKBlock {
	limit := 4
	if ts {
		limit = 3
	}
	var runs []span
	for _, s := range e.ooo {
		end := s.start.add(len(s.data))
		if n := len(runs); n > 0 && runs[n-1].end == s.start {
			runs[n-1].end = end
		} else {
			runs = append(runs, span{s.start, end})
		}
	}
	var out []wire.SACKBlock
	for _, r := range runs {
		if e.lastOOO.start.geq(r.start) && e.lastOOO.start.lt(r.end) {
			out = append(out, wire.SACKBlock{Left: uint32(r.start), Right: uint32(r.end)})
		}
	}
	for i := len(runs) - 1; i >= 0 && len(out) < limit; i-- {
		r := runs[i]
		if len(out) > 0 && seq(out[0].Left) == r.start {
			continue
		}
		out = append(out, wire.SACKBlock{Left: uint32(r.start), Right: uint32(r.end)})
	}
	return out
}

// abort ends the connection with err; with rst it tells the peer.
func (e *endpoint) abort(err error, rst bool) {
	e.mu.Lock()
	if e.state == stateClosed {
		e.release()
		return
	}
	if rst && e.state != stateListen && e.state != stateSynSent && e.state != stateTimeWait {
		e.sendSegment(wire.TCPFlagRST, e.sndNxt, 0)
		e.p.stats.resetsSent.Add(1)
	}
	e.closeLocked(err)
	e.unlock()
}

// closeLocked moves to CLOSED: stop timers, forget the connection, wake the
// application.
func (e *endpoint) closeLocked(err error) {
	if e.err == nil {
		e.err = err
	}
	e.state = stateClosed
	e.stopDelack()
	for _, t := range []stack.Timer{e.rtxTimer, e.persistTimer, e.keepTimer, e.waitTimer, e.finTimer, e.lossTimer, e.tlpTimer} {
		if t != nil {
			t.Stop()
		}
	}
	e.p.remove(e)
	e.signalEstablished()
	notify(e.rcvSignal)
	notify(e.sndSignal)
	if e.listener != nil {
		e.listener.forget(e)
	}
}

func (e *endpoint) signalEstablished() {
	if !e.estClosed {
		e.estClosed = true
		close(e.estSignal)
	}
}
