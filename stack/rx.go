package stack

import (
	"sync"
)

// The receive path: the one way packets from a link enter a stack.
//
// A link hands each packet it carries to the interface it is for with
// NIC.Receive, which queues it on the stack's receive queue and returns at
// once, as a NIC driver fills its receive ring. The stack drains the queue
// in batches on a worker goroutine of its own (gVisor's link endpoints hand
// packets to a NetworkDispatcher the same way; Linux's NAPI polls a ring
// until it is empty). The worker exists only while there is work: it is
// started when the queue goes from empty to non-empty and returns when it
// finds the queue empty, so an idle stack owns no goroutine. Transports
// that implement BatchTransport learn where each batch begins and ends
// (TCP ACKs a batch's data once, at its end).
//
// The queue is bounded like a NIC's ring: a full queue drops the packet,
// counts it against the interface and shows it to the interface's taps
// with DropQueueFull.

// RxQueueLimit is how many received packets a stack holds before it drops.
// It holds one TCP connection's whole window (4 MiB by default: about 3100
// segments at MTU 1400) and its ACKs, so a single bulk transfer whose
// receiver falls behind for a moment queues rather than loses a burst at
// the end of slow start; several at once can still fill it.
const RxQueueLimit = 4096

// keepSpare bounds the storage a drained queue keeps for the next burst
// (in packets): an idle stack returns what a large burst grew.
const keepSpare = 256

// rxQueue is a stack's receive queue. Any goroutine pushes; the worker
// takes everything queued at once.
type rxQueue struct {
	mu      sync.Mutex
	items   []inbound
	spare   []inbound // the worker's last batch, emptied, for reuse
	running bool      // a worker runs (or is about to) and will see items
	closed  bool      // Close was called: drop everything
	worker  sync.WaitGroup
}

// inbound is one queued packet and the interface it arrived on.
type inbound struct {
	nic *NIC
	pkt []byte
}

// A BatchTransport is a Transport that wants to know which packets arrived
// together. The stack calls BeginBatch before it hands the transport the
// first packet of a batch taken from its receive queue and EndBatch after
// the last, on the worker goroutine; every HandlePacket in between belongs
// to the batch. Packets given to Stack.Deliver, and those a host sends to
// its own addresses, arrive outside any batch. RegisterTransport finds the
// methods; nothing else registers them.
type BatchTransport interface {
	Transport
	BeginBatch()
	EndBatch()
}

// Receive queues pkt, a whole IP packet that arrived on the interface, for
// the stack, and returns without waiting for it to be processed. It takes
// ownership of pkt: the stack may rewrite it in place (forwarding does),
// and keeps it until processed. It never blocks; when the stack's queue is
// full (RxQueueLimit) or the stack is closed, the packet is dropped,
// counted in the interface's RxDropped and shown to its taps with the
// reason. Links call Receive from any goroutine.
func (n *NIC) Receive(pkt []byte) {
	s := n.stack
	q := &s.rx
	q.mu.Lock()
	if q.closed || len(q.items) >= RxQueueLimit {
		d := DropQueueFull
		if q.closed {
			d = DropDown
		}
		q.mu.Unlock()
		n.DropRx(pkt, d, s.clock.Now())
		return
	}
	q.items = append(q.items, inbound{n, pkt})
	start := !q.running
	if start {
		q.running = true
		q.worker.Add(1)
	}
	q.mu.Unlock()
	if start {
		s.spawn(s.rxWorker)
	}
}

// drainRx is the receive worker: it processes batches until the queue is
// empty, then returns.
func (s *Stack) drainRx() {
	defer s.rx.worker.Done()
	for s.processBatch() {
	}
}

// processBatch takes everything queued and processes it as one batch. It
// reports false, with the worker marked gone, when the queue was empty.
func (s *Stack) processBatch() bool {
	q := &s.rx
	q.mu.Lock()
	batch := q.items
	if len(batch) == 0 {
		q.running = false
		if cap(q.items) > keepSpare {
			q.items = nil
		}
		if cap(q.spare) > keepSpare {
			q.spare = nil
		}
		q.mu.Unlock()
		return false
	}
	q.items, q.spare = q.spare[:0], nil
	q.mu.Unlock()

	bts := *s.batchers.Load()
	for _, t := range bts {
		t.BeginBatch()
	}
	for i := range batch {
		in := &batch[i]
		s.Deliver(in.nic, in.pkt) // takes ownership of in.pkt
		*in = inbound{}
	}
	for _, t := range bts {
		t.EndBatch()
	}

	q.mu.Lock()
	if q.spare == nil {
		q.spare = batch[:0]
	}
	q.mu.Unlock()
	return true
}

// Close stops the stack's receive path: packets queued and not yet
// processed are dropped (counted against their interfaces, with DropDown),
// later ones are dropped as they arrive, and Close waits for a running
// worker to finish its batch. It does not close the stack's transports or
// links. Close is idempotent; it must not be called from a transport.
func (s *Stack) Close() {
	q := &s.rx
	q.mu.Lock()
	q.closed = true
	dropped := q.items
	q.items = nil
	q.mu.Unlock()
	now := s.clock.Now()
	for _, in := range dropped {
		in.nic.DropRx(in.pkt, DropDown, now)
	}
	q.worker.Wait()
}

// setBatchersLocked records the batch hooks of the transports ts, in
// protocol number order. Called with s.mu held.
func (s *Stack) setBatchersLocked(ts transports) {
	var bts []BatchTransport
	for _, e := range ts {
		if bt, ok := e.t.(BatchTransport); ok {
			bts = append(bts, bt)
		}
	}
	s.batchers.Store(&bts)
}
