package tcp

import (
	"time"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// maxRetries bounds retransmissions of one segment before the connection is
// dropped (RFC 9293 §3.8.3's R2; Linux tcp_retries2 = 15).
const maxRetries = 15

// finWait2Timeout bounds FIN-WAIT-2 after the application closed (Linux
// tcp_fin_timeout), so that a peer that never closes leaks nothing.
const finWait2Timeout = 60 * time.Second

// timer starts or restarts one of the endpoint's timers. Each timer field
// always runs the same function: a restart keeps the first one. f is a
// method expression or a literal that captures nothing, so that a restart
// (one per ACK for some timers) allocates no closure.
func (e *endpoint) timer(t *stack.Timer, d time.Duration, f func(*endpoint)) {
	if *t == nil {
		*t = e.p.s.Clock().AfterFunc(d, func() { f(e) })
		return
	}
	(*t).Reset(d)
}

// armRTX (re)starts the retransmission timer with the current RTO (RFC
// 6298 §5.1, §5.3).
func (e *endpoint) armRTX() {
	e.rto = e.computeRTO()
	e.timer(&e.rtxTimer, e.rto, (*endpoint).onRTO)
}

// armRTXIfIdle starts the timer only if it is not running (§5.1).
func (e *endpoint) armRTXIfIdle() {
	if e.rtxTimer == nil || !e.rtxRunning {
		e.armRTX()
		e.rtxRunning = true
	}
}

func (e *endpoint) stopRTX() {
	if e.rtxTimer != nil {
		e.rtxTimer.Stop()
	}
	e.rtxRunning = false
}

// onRTO is the retransmission timeout (RFC 6298 §5.4-5.7, RFC 5681 §3.1
// eqn. 4 and the loss window, RFC 6675 §5.1).
func (e *endpoint) onRTO() {
	e.mu.Lock()
	defer e.unlock()
	e.rtxRunning = false
	if e.state == stateClosed || e.state == stateTimeWait || e.sndUna == e.sndNxt {
		return
	}
	e.backoff++
	switch e.state {
	case stateSynSent, stateSynReceived:
		if e.backoff > synRetries {
			e.closeLocked(errTimedOut)
			return
		}
		flags := uint8(wire.TCPFlagSYN)
		if e.state == stateSynReceived {
			flags |= wire.TCPFlagACK
		}
		e.sendSegment(flags, e.iss, 0)
		e.retransmits++
		e.p.stats.retransmits.Add(1)
		e.armRTX()
		e.rtxRunning = true
		return
	}
	if e.backoff > maxRetries {
		e.sendSegment(wire.TCPFlagRST, e.sndNxt, 0)
		e.closeLocked(errTimedOut)
		return
	}
	now := e.now()
	e.timeouts++
	flight := e.sndNxt.diff(e.sndUna)
	if !e.rtoRecovery {
		e.ssthresh = e.cc.onRTO(e.cwnd, flight, e.mss, now)
	}
	e.cwnd = e.mss // RFC 5681 §3.1: the loss window, one segment
	e.inRecovery, e.rtoRecovery = true, true
	e.recoveryPoint = e.sndNxt
	e.highRxt = e.sndUna
	e.dupAcks = 0
	e.rttTiming = false
	// RFC 6675 §5.1 allows keeping the SACK information across a timeout
	// (a receiver may renege, RFC 2018 §8, but ours never do and Linux
	// keeps it too): only the holes are resent.
	e.rxts = nil
	e.output()
	e.armRTX()
	e.rtxRunning = true
}

// armPersist starts the persist timer for a zero window (RFC 9293
// §3.8.6.1), backing off from the RTO up to 60s.
func (e *endpoint) armPersist() {
	if e.persisting {
		return
	}
	e.persisting = true
	e.persistBackoff = 0
	e.stopRTX()
	e.timer(&e.persistTimer, e.persistInterval(), (*endpoint).onPersist)
}

func (e *endpoint) persistInterval() time.Duration {
	d := max(e.computeRTO(), 200*time.Millisecond)
	for range e.persistBackoff {
		d *= 2
		if d >= 60*time.Second {
			return 60 * time.Second
		}
	}
	return d
}

func (e *endpoint) stopPersist() {
	e.persisting = false
	if e.persistTimer != nil {
		e.persistTimer.Stop()
	}
	// The probe byte, if the peer dropped it, goes again with the data.
	if e.sndNxt.gt(e.sndUna) && !e.finQueued {
		e.sndNxt = e.sndUna
	}
}

// onPersist sends a zero-window probe: one byte beyond the window (RFC 9293
// §3.8.6.1), which the receiver answers with its current window.
func (e *endpoint) onPersist() {
	e.mu.Lock()
	defer e.unlock()
	if !e.persisting || e.state == stateClosed {
		return
	}
	if e.sndWnd > 0 {
		// A window too small for sender SWS avoidance: send what fits.
		e.stopPersist()
		e.swsOverride = true
		e.output()
		e.swsOverride = false
		return
	}
	if e.sndBuf.len() > 0 {
		e.sendSegment(wire.TCPFlagACK, e.sndUna, 1)
		if e.sndNxt == e.sndUna {
			e.sndNxt = e.sndUna.add(1)
		}
	}
	e.persistBackoff++
	e.timer(&e.persistTimer, e.persistInterval(), (*endpoint).onPersist)
}

// armDelack delays an ACK (RFC 9293 §3.8.6.3) until DelayedAck from now.
//
// The timer is not stopped when an ACK goes out, nor moved when it is
// armed again while it runs: either would be a timer operation per
// segment of a bulk flow. It fires when it was first set to, which is no
// later than the ACK is due; onDelack then does nothing when no ACK is
// pending, and sets it again for the rest of the delay when the pending
// ACK is due later. Linux likewise leaves its delayed-ACK timer running
// (inet_csk_clear_xmit_timer).
func (e *endpoint) armDelack() {
	e.delackDue = e.now().Add(e.p.opts.DelayedAck)
	if e.delackArmed {
		return
	}
	e.delackArmed = true
	e.timer(&e.delackTimer, e.p.opts.DelayedAck, (*endpoint).onDelack)
}

func (e *endpoint) onDelack() {
	e.mu.Lock()
	defer e.unlock()
	e.delackArmed = false
	if e.ackPending == 0 || e.state == stateClosed {
		return
	}
	if wait := e.delackDue.Sub(e.now()); wait > 0 {
		e.delackArmed = true
		e.timer(&e.delackTimer, wait, (*endpoint).onDelack)
		return
	}
	e.sendACK()
}

// stopDelack stops the delayed-ACK timer for good (TIME-WAIT, CLOSED).
func (e *endpoint) stopDelack() {
	if e.delackTimer != nil {
		e.delackTimer.Stop()
	}
	e.delackArmed = false
}

// enterTimeWait waits 2*MSL before the connection-id may be reused (RFC
// 9293 §3.6.1).
func (e *endpoint) enterTimeWait() {
	e.state = stateTimeWait
	e.stopDelack()
	for _, t := range []stack.Timer{e.rtxTimer, e.persistTimer, e.keepTimer, e.finTimer, e.lossTimer, e.tlpTimer} {
		if t != nil {
			t.Stop()
		}
	}
	e.rtxRunning = false
	notify(e.rcvSignal)
	notify(e.sndSignal)
	e.timer(&e.waitTimer, e.p.opts.TimeWait, func(e *endpoint) {
		e.mu.Lock()
		defer e.unlock()
		if e.state == stateTimeWait {
			e.closeLocked(nil)
		}
	})
}

// armFinWait2 bounds FIN-WAIT-2 once the application has closed.
func (e *endpoint) armFinWait2() {
	if !e.appClosed {
		return
	}
	e.timer(&e.finTimer, finWait2Timeout, func(e *endpoint) {
		e.mu.Lock()
		defer e.unlock()
		if e.state == stateFinWait2 {
			e.closeLocked(errTimedOut)
		}
	})
}

// keepaliveProbes is how many unanswered probes end the connection (Linux
// tcp_keepalive_probes).
const keepaliveProbes = 9

// armKeepalive schedules the next keepalive check (RFC 9293 §3.8.4).
func (e *endpoint) armKeepalive() {
	if e.keepalive <= 0 {
		if e.keepTimer != nil {
			e.keepTimer.Stop()
		}
		return
	}
	e.timer(&e.keepTimer, e.keepalive, (*endpoint).onKeepalive)
}

// onKeepalive sends <SEQ=SND.UNA-1><ACK=RCV.NXT> after an idle period; the
// peer answers with an ACK if it is still there.
func (e *endpoint) onKeepalive() {
	e.mu.Lock()
	defer e.unlock()
	if e.keepalive <= 0 || !e.state.synchronized() || e.state == stateTimeWait {
		return
	}
	if idle := e.now().Sub(e.lastRecv); idle < e.keepalive {
		// Not idle long enough: check again when it will have been (a
		// whole period from now would probe up to twice too late).
		e.timer(&e.keepTimer, e.keepalive-idle, (*endpoint).onKeepalive)
		return
	}
	if e.keepProbes >= keepaliveProbes {
		e.sendSegment(wire.TCPFlagRST, e.sndNxt, 0)
		e.closeLocked(errTimedOut)
		return
	}
	e.keepProbes++
	e.sendSegment(wire.TCPFlagACK, e.sndUna.add(-1), 0)
	e.timer(&e.keepTimer, max(e.keepalive/4, time.Second), (*endpoint).onKeepalive)
}

// lossTimer detects lost retransmissions, which RFC 6675 alone cannot: a
// retransmission still neither acknowledged nor SACKed a reordering window
// after an RTT is deemed lost and sent again (RFC 8985 §6.2's rule, applied
// to retransmissions only), instead of waiting for the RTO.
func (e *endpoint) armLossTimer() {
	if e.lossRunning {
		return
	}
	e.lossRunning = true
	e.timer(&e.lossTimer, e.reoWindow(), (*endpoint).onLossTimer)
}

// reoWindow is how long a retransmission may go unanswered: an RTT and its
// variation plus a reordering allowance (RFC 8985 §6.2 allows min_RTT/4; a
// lab RTT is microseconds while queues under load add more, so 1ms at
// least), well below the RTO.
func (e *endpoint) reoWindow() time.Duration {
	if e.srtt == 0 {
		return 10 * time.Millisecond
	}
	return e.srtt + 4*e.rttvar + max(e.srtt/4, time.Millisecond)
}

func (e *endpoint) onLossTimer() {
	e.mu.Lock()
	defer e.unlock()
	e.lossRunning = false
	if !e.inRecovery || e.state == stateClosed {
		e.rxts = nil
		return
	}
	now := e.now()
	reo := e.reoWindow()
	lowest, lost := e.highRxt, false
	keep := e.rxts[:0]
	for _, r := range e.rxts {
		switch {
		case r.end.leq(e.sndUna) || e.sb.unsacked(maxSeq(r.start, e.sndUna), r.end) == 0:
			// delivered
		case now.Sub(r.at) >= reo:
			lowest, lost = minSeq(lowest, maxSeq(r.start, e.sndUna)), true
		default:
			keep = append(keep, r)
		}
	}
	e.rxts = keep
	if lost && lowest.lt(e.highRxt) {
		e.highRxt = lowest
		e.output()
	}
	if len(e.rxts) > 0 {
		e.armLossTimer()
	}
}

// armTLP schedules a tail loss probe (RFC 8985 §7.2): when data is in
// flight outside recovery and no ACK comes for about two RTTs, one segment
// is sent to draw a SACK that reveals a lost tail, which otherwise only the
// RTO would recover. At most one probe per flight.
func (e *endpoint) armTLP() {
	if !e.sackOK || e.p.opts.DisableTLP || e.inRecovery || e.tlpSent || e.sndUna == e.sndNxt || e.srtt == 0 || !e.state.synchronized() {
		if e.tlpTimer != nil {
			e.tlpTimer.Stop()
		}
		return
	}
	pto := 2 * e.srtt
	if e.sndNxt.diff(e.sndUna) <= e.mss {
		pto += e.p.opts.DelayedAck // §7.2: the peer may delay its ACK of one segment
	}
	pto = max(pto, time.Millisecond)
	if pto >= e.rto {
		return
	}
	e.timer(&e.tlpTimer, pto, (*endpoint).onTLP)
}

// onTLP sends the probe: new data if the windows allow, else the last
// segment again (§7.3).
func (e *endpoint) onTLP() {
	e.mu.Lock()
	defer e.unlock()
	if e.inRecovery || e.tlpSent || e.sndUna == e.sndNxt || e.persisting || !e.state.synchronized() || e.state == stateTimeWait {
		return
	}
	dataEnd := e.sndUna.add(e.sndBuf.len())
	if unsent := dataEnd.diff(e.sndNxt); unsent > 0 && e.sndUna.add(e.sndWnd).gt(e.sndNxt) {
		n := min(unsent, e.mss, e.sndUna.add(e.sndWnd).diff(e.sndNxt))
		span := n
		if e.finQueued && e.sndNxt.add(n) == dataEnd {
			span++
		}
		e.tlpSeq = e.sndNxt
		e.sendSegment(wire.TCPFlagACK, e.sndNxt, span)
		e.sndNxt = e.sndNxt.add(span)
	} else {
		// The highest segment not yet SACKed: probing one the peer has
		// would tell nothing.
		end := minSeq(e.sndNxt, dataEnd)
		for i := len(e.sb.ranges) - 1; i >= 0; i-- {
			if r := e.sb.ranges[i]; r.start.lt(end) && r.end.geq(end) {
				end = r.start
			}
		}
		start := maxSeq(e.sndUna, end.add(-e.mss))
		if e.finSent() && e.sndNxt == e.finAt.add(1) && start == end {
			start = e.finAt // only the FIN is out
		}
		e.tlpSeq = start
		e.retransmit(start, max(end.diff(start), 0))
	}
	e.tlpSent = true
	e.tlpProbes++
	e.armRTX() // §7.3: the RTO follows the probe
	e.rtxRunning = true
}
