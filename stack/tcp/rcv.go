package tcp

import (
	"github.com/labnet-dev/labnet/stack/wire"
)

// handle processes a segment for this connection: RFC 9293 §3.10.7.3
// (SYN-SENT) and §3.10.7.4 (every other state), with RFC 5961's checks
// and RFC 7323's PAWS.
func (e *endpoint) handle(seg *segment) {
	e.mu.Lock()
	defer e.unlock()
	e.lastRecv = e.now()
	e.keepProbes = 0
	switch e.state {
	case stateClosed:
		return
	case stateSynSent:
		e.handleSynSent(seg)
		return
	}

	// First: sequence number acceptable? (§3.10.7.4, the four cases) with
	// PAWS first (RFC 7323 §5.3).
	if e.tsOK && seg.opts.TimestampsOK && !seg.has(wire.TCPFlagRST) && int32(seg.opts.TSVal-e.tsRecent) < 0 {
		e.sendACK()
		return
	}
	// A retransmitted SYN in SYN-RECEIVED lies before RCV.NXT and would
	// fail the acceptance test: answer it with the SYN-ACK again (RFC 9293
	// §3.5 Figure 8; Linux does the same).
	if e.state == stateSynReceived && e.listener != nil && seg.flags&(wire.TCPFlagSYN|wire.TCPFlagACK|wire.TCPFlagRST) == wire.TCPFlagSYN && seg.seq == e.irs {
		e.sendSegment(wire.TCPFlagSYN|wire.TCPFlagACK, e.iss, 0)
		return
	}
	if !e.acceptable(seg) {
		if !seg.has(wire.TCPFlagRST) {
			e.sendACK()
			// TIME-WAIT: a retransmission of the peer's FIN, which lies
			// before RCV.NXT and so is never acceptable, restarts the 2 MSL
			// timeout ("eighth" step; Linux does the same).
			if e.state == stateTimeWait && seg.has(wire.TCPFlagFIN) && seg.seq.add(seg.len()) == e.rcvNxt {
				e.enterTimeWait()
			}
		}
		return
	}
	// RFC 7323 §4.3: remember the timestamp of the segment that covers the
	// last ACK we sent.
	if e.tsOK && seg.opts.TimestampsOK && seg.seq.leq(e.lastAckSent) && int32(seg.opts.TSVal-e.tsRecent) >= 0 {
		e.tsRecent = seg.opts.TSVal
	}

	// Second: RST (RFC 5961 §3.2: only an exact match resets; anything
	// else in the window gets a challenge ACK).
	if seg.has(wire.TCPFlagRST) {
		if seg.seq != e.rcvNxt {
			e.sendACK()
			return
		}
		switch e.state {
		case stateSynReceived:
			if e.listener != nil {
				e.closeLocked(errRefused) // back to LISTEN: the listener forgets it
				return
			}
			e.closeLocked(errRefused)
		case stateClosing, stateLastAck, stateTimeWait:
			e.closeLocked(nil)
		default:
			e.closeLocked(errReset)
		}
		return
	}

	// Fourth: SYN in a synchronized state (RFC 5961 §4.2: challenge ACK).
	if seg.has(wire.TCPFlagSYN) {
		e.sendACK()
		return
	}

	// Fifth: ACK.
	if !seg.has(wire.TCPFlagACK) {
		return
	}
	if e.state == stateSynReceived {
		if !(e.sndUna.lt(seg.ack) && seg.ack.leq(e.sndNxt)) {
			e.p.sendReset(seg)
			return
		}
		e.sndUna = seg.ack
		e.sndWnd = int(seg.wnd) << e.sndWscale
		e.maxSndWnd = max(e.maxSndWnd, e.sndWnd)
		e.sndWl1, e.sndWl2 = seg.seq, seg.ack
		e.backoff = 0
		e.stopRTX()
		e.established()
	}
	if !e.processAck(seg) {
		return
	}

	// Seventh: the data.
	if len(seg.data) > 0 {
		if e.appClosed && seg.seq.add(len(seg.data)).gt(e.rcvNxt) {
			// New data for a connection the application has closed has
			// nobody to read it: reset (RFC 2525 §2.17; RFC 9293 §3.6
			// allows it, and Linux does so), so the peer learns the data
			// was not delivered.
			e.sendSegment(wire.TCPFlagRST|wire.TCPFlagACK, e.sndNxt, 0)
			e.p.stats.resetsSent.Add(1)
			e.closeLocked(errReset)
			return
		}
		if e.state.canReceive() {
			e.receiveData(seg)
		} else {
			// Data after the peer's FIN or after we shut reading: ACK it
			// away (RFC 9293 §3.10.7.4 "seventh", CLOSE-WAIT and later).
			e.sendACK()
		}
	}

	// Eighth: FIN. One that arrived beyond a hole is processed when the
	// data before it is in, whichever segment brings that.
	if seg.has(wire.TCPFlagFIN) {
		fin := seg.seq.add(len(seg.data))
		if !e.peerFinSeen {
			e.peerFinSeen, e.peerFinSeq = true, fin
		}
		if len(seg.data) == 0 && fin.gt(e.rcvNxt) {
			// RFC 5681 §4.2: an out-of-order segment, the FIN included,
			// is answered at once with a duplicate ACK, which tells the
			// sender about the hole before it.
			e.sendACK()
		}
	}
	e.maybeFin()
	e.output()
}

// acceptable is the segment acceptance test, RFC 9293 §3.10.7.4.
func (e *endpoint) acceptable(seg *segment) bool {
	wnd := e.rcvWindowForCheck()
	n := seg.len()
	switch {
	case n == 0 && wnd == 0:
		return seg.seq == e.rcvNxt
	case n == 0:
		return seg.seq.inWindow(e.rcvNxt, wnd)
	case wnd == 0:
		return false
	default:
		return seg.seq.inWindow(e.rcvNxt, wnd) || seg.seq.add(n-1).inWindow(e.rcvNxt, wnd)
	}
}

// rcvWindowForCheck is RCV.WND as the peer knows it: up to the right edge
// we advertised (at least what is free), so that data the peer may send is
// accepted.
func (e *endpoint) rcvWindowForCheck() int {
	w := e.rcvAdvEdge.diff(e.rcvNxt)
	return max(w, 0)
}

// processAck is the fifth check for synchronized states. It returns false
// when processing of the segment stops.
func (e *endpoint) processAck(seg *segment) bool {
	ack := seg.ack
	// RFC 5961 §5.2: an ACK outside [SND.UNA - MAX.SND.WND, SND.NXT] gets
	// a challenge ACK and is dropped.
	if ack.gt(e.sndNxt) {
		e.sendACK()
		return false
	}
	if ack.lt(e.sndUna.add(-max(e.maxSndWnd, 1))) {
		e.sendACK()
		return false
	}
	if ack.gt(e.sndUna) {
		e.ackNewData(seg)
	} else if ack == e.sndUna {
		e.maybeDupAck(seg)
	}
	// Window update (§3.10.7.4: SND.WL1 < SEG.SEQ, or equal and SND.WL2 =<
	// SEG.ACK).
	if e.sndWl1.lt(seg.seq) || (e.sndWl1 == seg.seq && e.sndWl2.leq(ack)) {
		e.sndWnd = int(seg.wnd) << e.sndWscale
		e.maxSndWnd = max(e.maxSndWnd, e.sndWnd)
		e.sndWl1, e.sndWl2 = seg.seq, ack
		if e.sndWnd > 0 && e.persisting {
			e.stopPersist()
		}
	}
	if e.sackOK && len(seg.opts.SACK) > 0 {
		for _, b := range seg.opts.SACK {
			e.sb.add(b, e.sndUna, e.sndNxt)
		}
	}
	e.checkRecoveryStart(seg)

	switch e.state {
	case stateFinWait1:
		if e.finAcked() {
			e.state = stateFinWait2
			e.armFinWait2()
		}
	case stateClosing:
		if e.finAcked() {
			e.enterTimeWait()
		}
	case stateLastAck:
		if e.finAcked() {
			e.closeLocked(nil)
			return false
		}
	case stateTimeWait:
		// A retransmitted FIN: ACK it and restart the 2 MSL timeout.
		if seg.has(wire.TCPFlagFIN) {
			e.sendACK()
			e.enterTimeWait()
		}
		return false
	}
	return true
}

// receiveData takes in-window data: in order into the receive buffer,
// ahead of a hole into the out-of-order queue (RFC 9293 §3.10.7.4
// "seventh", RFC 5681 §4.2 on when to ACK at once).
func (e *endpoint) receiveData(seg *segment) {
	start, data := seg.seq, seg.data
	// Trim what we already have.
	if start.lt(e.rcvNxt) {
		skip := e.rcvNxt.diff(start)
		if skip >= len(data) {
			e.sendACK()
			return
		}
		data, start = data[skip:], e.rcvNxt
	}
	// Trim what lies beyond the window.
	if end := e.rcvNxt.add(e.rcvWindowForCheck()); start.add(len(data)).gt(end) {
		keep := end.diff(start)
		if keep <= 0 {
			e.sendACK()
			return
		}
		data = data[:keep]
	}
	if start != e.rcvNxt {
		e.insertOOO(start, data)
		e.sendACK() // RFC 5681 §4.2: an out-of-order segment is ACKed at once
		return
	}
	filledHole := len(e.ooo) > 0
	n := e.rcvBuf.write(data)
	e.rcvNxt = e.rcvNxt.add(n)
	e.bytesReceived += uint64(n)
	e.pullOOO()
	notify(e.rcvSignal)
	e.ackPending++
	switch {
	case filledHole:
		e.sendACK() // RFC 5681 §4.2: at once when a hole is filled
	case e.ackInBatch():
		// With the rest of its batch (batch.go).
	case e.ackPending >= 2:
		e.sendACK() // RFC 5681 §4.2: at least every second full segment
	default:
		e.armDelack()
	}
}

// insertOOO keeps data that arrived ahead of rcv.nxt. The queue stays
// sorted and disjoint: bytes already queued are kept, only the new ones
// around them are added.
func (e *endpoint) insertOOO(start seq, data []byte) {
	end := start.add(len(data))
	e.lastOOO = span{start, end}
	piece := func(from, to seq) oooSegment {
		return oooSegment{from, data[from.diff(start):to.diff(start)]}
	}
	out := make([]oooSegment, 0, len(e.ooo)+1)
	cur := start
	for _, s := range e.ooo {
		sEnd := s.start.add(len(s.data))
		switch {
		case sEnd.leq(cur):
		case s.start.geq(end):
			if cur.lt(end) {
				out = append(out, piece(cur, end))
				cur = end
			}
		default:
			if cur.lt(s.start) {
				out = append(out, piece(cur, s.start))
			}
			cur = maxSeq(cur, sEnd)
		}
		out = append(out, s)
	}
	if cur.lt(end) {
		out = append(out, piece(cur, end))
	}
	e.ooo = out
	e.oooBytes = 0
	for _, s := range e.ooo {
		e.oooBytes += len(s.data)
	}
}

// pullOOO moves queued segments that now continue the stream.
func (e *endpoint) pullOOO() {
	for len(e.ooo) > 0 {
		s := e.ooo[0]
		if s.start.gt(e.rcvNxt) {
			break
		}
		e.ooo = e.ooo[1:]
		e.oooBytes -= len(s.data)
		skip := e.rcvNxt.diff(s.start)
		if skip < len(s.data) {
			n := e.rcvBuf.write(s.data[skip:])
			e.rcvNxt = e.rcvNxt.add(n)
			e.bytesReceived += uint64(n)
		}
	}
	if len(e.ooo) == 0 {
		e.ooo = nil
	}
}

// maybeFin processes the peer's FIN once everything before it arrived
// (RFC 9293 §3.10.7.4 "eighth").
func (e *endpoint) maybeFin() {
	if !e.peerFinSeen || e.peerFin || e.rcvNxt != e.peerFinSeq {
		return
	}
	e.peerFin = true
	e.rcvNxt = e.rcvNxt.add(1)
	notify(e.rcvSignal)
	e.sendACK()
	switch e.state {
	case stateSynReceived, stateEstablished:
		e.state = stateCloseWait
	case stateFinWait1:
		if e.finAcked() {
			e.enterTimeWait()
		} else {
			e.state = stateClosing
		}
	case stateFinWait2:
		e.enterTimeWait()
	}
}

// handleSynSent is RFC 9293 §3.10.7.3.
func (e *endpoint) handleSynSent(seg *segment) {
	ackOK := false
	if seg.has(wire.TCPFlagACK) {
		if seg.ack.leq(e.iss) || seg.ack.gt(e.sndNxt) {
			if !seg.has(wire.TCPFlagRST) {
				e.p.sendReset(seg)
			}
			return
		}
		ackOK = true
	}
	if seg.has(wire.TCPFlagRST) {
		if ackOK {
			e.closeLocked(errRefused)
		}
		return
	}
	if !seg.has(wire.TCPFlagSYN) {
		return
	}
	e.irs = seg.seq
	e.rcvNxt = seg.seq.add(1)
	e.rcvAdvEdge = e.rcvNxt
	e.negotiate(seg)
	e.sndWl1, e.sndWl2 = seg.seq, seg.ack
	if ackOK {
		e.sndUna = seg.ack
		e.sndWnd = int(seg.wnd) // unscaled on a SYN
		e.maxSndWnd = e.sndWnd
		e.stopRTX()
		e.backoff = 0
		e.established()
		e.sendACK()
		e.output()
		return
	}
	// Simultaneous open (§3.5, Figure 7): SYN-RECEIVED, send SYN-ACK.
	e.state = stateSynReceived
	e.sndWnd = int(seg.wnd)
	e.sendSegment(wire.TCPFlagSYN|wire.TCPFlagACK, e.iss, 0)
	e.armRTX()
}
