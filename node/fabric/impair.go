package fabric

import (
	"container/heap"
	"hash/fnv"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labnet-dev/labnet/stack"
)

// DefaultLimit is how many packets a port's impairments hold back at most
// (delayed or waiting for the rate limit), as netem's default limit of 1000.
// A packet that would be held beyond it is dropped and counted.
const DefaultLimit = 1000

// Impairment degrades what a port sends, as Linux netem does on a link's
// egress. The zero value impairs nothing.
//
// Each packet, in this order:
//
//   - Loss: dropped with this probability (percent, 0-100).
//   - Duplicate: with this probability a copy (a buffer of its own) is sent
//     too; the copy goes through the steps below on its own.
//   - Corrupt: with this probability the packet is replaced by a copy with
//     one random bit flipped at a random offset anywhere in the packet, so
//     that the IP, ICMP, UDP or TCP checksum catches it.
//   - Reorder: with this probability the packet skips Delay and Jitter and
//     goes at once, ahead of the delayed ones (netem's reorder with gap 1;
//     without a delay it changes nothing).
//   - Delay and Jitter: the packet is held for Delay plus a uniform random
//     amount in [-Jitter, +Jitter], at least 0. Packets leave in the order
//     of their release times: in the order sent, unless jitter reorders
//     them (as netem's tfifo does).
//   - Rate: the packet then waits for the link, which sends one packet at a
//     time at Rate bits per second: it arrives when the link would have
//     finished sending it and every packet before it (a serialization-time
//     queue, as netem's rate).
//
// At most Limit packets are held at once; beyond that a packet that would
// be held is dropped (counted as QueueDropped).
type Impairment struct {
	Loss      float64       // percent of packets dropped
	Delay     time.Duration // added to every packet
	Jitter    time.Duration // uniform variation of Delay, +/-
	Duplicate float64       // percent of packets sent twice
	Reorder   float64       // percent of packets sent ahead of delayed ones
	Corrupt   float64       // percent of packets with one bit flipped
	Rate      uint64        // bits per second; 0 is unlimited
	Limit     int           // packets held at most; 0 is DefaultLimit
}

// ImpairCounters count what a port's impairments did, since the port was
// attached, and what the overlay refused of what the port sent: not an
// impairment, but reported wherever a port's egress is.
type ImpairCounters struct {
	Dropped      uint64 // dropped by Loss
	Duplicated   uint64 // copies sent by Duplicate
	Corrupted    uint64 // packets with a bit flipped by Corrupt
	Delayed      uint64 // held back by Delay, Jitter or Rate
	Reordered    uint64 // sent ahead of delayed packets by Reorder
	QueueDropped uint64 // dropped because Limit packets were held already

	// Refused by the overlay when sent (the interface counts them in
	// TxDropped): its queue to the node was full, no overlay path to the
	// node, too big for an overlay datagram, the overlay had stopped.
	OverlayQueueFull, NoRouteToNode, OverlayTooBig, OverlayDown uint64
}

// impairState is a port's current impairment, as Send reads it: the
// probabilities in [0, 1] and the engine that holds packets.
type impairState struct {
	loss, dup, reorder, corrupt float64
	delay, jitter               time.Duration
	rate                        uint64
	limit                       int
	eng                         *engine
}

func compile(im *Impairment, eng *engine) *impairState {
	pr := func(pct float64) float64 {
		if math.IsNaN(pct) || pct <= 0 {
			return 0
		}
		return min(pct, 100) / 100
	}
	s := &impairState{
		loss: pr(im.Loss), dup: pr(im.Duplicate), reorder: pr(im.Reorder), corrupt: pr(im.Corrupt),
		delay: max(im.Delay, 0), jitter: min(max(im.Jitter, 0), math.MaxInt64/4),
		rate: im.Rate, limit: im.Limit, eng: eng,
	}
	if s.limit <= 0 {
		s.limit = DefaultLimit
	}
	return s
}

// SetImpair sets the impairments of everything the port sends from now on;
// nil or the zero Impairment clears them. Packets already held stay held
// and leave when they were due: nothing is lost or restarted.
func (p *Port) SetImpair(im *Impairment) {
	p.impairMu.Lock()
	defer p.impairMu.Unlock()
	if im == nil || *im == (Impairment{}) {
		p.impair.Store(nil)
		if p.eng != nil {
			p.eng.setRate(0) // what is still delayed goes out when due
		}
		return
	}
	if p.eng == nil {
		p.eng = newEngine(p)
	}
	st := compile(im, p.eng)
	p.eng.setRate(st.rate)
	p.impair.Store(st)
}

// Impairment returns the port's current impairments; nil when there are none.
func (p *Port) Impairment() *Impairment {
	st := p.impair.Load()
	if st == nil {
		return nil
	}
	return &Impairment{
		Loss: st.loss * 100, Delay: st.delay, Jitter: st.jitter, Duplicate: st.dup * 100,
		Reorder: st.reorder * 100, Corrupt: st.corrupt * 100, Rate: st.rate, Limit: st.limit,
	}
}

// ImpairCounters returns what the port's impairments did so far, and what
// the overlay refused.
func (p *Port) ImpairCounters() ImpairCounters {
	r := &p.refused
	ic := ImpairCounters{
		OverlayQueueFull: r.queueFull.Load(), NoRouteToNode: r.noRoute.Load(),
		OverlayTooBig: r.tooBig.Load(), OverlayDown: r.down.Load(),
	}
	p.impairMu.Lock()
	eng := p.eng
	p.impairMu.Unlock()
	if eng == nil {
		return ic
	}
	c := &eng.counters
	ic.Dropped, ic.Duplicated, ic.Corrupted = c.dropped.Load(), c.duplicated.Load(), c.corrupted.Load()
	ic.Delayed, ic.Reordered, ic.QueueDropped = c.delayed.Load(), c.reordered.Load(), c.queueDropped.Load()
	return ic
}

// Held is the number of packets the port's impairments hold right now.
func (p *Port) Held() int {
	p.impairMu.Lock()
	eng := p.eng
	p.impairMu.Unlock()
	if eng == nil {
		return 0
	}
	eng.mu.Lock()
	defer eng.mu.Unlock()
	return len(eng.held)
}

// closeImpair drops what the port holds and stops its timer (Detach).
func (p *Port) closeImpair() {
	p.impairMu.Lock()
	eng := p.eng
	p.impairMu.Unlock()
	if eng != nil {
		eng.close()
	}
}

// engine carries out a port's impairments: the random decisions, the
// packets held back and the timer that releases them. It outlives changes
// of the impairment, so that held packets and counters survive them.
type engine struct {
	port  *Port
	clock stack.Clock

	// deliverMu keeps releases in order: a timer that fires while an
	// earlier one still delivers waits for it.
	deliverMu sync.Mutex

	mu       sync.Mutex
	rng      *rand.Rand
	held     heldHeap
	seq      uint64
	rate     uint64    // bits per second of the link stage; 0 unlimited
	linkFree time.Time // when the link finishes what it is sending
	linkRem  uint64    // sub-nanosecond remainder of linkFree, in 1/rate ns
	timer    stack.Timer
	timerAt  time.Time
	timerSet bool
	closed   bool

	counters struct {
		dropped, duplicated, corrupted, delayed, reordered, queueDropped atomic.Uint64
	}
}

func newEngine(p *Port) *engine {
	h := fnv.New64a()
	h.Write([]byte(p.seg.name))
	h.Write([]byte{0})
	h.Write([]byte(p.name))
	return &engine{port: p, clock: p.f.clock, rng: rand.New(rand.NewPCG(p.f.seed, h.Sum64()))}
}

// stage says what a held packet waits for.
type stage uint8

const (
	stageDelay stage = iota // the end of its delay; then the link, if rate-limited
	stageLink               // the link to finish sending it; then delivery
)

type held struct {
	at      time.Time
	seq     uint64
	stage   stage
	nextHop netip.Addr
	pkt     []byte
}

type heldHeap []held

func (h heldHeap) Len() int { return len(h) }
func (h heldHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h heldHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heldHeap) Push(x any)   { *h = append(*h, x.(held)) }
func (h *heldHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = held{}
	*h = old[:len(old)-1]
	return x
}

func (e *engine) setRate(r uint64) {
	e.mu.Lock()
	e.rate = r
	e.mu.Unlock()
}

// send impairs one packet whose next hop has an owner, and says what it
// did (for captures). It takes ownership of pkt.
func (e *engine) send(st *impairState, nextHop netip.Addr, pkt []byte) stack.LinkFate {
	// now and now2 (the duplicate) go at once, after the lock is released.
	var now2 []byte
	var fate stack.LinkFate
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		fate.Drop = stack.DropHostUnreachable
		return fate
	}
	if st.loss > 0 && e.rng.Float64() < st.loss {
		e.mu.Unlock()
		e.counters.dropped.Add(1)
		fate.Drop = stack.DropLoss
		return fate
	}
	var dup []byte
	if st.dup > 0 && e.rng.Float64() < st.dup {
		dup = append([]byte(nil), pkt...)
		e.counters.duplicated.Add(1)
	}
	t := e.clock.Now()
	now, v := e.pass(st, t, nextHop, pkt)
	var v2 verdict
	if dup != nil {
		now2, v2 = e.pass(st, t, nextHop, dup)
	}
	e.scheduleLocked()
	e.mu.Unlock()
	// What goes at once may still be refused by the overlay: that is the
	// packet's fate as much as an impairment's drop.
	if now != nil {
		v.drop = e.port.deliver(nextHop, now)
	}
	if now2 != nil {
		v2.drop = e.port.deliver(nextHop, now2)
	}
	fate.Drop, fate.Note = v.drop, v.note
	if dup != nil {
		fate.Note = joinNotes(fate.Note, "duplicated")
		if v2.note != "" && v2.note != v.note {
			fate.Note = joinNotes(fate.Note, "copy "+v2.note)
		}
		if v.drop != stack.DropNone && v2.drop == stack.DropNone {
			// The copy got through: the packet was not lost.
			fate.Drop, fate.Note = stack.DropNone, joinNotes(fate.Note, "original "+v.drop.String())
		}
	}
	return fate
}

// verdict is what pass did to one packet.
type verdict struct {
	drop stack.Drop
	note string
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

// pass runs one packet (the original or its duplicate) through corrupt,
// reorder, delay and rate at time t, holding it or returning it for
// delivery at once. e.mu is held.
func (e *engine) pass(st *impairState, t time.Time, nextHop netip.Addr, pkt []byte) ([]byte, verdict) {
	var v verdict
	if st.corrupt > 0 && len(pkt) > 0 && e.rng.Float64() < st.corrupt {
		c := append([]byte(nil), pkt...)
		c[e.rng.IntN(len(c))] ^= 1 << e.rng.IntN(8)
		pkt = c
		e.counters.corrupted.Add(1)
		v.note = "corrupted"
	}
	var d time.Duration
	if st.delay > 0 || st.jitter > 0 {
		if st.reorder > 0 && e.rng.Float64() < st.reorder {
			e.counters.reordered.Add(1)
			v.note = joinNotes(v.note, "reordered")
		} else {
			d = st.delay
			if st.jitter > 0 {
				d += time.Duration(e.rng.Int64N(2*int64(st.jitter)+1)) - st.jitter
			}
			d = max(d, 0)
		}
	}
	if d == 0 && e.rate == 0 {
		return pkt, v
	}
	if len(e.held) >= st.limit {
		e.counters.queueDropped.Add(1)
		v.drop = stack.DropLinkQueueFull
		return nil, v
	}
	e.counters.delayed.Add(1)
	if d > 0 {
		e.hold(t.Add(d), stageDelay, nextHop, pkt)
		v.note = joinNotes(v.note, "delayed "+d.String())
	} else {
		e.toLink(t, nextHop, pkt)
	}
	return nil, v
}

func (e *engine) hold(at time.Time, s stage, nextHop netip.Addr, pkt []byte) {
	e.seq++
	heap.Push(&e.held, held{at: at, seq: e.seq, stage: s, nextHop: nextHop, pkt: pkt})
}

// toLink queues a packet that reached the link at time t: it arrives when
// the link has sent everything before it and then it, at e.rate (the
// serialization time of a FIFO link). Without a rate it arrives at t.
func (e *engine) toLink(t time.Time, nextHop netip.Addr, pkt []byte) {
	if e.rate == 0 {
		e.hold(t, stageLink, nextHop, pkt)
		return
	}
	start := e.linkFree
	if t.After(start) {
		start, e.linkRem = t, 0 // the link was idle
	}
	// Sending takes len*8/rate seconds: len*8e9/rate ns, with the remainder
	// carried to the next packet so that N bytes take exactly N*8/rate.
	hi, lo := bits.Mul64(uint64(len(pkt))*8, uint64(time.Second))
	lo, carry := bits.Add64(lo, e.linkRem, 0)
	hi += carry
	var ns uint64
	if hi >= e.rate {
		ns = math.MaxInt64 // cannot happen for packets that fit in memory
	} else {
		ns, e.linkRem = bits.Div64(hi, lo, e.rate)
	}
	e.linkFree = start.Add(time.Duration(min(ns, math.MaxInt64)))
	e.hold(e.linkFree, stageLink, nextHop, pkt)
}

// scheduleLocked makes the timer fire at the earliest held packet's time.
func (e *engine) scheduleLocked() {
	if len(e.held) == 0 || e.closed {
		return
	}
	next := e.held[0].at
	if e.timerSet && !next.Before(e.timerAt) {
		return
	}
	d := next.Sub(e.clock.Now())
	if e.timer == nil {
		e.timer = e.clock.AfterFunc(d, e.fire)
	} else {
		e.timer.Reset(d)
	}
	e.timerAt, e.timerSet = next, true
}

// fire releases every held packet that is due.
func (e *engine) fire() {
	e.deliverMu.Lock()
	defer e.deliverMu.Unlock()
	e.mu.Lock()
	e.timerSet = false
	now := e.clock.Now()
	var out []held
	for len(e.held) > 0 && !e.held[0].at.After(now) {
		h := heap.Pop(&e.held).(held)
		if h.stage == stageDelay {
			// Its delay is over: on to the link, arriving there when it
			// was due (not when the timer ran).
			e.toLink(h.at, h.nextHop, h.pkt)
			continue
		}
		out = append(out, h)
	}
	e.scheduleLocked()
	e.mu.Unlock()
	for _, h := range out {
		// Its sender was told it was held: a refusal now is counted by
		// the segment and the overlay, which has its own counters by
		// reason, and cannot go back to the interface.
		e.port.deliver(h.nextHop, h.pkt)
	}
}

func (e *engine) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	clear(e.held)
	e.held = nil
	if e.timer != nil {
		e.timer.Stop()
	}
	e.timerSet = false
}
