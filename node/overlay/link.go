package overlay

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Link joins a labd's fabric to the overlay: it implements the fabric's
// Remote (SendRemote encapsulates a packet for the node that owns its next
// hop) and Run hands what arrives to a delivery function (the fabric's
// DeliverRemote).
type Link struct {
	c       *Conn
	deliver func(vni uint32, nextHop netip.Addr, pkt []byte) bool

	mu     sync.Mutex                                    // serialises adding queues
	queues atomic.Pointer[map[netip.AddrPort]*sendQueue] // copy-on-write
	last   atomic.Pointer[sendQueue]                     // the queue of the last SendRemote
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	queueDrops atomic.Uint64
}

// sendQueue holds packets for one peer. Senders append and return at once;
// one goroutine per peer writes whatever has gathered with WriteDatagrams,
// so under load packets go out as trains (GSO) and one syscall carries many
// (the batching DESIGN.md asks of the overlay), and when idle a packet
// goes at once.
type sendQueue struct {
	peer   netip.AddrPort
	mu     sync.Mutex
	pkts   []queued
	spare  []queued
	signal chan struct{}
}

// queued is a packet with its GENEVE header, written by SendRemote while
// the packet is fresh in the cache (the flush may come much later).
type queued struct {
	head    [maxEncapLen]byte
	headLen uint8
	pkt     []byte
}

// sendQueueLimit bounds a peer's queue; beyond it packets are dropped, as a
// full NIC queue drops.
const sendQueueLimit = 4096

// flushBatch is the most datagrams one WriteDatagrams of a flush carries:
// up to 16 GSO trains of 64 in one sendmmsg.
const flushBatch = 1024

// maxEncapLen is EncapLen of an IPv6 next hop, the longer.
const maxEncapLen = HeaderMinLen + optHeaderLen + 16

// NewLink returns a link over c that delivers received packets with
// deliver, which takes ownership of pkt.
func NewLink(c *Conn, deliver func(vni uint32, nextHop netip.Addr, pkt []byte) bool) *Link {
	l := &Link{c: c, deliver: deliver, done: make(chan struct{})}
	l.queues.Store(&map[netip.AddrPort]*sendQueue{})
	return l
}

// SendRemote queues pkt (an IP packet) for peer, to go in GENEVE with the
// VNI and next-hop option. It takes ownership of pkt: the packet is not
// copied, its header is written beside it and the two go to the kernel as
// one datagram (Conn.WriteDatagrams).
func (l *Link) SendRemote(peer netip.AddrPort, vni uint32, nextHop netip.Addr, pkt []byte) error {
	p := queued{pkt: pkt}
	head, err := AppendHeader(p.head[:0], vni, nextHop, pkt)
	if err != nil {
		return err
	}
	p.headLen = uint8(len(head))
	q := l.queue(peer)
	if q == nil {
		return net.ErrClosed
	}
	q.mu.Lock()
	if len(q.pkts) >= sendQueueLimit {
		q.mu.Unlock()
		l.queueDrops.Add(1)
		return nil
	}
	q.pkts = append(q.pkts, p)
	first := len(q.pkts) == 1
	q.mu.Unlock()
	if first {
		select {
		case q.signal <- struct{}{}:
		default:
		}
	}
	return nil
}

// QueueDrops counts packets dropped because a peer's queue was full.
func (l *Link) QueueDrops() uint64 { return l.queueDrops.Load() }

// queue returns peer's queue, starting its goroutine the first time; nil
// once the link has stopped. Most calls find the queue of the call before.
func (l *Link) queue(peer netip.AddrPort) *sendQueue {
	if q := l.last.Load(); q != nil && q.peer == peer {
		return q
	}
	q := (*l.queues.Load())[peer]
	if q == nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-l.done:
			return nil
		default:
		}
		old := *l.queues.Load()
		if q = old[peer]; q == nil {
			q = &sendQueue{peer: peer, signal: make(chan struct{}, 1)}
			m := make(map[netip.AddrPort]*sendQueue, len(old)+1)
			for k, v := range old {
				m[k] = v
			}
			m[peer] = q
			l.queues.Store(&m)
			l.wg.Add(1)
			go l.flush(q)
		}
	}
	l.last.Store(q)
	return q
}

// flush writes a peer's queue until the link stops.
func (l *Link) flush(q *sendQueue) {
	defer l.wg.Done()
	var dgs []Datagram
	for {
		select {
		case <-l.done:
			return
		case <-q.signal:
		}
		q.mu.Lock()
		batch := q.pkts
		q.pkts = q.spare[:0] // spare belongs to this goroutine alone
		q.mu.Unlock()
		for rest := batch; len(rest) > 0; {
			n := min(len(rest), flushBatch)
			dgs = dgs[:0]
			for i := range rest[:n] {
				p := &rest[i]
				dgs = append(dgs, Datagram{Head: p.head[:p.headLen], Body: p.pkt})
			}
			_ = l.c.WriteDatagrams(q.peer, dgs) // a lost packet is the transport's to recover
			rest = rest[n:]
		}
		clear(batch)
		clear(dgs)
		q.spare = batch[:0]
	}
}

func (l *Link) stop() {
	l.once.Do(func() {
		l.mu.Lock()
		close(l.done)
		l.queues.Store(&map[netip.AddrPort]*sendQueue{}) // queue now finds none and says so
		l.last.Store(nil)
		l.mu.Unlock()
	})
	l.wg.Wait()
}

// Run receives until ctx is done or the Conn is closed.
func (l *Link) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { l.c.Close() })
	defer stop()
	defer l.stop()
	msgs := make([]Message, 64)
	for {
		n, err := l.c.ReadBatch(msgs)
		for _, m := range msgs[:n] {
			h := m.Packet
			nh := h.NextHop()
			if !nh.IsValid() {
				continue
			}
			// The stack gets a packet of its own: a detached one as it
			// is, a copy of one in the receive buffers.
			pkt := h.Payload()
			if !m.Detached {
				pkt = append([]byte(nil), pkt...)
			}
			l.deliver(h.VNI(), nh, pkt)
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	}
}
