package tcp

import (
	"time"

	"github.com/labnet-dev/labnet/stack/wire"
)

// dupThresh is RFC 5681's / RFC 6675's DupThresh.
const dupThresh = 3

// ackNewData handles an ACK that moves SND.UNA forward (RFC 9293
// §3.10.7.4 fifth check, RFC 6298 §5, RFC 5681 §3, RFC 6675 §5).
func (e *endpoint) ackNewData(seg *segment) {
	ack := seg.ack
	acked := ack.diff(e.sndUna)
	now := e.now()
	// Karn's algorithm (RFC 6298 §3): the timed segment counts only if it
	// was not retransmitted, which clears rttTiming.
	if e.rttTiming && ack.gt(e.rttSeq) {
		e.rttTiming = false
		e.rttSample(now.Sub(e.rttStart))
	}
	flight := e.sndNxt.diff(ack) // what stays in flight after this ACK
	dataAcked := min(acked, e.sndBuf.len())
	e.sndBuf.discard(dataAcked)
	e.bytesAcked += uint64(dataAcked)
	e.sndUna = ack
	if e.sndNxt.lt(e.sndUna) {
		e.sndNxt = e.sndUna // after a zero-window probe was accepted
	}
	if e.highRxt.lt(e.sndUna) {
		e.highRxt = e.sndUna
	}
	e.sb.ack(e.sndUna)
	e.backoff = 0
	e.rto = e.computeRTO()
	notify(e.sndSignal)

	if e.inRecovery {
		if ack.geq(e.recoveryPoint) {
			// RFC 6675 §5 / RFC 6582 §3.2 step 3: full acknowledgment ends
			// recovery; cwnd is ssthresh.
			// After an RTO the window regrew from one segment by slow
			// start, and is kept.
			if !e.rtoRecovery {
				e.cwnd = e.ssthresh
			}
			e.inRecovery, e.rtoRecovery = false, false
			e.dupAcks = 0
			e.rxts = nil
			e.cc.onRecoveryEnd(now)
		} else {
			// Partial ACK: RFC 6582 §3.2 step 4 retransmits the first
			// unacknowledged segment now, whatever cwnd allows; with SACK
			// the scoreboard already says what is lost. After an RTO the
			// whole flight is being resent in order (highRxt): nothing
			// goes twice.
			e.dupAcks = 0
			// A peer that negotiated SACK but sends no blocks (gVisor
			// after it half-closes) gets NewReno's treatment.
			if (!e.sackOK || len(e.sb.ranges) == 0) && !e.rtoRecovery {
				e.renoLostEdge = e.sndUna.add(e.mss)
				n := min(e.mss, e.sndNxt.diff(e.sndUna))
				e.retransmit(e.sndUna, n)
				e.highRxt = e.sndUna.add(n)
			}
			if e.rtoRecovery {
				e.cwnd = e.cc.onAck(e.cwnd, e.ssthresh, dataAcked, e.mss, now, e.srtt)
			}
		}
	} else {
		e.dupAcks = 0
		// RFC 7661 §4.2: grow the window only while it is what limits
		// the sender (at least half of it was in flight), so that an
		// application- or receiver-limited flow does not build a window
		// it never tested.
		if 2*(flight+dataAcked) >= e.cwnd {
			e.cwnd = e.cc.onAck(e.cwnd, e.ssthresh, dataAcked, e.mss, now, e.srtt)
		}
	}
	e.cwnd = min(e.cwnd, 1<<30)
	// RFC 6298 §5.2-5.3: stop the timer when all is acknowledged, else
	// restart it.
	if e.sndUna == e.sndNxt {
		e.stopRTX()
	} else {
		e.armRTX()
	}
	if e.tlpSent && ack.gt(e.tlpSeq) {
		e.tlpSent = false // the probe, or what it probed, arrived
	}
	e.armTLP()
}

// maybeDupAck counts duplicate ACKs (RFC 5681 §2: no data, no SYN/FIN,
// same window, data outstanding, ACK = SND.UNA).
func (e *endpoint) maybeDupAck(seg *segment) {
	// The answers to zero-window probes are not duplicates: the probe
	// byte lies beyond the window, and nothing was lost.
	if len(seg.data) > 0 || seg.has(wire.TCPFlagSYN|wire.TCPFlagFIN) || e.sndUna == e.sndNxt || e.persisting {
		return
	}
	if int(seg.wnd)<<e.sndWscale != e.sndWnd && !(e.sackOK && len(seg.opts.SACK) > 0) {
		return
	}
	e.dupAcks++
}

// checkRecoveryStart enters fast recovery on the third duplicate ACK, or
// when the scoreboard says SND.UNA is lost (RFC 6675 §5 "upon the receipt
// of ... or when IsLost(HighACK + 1)"), and sets ssthresh and cwnd (RFC
// 5681 §3.2 steps 2-3, RFC 9438 §4.6).
func (e *endpoint) checkRecoveryStart(seg *segment) {
	if e.inRecovery || e.sndUna == e.sndNxt {
		return
	}
	thresh := dupThresh
	// RFC 5827 early retransmit: with fewer than four segments outstanding
	// and nothing new to send, DupThresh is one less than the outstanding
	// segments, so a small window recovers without waiting for the RTO.
	flight := e.sndNxt.diff(e.sndUna)
	if segs := (flight + e.mss - 1) / e.mss; segs < 4 && e.sndBuf.len() <= flight {
		thresh = max(segs-1, 1)
	}
	lost := e.dupAcks >= thresh
	if e.sackOK && e.sb.lostEdge(e.sndUna, thresh*e.mss).gt(e.sndUna) {
		lost = true
	}
	// RFC 8985 §7.4: the tail loss probe was delivered (SACKed) while data
	// sent before it was not: that data is lost.
	e.tlpLoss = false
	if e.sackOK && e.tlpSent && e.sb.sacked(e.tlpSeq) && e.sb.unsacked(e.sndUna, e.tlpSeq) > 0 {
		lost, e.tlpLoss = true, true
	}
	if !lost {
		return
	}
	now := e.now()
	e.recoveries++
	e.inRecovery = true
	e.recoveryPoint = e.sndNxt
	e.highRxt = e.sndUna
	e.renoLostEdge = e.sndUna.add(e.mss)
	e.ssthresh = e.cc.onCongestion(e.cwnd, flight, e.mss, now)
	e.cwnd = e.ssthresh
	e.rttTiming = false
	// RFC 5681 §3.2 step 2 and RFC 6675 §5 step (4.3): the first lost
	// segment is retransmitted now, whatever cwnd - pipe allows (with pipe
	// still counting the lost segment, the new cwnd often allows nothing).
	if hs, he := e.sb.nextHole(e.sndUna, e.sndNxt); hs.lt(he) {
		n := min(e.mss, he.diff(hs))
		e.retransmit(hs, n)
		e.highRxt = hs.add(n)
	}
}

// lostEdge is the boundary below which unacknowledged, unSACKed data is
// taken as lost.
func (e *endpoint) lostEdge() seq { return minSeq(e.lostEdgeUnclamped(), e.sndNxt) }

func (e *endpoint) lostEdgeUnclamped() seq {
	switch {
	case !e.inRecovery:
		return e.sndUna
	case e.rtoRecovery:
		return maxSeq(e.recoveryPoint, e.sndUna)
	case e.sackOK:
		edge := maxSeq(e.sb.lostEdge(e.sndUna, dupThresh*e.mss), e.sndUna)
		if e.tlpLoss {
			edge = maxSeq(edge, e.tlpSeq)
		}
		if len(e.sb.ranges) == 0 {
			// Recovery without a single SACK block: as NewReno, the one
			// segment at SND.UNA.
			edge = maxSeq(edge, e.renoLostEdge)
		}
		return edge
	default:
		return maxSeq(e.renoLostEdge, e.sndUna)
	}
}

// pipe estimates the bytes in the network (RFC 6675 §4 "pipe"): what is
// outstanding, less what was SACKed, less what is lost and not yet
// retransmitted. Without SACK, each duplicate ACK stands for one segment
// that left the network (the inflation of RFC 5681 §3.2 step 4).
func (e *endpoint) pipe() int {
	if !e.inRecovery {
		return e.sndNxt.diff(e.sndUna)
	}
	outstanding := e.sb.unsacked(e.sndUna, e.sndNxt)
	lostEnd := e.lostEdge()
	rxt := maxSeq(e.highRxt, e.sndUna)
	lostNotRxt := 0
	if rxt.lt(lostEnd) {
		lostNotRxt = e.sb.unsacked(rxt, lostEnd)
	}
	p := outstanding - lostNotRxt
	if !e.sackOK {
		p -= e.dupAcks * e.mss
	}
	return max(p, 0)
}

// output sends what the windows allow: retransmissions of lost data first
// (RFC 6675 §5 NextSeg rule 1), then new data (rule 2), obeying the peer's
// window, Nagle (RFC 9293 §3.7.4) and sender SWS avoidance (§3.8.6.2.1).
// Called with e.mu held.
func (e *endpoint) output() {
	if !e.state.synchronized() || e.state == stateTimeWait {
		return
	}
	sentAny := false
	for {
		wndEdge := e.sndUna.add(e.sndWnd)
		avail := e.cwnd - e.pipe()
		if !e.inRecovery && e.dupAcks > 0 && e.dupAcks < dupThresh {
			// RFC 3042 limited transmit: a new segment for each of the
			// first two duplicate ACKs keeps the ACK clock going.
			avail += e.dupAcks * e.mss
		}
		if e.inRecovery {
			// Rule 1: the first lost, unSACKed, not yet retransmitted hole.
			lost := e.lostEdge()
			from := maxSeq(e.highRxt, e.sndUna)
			if from.lt(lost) && avail > 0 {
				hs, he := e.sb.nextHole(from, lost)
				if hs.lt(he) {
					n := min(e.mss, he.diff(hs))
					e.retransmit(hs, n)
					e.highRxt = hs.add(n)
					sentAny = true
					continue
				}
				e.highRxt = lost
			}
		}
		// Rule 2: new data.
		dataEnd := e.sndUna.add(e.sndBuf.len())
		unsent := dataEnd.diff(e.sndNxt)
		needFin := e.finQueued && e.sndNxt == dataEnd && !e.finSent()
		if (unsent <= 0 && !needFin) || e.persisting {
			break
		}
		if unsent <= 0 {
			// The FIN alone, once every byte has been sent.
			e.sendSegment(wire.TCPFlagACK, e.sndNxt, 1)
			e.sndNxt = e.sndNxt.add(1)
			sentAny = true
			break
		}
		room := wndEdge.diff(e.sndNxt)
		if room <= 0 {
			// Zero window with nothing in flight: probe (RFC 9293 §3.8.6.1).
			if e.sndNxt == e.sndUna {
				e.armPersist()
			}
			break
		}
		if avail <= 0 {
			break
		}
		n := min(unsent, e.mss, room, avail)
		if n < e.mss {
			if n < unsent {
				// Cut short by a window: sender SWS avoidance waits for at
				// least half the largest window the peer offered. With
				// nothing in flight no ACK will come to reopen it (a lost
				// window update would stall us): the persist timer is the
				// override timeout of RFC 9293 §3.8.6.2.1.
				if n < e.maxSndWnd/2 && !e.swsOverride {
					if e.sndNxt == e.sndUna {
						e.armPersist()
					}
					break
				}
			} else if !e.nodelay && e.sndNxt != e.sndUna && !e.finQueued {
				// Nagle: one small segment outstanding at a time.
				break
			}
		}
		span := n
		if e.finQueued && e.sndNxt.add(n) == dataEnd {
			span++ // the FIN rides with the last data
		}
		if !e.rttTiming {
			e.rttTiming, e.rttSeq, e.rttStart = true, e.sndNxt, e.now()
		}
		e.sendSegment(wire.TCPFlagACK, e.sndNxt, span)
		e.sndNxt = e.sndNxt.add(span)
		sentAny = true
	}
	if sentAny && e.sndNxt != e.sndUna {
		e.armRTXIfIdle()
		e.armTLP()
	}
}

// finSent reports whether our FIN has been sent.
func (e *endpoint) finSent() bool {
	return e.finQueued && e.sndNxt.gt(e.finAt)
}

// retransmit resends [s, s+n) (and the FIN if the range covers it).
func (e *endpoint) retransmit(s seq, n int) {
	if e.rttTiming && s.leq(e.rttSeq) {
		e.rttTiming = false // Karn: never time a retransmitted segment
	}
	span := n
	if e.finQueued && s.add(n) == e.finAt && e.finSent() {
		span = n + 1
	}
	e.sendSegment(wire.TCPFlagACK, s, span)
	e.retransmits++
	e.p.stats.retransmits.Add(1)
	// Only fast recovery's retransmissions: after an RTO nothing but the
	// backed-off timer may resend (RFC 6298 §5.5), or a dead peer would
	// get a retransmission every reoWindow.
	if e.inRecovery && !e.rtoRecovery {
		e.rxts = append(e.rxts, rxtRecord{s, s.add(n), e.now()})
		e.armLossTimer()
	}
}

// rttSample folds a measurement into SRTT and RTTVAR (RFC 6298 §2.2-2.3).
func (e *endpoint) rttSample(r time.Duration) {
	if e.srtt == 0 {
		e.srtt, e.rttvar = r, r/2
	} else {
		d := e.srtt - r
		if d < 0 {
			d = -d
		}
		e.rttvar = (3*e.rttvar + d) / 4
		e.srtt = (7*e.srtt + r) / 8
	}
}

// computeRTO is RFC 6298 §2.3 with the minimum of Options.MinRTO and a
// maximum of 60s (§2.5), doubled per backoff (§5.5).
func (e *endpoint) computeRTO() time.Duration {
	rto := time.Second
	if e.srtt > 0 {
		rto = e.srtt + max(time.Millisecond, 4*e.rttvar)
	}
	rto = max(rto, e.p.opts.MinRTO)
	for range e.backoff {
		rto *= 2
		if rto > 60*time.Second {
			break
		}
	}
	return min(rto, 60*time.Second)
}
