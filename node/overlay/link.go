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

	mu     sync.Mutex
	queues map[netip.AddrPort]*sendQueue
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	queueDrops atomic.Uint64
}

// sendQueue holds packets for one peer. Senders append and return at once;
// one goroutine per peer writes whatever has gathered in one WriteBatch, so
// under load packets go out as trains (GSO) and one syscall carries many
// (the batching DESIGN.md asks of the overlay), and when idle a packet
// goes at once.
type sendQueue struct {
	mu     sync.Mutex
	pkts   [][]byte
	spare  [][]byte
	signal chan struct{}
}

// sendQueueLimit bounds a peer's queue; beyond it packets are dropped, as a
// full NIC queue drops.
const sendQueueLimit = 4096

// NewLink returns a link over c that delivers received packets with
// deliver, which takes ownership of pkt.
func NewLink(c *Conn, deliver func(vni uint32, nextHop netip.Addr, pkt []byte) bool) *Link {
	return &Link{c: c, deliver: deliver, queues: map[netip.AddrPort]*sendQueue{}, done: make(chan struct{})}
}

// SendRemote encapsulates pkt (an IP packet) in GENEVE with the VNI and
// next-hop option and queues it for peer. It takes ownership of pkt.
func (l *Link) SendRemote(peer netip.AddrPort, vni uint32, nextHop netip.Addr, pkt []byte) error {
	b, err := AppendPacket(make([]byte, 0, EncapLen(nextHop)+len(pkt)), vni, nextHop, pkt)
	if err != nil {
		return err
	}
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
	q.pkts = append(q.pkts, b)
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

func (l *Link) queue(peer netip.AddrPort) *sendQueue {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return nil
	default:
	}
	q := l.queues[peer]
	if q == nil {
		q = &sendQueue{signal: make(chan struct{}, 1)}
		l.queues[peer] = q
		l.wg.Add(1)
		go l.flush(peer, q)
	}
	return q
}

// flush writes a peer's queue until the link stops.
func (l *Link) flush(peer netip.AddrPort, q *sendQueue) {
	defer l.wg.Done()
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
			n := min(len(rest), 64)
			_ = l.c.WriteBatch(peer, rest[:n]) // a lost packet is the transport's to recover
			rest = rest[n:]
		}
		clear(batch)
		q.spare = batch[:0]
	}
}

func (l *Link) stop() {
	l.once.Do(func() {
		l.mu.Lock()
		close(l.done)
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
			// The payload aliases the receive buffers: the stack gets its
			// own copy.
			l.deliver(h.VNI(), nh, append([]byte(nil), h.Payload()...))
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	}
}
