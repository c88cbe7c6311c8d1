package tcp

import (
	"math"
	"time"
)

// congestionControl grows and shrinks the congestion window. Windows are in
// bytes.
type congestionControl interface {
	name() string
	// init sets the initial window (RFC 6928: IW10).
	init(mss int) (cwnd, ssthresh int)
	// onAck is called for each ACK of new data outside loss recovery.
	onAck(cwnd, ssthresh, acked, mss int, now time.Time, srtt time.Duration) int
	// onCongestion is called on entering fast recovery (RFC 5681 §3.2
	// step 2 / RFC 9438 §4.6) and returns the new ssthresh.
	onCongestion(cwnd, flight, mss int, now time.Time) int
	// onRTO is called on a retransmission timeout (RFC 5681 eqn. 4) and
	// returns the new ssthresh; cwnd becomes one segment.
	onRTO(cwnd, flight, mss int, now time.Time) int
	// onRecoveryEnd is called when fast recovery ends.
	onRecoveryEnd(now time.Time)
}

func newCC(name string) congestionControl {
	if name == "newreno" || name == "reno" {
		return &newReno{}
	}
	return &cubic{}
}

// newReno is RFC 5681's slow start and congestion avoidance, with RFC 6582's
// recovery (the recovery itself is in the sender).
type newReno struct{ bytesAcked int }

func (*newReno) name() string { return "newreno" }

func (*newReno) init(mss int) (int, int) { return initialWindow(mss), math.MaxInt32 }

func initialWindow(mss int) int { return min(10*mss, max(2*mss, 14600)) }

func (r *newReno) onAck(cwnd, ssthresh, acked, mss int, now time.Time, srtt time.Duration) int {
	if cwnd < ssthresh {
		// RFC 5681 §3.1 eqn. 2 with RFC 3465's appropriate byte counting
		// (L = 2 SMSS).
		return cwnd + min(acked, 2*mss)
	}
	// Congestion avoidance: one SMSS per window of data acknowledged.
	r.bytesAcked += acked
	if r.bytesAcked >= cwnd {
		r.bytesAcked -= cwnd
		return cwnd + mss
	}
	return cwnd
}

func (r *newReno) onCongestion(cwnd, flight, mss int, now time.Time) int {
	r.bytesAcked = 0
	return max(flight/2, 2*mss) // RFC 5681 eqn. 4
}

func (r *newReno) onRTO(cwnd, flight, mss int, now time.Time) int {
	r.bytesAcked = 0
	return max(flight/2, 2*mss)
}

func (*newReno) onRecoveryEnd(time.Time) {}

// cubic is CUBIC, RFC 9438, with windows in segments as the RFC writes them.
type cubic struct {
	wMax       float64   // window before the last reduction (§4.6)
	k          float64   // seconds until the window is back at wMax (eqn. 2)
	epoch      time.Time // start of the current congestion avoidance stage
	cwndEpoch  float64   // cwnd at the start of the stage
	wEst       float64   // Reno-friendly estimate (§4.3)
	ackedBytes int
}

const (
	cubicC    = 0.4 // RFC 9438 §5
	cubicBeta = 0.7
)

func (*cubic) name() string { return "cubic" }

func (c *cubic) init(mss int) (int, int) { return initialWindow(mss), math.MaxInt32 }

func (c *cubic) onAck(cwnd, ssthresh, acked, mss int, now time.Time, srtt time.Duration) int {
	if cwnd < ssthresh {
		return cwnd + min(acked, 2*mss) // slow start, as in Reno (§4.10)
	}
	seg := float64(cwnd) / float64(mss)
	if c.epoch.IsZero() {
		c.epoch = now
		c.cwndEpoch = seg
		c.wEst = seg
		if c.wMax < seg {
			// No reduction yet (or the window grew past the old maximum):
			// start the curve here, as §4.2 allows.
			c.wMax = seg
			c.k = 0
		} else {
			c.k = math.Cbrt((c.wMax - seg) / cubicC) // eqn. 2
		}
	}
	t := now.Sub(c.epoch).Seconds()
	target := cubicC*math.Pow(t+srtt.Seconds()-c.k, 3) + c.wMax // eqn. 1 at t+RTT
	target = min(max(target, seg), 1.5*seg)                     // §4.4: bound the growth
	// §4.3: the Reno-friendly region, alpha = 3(1-beta)/(1+beta).
	alpha := 3 * (1 - cubicBeta) / (1 + cubicBeta)
	if c.wEst >= c.wMax {
		alpha = 1
	}
	c.wEst += alpha * float64(acked) / float64(cwnd)
	c.ackedBytes += acked
	var next float64
	if c.wEst > target {
		next = c.wEst
	} else {
		// §4.4: cwnd grows by (target - cwnd)/cwnd per acknowledged segment.
		next = seg + (target-seg)/seg*float64(acked)/float64(mss)
	}
	return max(cwnd, int(next*float64(mss)))
}

func (c *cubic) onCongestion(cwnd, flight, mss int, now time.Time) int {
	seg := float64(cwnd) / float64(mss)
	// §4.7 fast convergence.
	if seg < c.wMax {
		c.wMax = seg * (1 + cubicBeta) / 2
	} else {
		c.wMax = seg
	}
	c.epoch = time.Time{}
	return max(int(float64(cwnd)*cubicBeta), 2*mss) // §4.6
}

func (c *cubic) onRTO(cwnd, flight, mss int, now time.Time) int {
	ss := c.onCongestion(cwnd, flight, mss, now)
	return ss
}

func (c *cubic) onRecoveryEnd(now time.Time) { c.epoch = time.Time{} }
