package tcp

import "github.com/labnet-dev/labnet/stack"

// Batched input: segments that arrive together are ACKed together.
//
// A stack drains its receive queue in batches (as a NIC driver drains its
// ring under NAPI) and tells its transports where each batch begins and
// ends (stack.BatchTransport, which Protocol is: New registers it).
// Within a batch, in-order data is not ACKed every second segment but
// once, at the end of the batch: a stretch ACK, as Linux sends for a train
// that GRO coalesced into one packet. RFC 5681 §4.2 and RFC
// 9293 §3.8.6.3 say an ACK SHOULD be generated for at least every second
// full-sized segment; we deviate on purpose, as Linux does, because under
// bulk load half of all packets are ACKs, each one costs the receiver a
// packet to build and send and the sender one to take in, and one ACK for
// a batch carries the same information. What the RFCs require is kept: an
// ACK at once for out-of-order data and for data that fills a hole (RFC
// 5681 §4.2), never more than the MUST's 500 ms (a batch is one pass over
// a queue), and a single segment still waits for the delayed-ACK timer. A
// batch ACKs at least every 64 KiB (less for a small receive buffer), so the sender's clock keeps
// ticking within a long batch, and the batches themselves are small while
// a flow is small: only what arrived while the host was busy.

// maxStretch is the most received data a batch leaves unacknowledged: as
// much as one GRO packet holds, and no more than a quarter of the receive
// buffer, so that a small window still gets ACKs within the batch.
const maxStretch = 64 << 10

var _ stack.BatchTransport = (*Protocol)(nil)

func (e *endpoint) stretchLimit() int { return min(maxStretch, e.rcvBuf.cap()/4) }

// BeginBatch tells TCP that the segments delivered until EndBatch arrived
// together (stack.BatchTransport). BeginBatch and EndBatch come in pairs
// from the goroutine that drains the stack's receive queue.
func (p *Protocol) BeginBatch() {
	p.ackMu.Lock()
	p.batching.Store(true)
	p.ackMu.Unlock()
}

// EndBatch ends a batch: every connection that received data in it and
// has not yet ACKed it does so now (or, for a single segment, arms the
// delayed ACK): the stack's end-of-batch hook.
func (p *Protocol) EndBatch() {
	p.ackMu.Lock()
	p.batching.Store(false) // with the list taken: nothing is queued after
	eps := p.ackLater
	p.ackLater = p.ackSpare[:0]
	p.ackMu.Unlock()
	for _, e := range eps {
		e.mu.Lock()
		e.ackQueued = false
		switch {
		case e.state == stateClosed || e.ackPending == 0:
		case e.ackPending == 1:
			e.armDelack()
		default:
			e.sendACK()
		}
		e.unlock()
	}
	clear(eps)
	p.ackSpare = eps
}

// ackInBatch reports whether an ACK for the data just received can wait
// for the end of the batch, and if so queues e for it. Called with e.mu
// held.
// Segments for this host's own addresses arrive on the sender's goroutine,
// so a batch may end while one is being taken in: the batch is checked
// again under ackMu, which EndBatch holds to end it.
func (e *endpoint) ackInBatch() bool {
	p := e.p
	if !p.batching.Load() || e.rcvNxt.diff(e.lastAckSent) >= e.stretchLimit() {
		return false
	}
	if e.ackQueued {
		return true // EndBatch has yet to reach e (it takes e.mu to)
	}
	p.ackMu.Lock()
	defer p.ackMu.Unlock()
	if !p.batching.Load() {
		return false
	}
	e.ackQueued = true
	p.ackLater = append(p.ackLater, e)
	return true
}
