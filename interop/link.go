// Package interop joins labnet's stack (package stack) to gVisor's netstack
// over an in-memory link, to test that the two talk and to measure gVisor as
// the baseline our TCP is held to. It is a separate Go module so that the
// main module never depends on gVisor; run its tests from this directory:
//
//	cd interop && go test ./...
//
// The link behaves like a wire between two interfaces: each packet is copied
// when it is sent, so sender and receiver never share memory, and each
// direction delivers on its own goroutine (to our interface's receive queue,
// stack.NIC.Receive, the path every packet into our stack takes), optionally losing and reordering
// packets (the impairments TCP tests need) with a seeded random source.
package interop

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/labnet-dev/labnet/stack"
)

// Options configures a link. The zero value is a 1500-byte link that loses
// and reorders nothing.
type Options struct {
	// MTU is the largest IP packet the link carries, in bytes; longer
	// packets are dropped and counted in Stats.Oversize. 1500 when 0.
	MTU int
	// Loss is the percentage (0 to 100) of packets each direction drops.
	Loss float64
	// Reorder is the percentage (0 to 100) of packets each direction holds
	// back and delivers right after the packet sent after them, or after
	// ReorderDelay when no packet follows in time.
	Reorder float64
	// ReorderDelay bounds how long a held-back packet waits; 1ms when 0.
	ReorderDelay time.Duration
	// Seed seeds the random source of the impairments. Each direction
	// draws from its own source, so the decision for the n-th packet in a
	// direction depends only on Seed and n.
	Seed uint64
	// Queue is how many packets each direction holds before it drops
	// (Stats.QueueDrops), as a full transmit queue does; 4096 when 0.
	Queue int
	// Drop, when set, is asked about each packet the random impairments
	// let through, in order, on the delivering goroutine of its direction
	// (aToB true for packets from side A): true drops it (Stats.Dropped).
	// Tests use it to lose one chosen packet.
	Drop func(aToB bool, pkt []byte) bool
}

func (o Options) withDefaults() (Options, error) {
	if o.MTU == 0 {
		o.MTU = 1500
	}
	if o.ReorderDelay == 0 {
		o.ReorderDelay = time.Millisecond
	}
	if o.Queue == 0 {
		o.Queue = 4096
	}
	switch {
	case o.MTU < 68:
		return o, fmt.Errorf("link: MTU %d below the IPv4 minimum of 68", o.MTU)
	case o.Loss < 0 || o.Loss > 100:
		return o, fmt.Errorf("link: loss %v%% outside 0..100", o.Loss)
	case o.Reorder < 0 || o.Reorder > 100:
		return o, fmt.Errorf("link: reorder %v%% outside 0..100", o.Reorder)
	case o.ReorderDelay < 0:
		return o, fmt.Errorf("link: negative reorder delay %v", o.ReorderDelay)
	case o.Queue < 0:
		return o, fmt.Errorf("link: negative queue length %d", o.Queue)
	}
	return o, nil
}

// Stats counts the packets of one direction of a link.
type Stats struct {
	Sent       uint64 // accepted onto the link
	Delivered  uint64 // handed to the receiving stack
	Lost       uint64 // dropped by Options.Loss
	Reordered  uint64 // delivered after the packet sent after them
	QueueDrops uint64 // dropped because the queue was full
	Oversize   uint64 // dropped because longer than the MTU
	Dropped    uint64 // dropped by Options.Drop
}

// pipe is one direction of a link: a queue of copied packets and the
// goroutine that impairs them and hands them to the receiver.
type pipe struct {
	mtu          int
	q            chan []byte // never closed: senders may race with close
	done         chan struct{}
	loss         float64
	reorder      float64
	reorderDelay time.Duration
	rng          *rand.Rand            // used by the run goroutine only
	drop         func(pkt []byte) bool // Options.Drop for this direction

	sent, delivered, lost, reordered, queueDrops, oversize, dropped atomic.Uint64
}

func newPipe(o Options, dir uint64) *pipe {
	var drop func([]byte) bool
	if o.Drop != nil {
		drop = func(pkt []byte) bool { return o.Drop(dir == 1, pkt) }
	}
	return &pipe{
		drop:         drop,
		mtu:          o.MTU,
		q:            make(chan []byte, o.Queue),
		done:         make(chan struct{}),
		loss:         o.Loss,
		reorder:      o.Reorder,
		reorderDelay: o.ReorderDelay,
		rng:          rand.New(rand.NewPCG(o.Seed, dir)),
	}
}

// put queues pkt for delivery. It takes ownership of pkt, which must not
// alias the sender's memory. It never blocks: a full queue drops.
func (p *pipe) put(pkt []byte) {
	if len(pkt) > p.mtu {
		p.oversize.Add(1)
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	select {
	case p.q <- pkt:
		p.sent.Add(1)
	default:
		p.queueDrops.Add(1)
	}
}

// hit draws whether an impairment of pct percent applies to this packet.
func (p *pipe) hit(pct float64) bool {
	return pct > 0 && p.rng.Float64()*100 < pct
}

// run delivers queued packets to deliver, which takes ownership of each,
// until stop. Only one run per pipe.
func (p *pipe) run(deliver func([]byte)) {
	var held []byte // a packet held back to be reordered
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case pkt := <-p.q:
			// Draw in a fixed order for every packet, so the decisions
			// depend on the packet's position only.
			lose, hold := p.hit(p.loss), p.hit(p.reorder)
			if lose {
				p.lost.Add(1)
				continue
			}
			if p.drop != nil && p.drop(pkt) {
				p.dropped.Add(1)
				continue
			}
			if hold && held == nil {
				held = pkt
				t.Reset(p.reorderDelay)
				continue
			}
			p.delivered.Add(1)
			deliver(pkt)
			if held != nil {
				t.Stop()
				p.reordered.Add(1)
				p.delivered.Add(1)
				deliver(held)
				held = nil
			}
		case <-t.C:
			if held != nil {
				p.delivered.Add(1)
				deliver(held)
				held = nil
			}
		}
	}
}

func (p *pipe) stats() Stats {
	return Stats{
		Sent: p.sent.Load(), Delivered: p.delivered.Load(), Lost: p.lost.Load(),
		Reordered: p.reordered.Load(), QueueDrops: p.queueDrops.Load(), Oversize: p.oversize.Load(),
		Dropped: p.dropped.Load(),
	}
}

// Wire is the two directions of a link between side A and side B.
type Wire struct {
	ab, ba *pipe
	wg     sync.WaitGroup
	once   sync.Once
}

func newWire(o Options) *Wire {
	return &Wire{ab: newPipe(o, 1), ba: newPipe(o, 2)}
}

// start starts delivery: toA receives what B sends, toB what A sends.
func (w *Wire) start(toA, toB func([]byte)) {
	w.wg.Add(2)
	go func() { defer w.wg.Done(); w.ab.run(toB) }()
	go func() { defer w.wg.Done(); w.ba.run(toA) }()
}

// stop ends delivery and waits for both goroutines; packets still queued
// are dropped. It is idempotent.
func (w *Wire) stop() {
	w.once.Do(func() {
		close(w.ab.done)
		close(w.ba.done)
	})
	w.wg.Wait()
}

// Stats returns the counters of each direction.
func (w *Wire) Stats() (aToB, bToA Stats) { return w.ab.stats(), w.ba.stats() }

// labnetEnd is the stack.Link of a labnet interface on the wire.
type labnetEnd struct {
	peer []netip.Addr // the addresses of the far interface
	out  *pipe
}

// Send implements stack.Link. The packet is copied, so the link keeps
// nothing of the caller's.
func (l *labnetEnd) Send(nextHop netip.Addr, pkt []byte) error {
	if !slices.Contains(l.peer, nextHop) {
		return stack.ErrHostUnreachable
	}
	l.out.put(bytes.Clone(pkt))
	return nil
}

// gvisorEnd is the link endpoint of a gVisor NIC on the wire.
// channel.Endpoint supplies the dispatcher, MTU and capability plumbing (no
// link header, no address resolution, no GSO); WritePackets is ours, so
// outbound packets are copied straight onto the wire and the channel's own
// queue stays unused.
type gvisorEnd struct {
	*channel.Endpoint
	out *pipe
}

func newGVisorEnd(mtu int, out *pipe) *gvisorEnd {
	return &gvisorEnd{Endpoint: channel.New(0, uint32(mtu), ""), out: out}
}

// WritePackets implements gstack.LinkEndpoint: it copies each packet onto
// the wire. gVisor keeps ownership of pkts.
func (e *gvisorEnd) WritePackets(pkts gstack.PacketBufferList) (int, tcpip.Error) {
	for _, pkt := range pkts.AsSlice() {
		b := make([]byte, pkt.Size())
		n := 0
		for _, s := range pkt.AsSlices() {
			n += copy(b[n:], s)
		}
		e.out.put(b[:n])
	}
	return pkts.Len(), nil
}

// deliver hands pkt to the gVisor stack, copying it into gVisor's own
// buffer (gVisor has no way to adopt a []byte it did not allocate).
func (e *gvisorEnd) deliver(pkt []byte) {
	var proto tcpip.NetworkProtocolNumber
	switch header.IPVersion(pkt) {
	case header.IPv4Version:
		proto = header.IPv4ProtocolNumber
	case header.IPv6Version:
		proto = header.IPv6ProtocolNumber
	default:
		return // not IP: no NIC would accept it
	}
	pb := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
	e.InjectInbound(proto, pb)
	pb.DecRef()
}
