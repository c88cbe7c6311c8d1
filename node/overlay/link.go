package overlay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Link joins a labd's fabric to the overlay: it implements the fabric's
// Remote (SendRemote queues a packet for the node that owns its next hop,
// or says at once why it cannot: linksend.go) and Run hands what arrives to
// a delivery function (the fabric's DeliverRemote).
type Link struct {
	c          *Conn
	deliver    func(vni uint32, nextHop netip.Addr, pkt []byte) bool
	admit      func(from *Peer, vni uint32, pkt []byte) Admission
	limit      int // packets a peer's queue holds
	maxPayload int // the longest GENEVE packet c sends
	failures   failureLog

	mu     sync.Mutex                                    // serialises adding queues
	queues atomic.Pointer[map[netip.AddrPort]*sendQueue] // copy-on-write
	last   atomic.Pointer[sendQueue]                     // the queue of the last SendRemote
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	queueDrops atomic.Uint64
}

// DefaultQueueLimit bounds a peer's send queue unless WithQueueLimit says
// otherwise; beyond it packets are refused, as a full NIC queue drops.
const DefaultQueueLimit = 4096

// A LinkOption configures a Link.
type LinkOption func(*Link)

// WithQueueLimit makes each peer's send queue hold at most n packets
// (DefaultQueueLimit when n < 1).
func WithQueueLimit(n int) LinkOption {
	return func(l *Link) {
		if n >= 1 {
			l.limit = n
		}
	}
}

// WithLogger sets where the Link reports the sends the kernel refused (at
// most one line per failureLogEvery); the default is slog.Default().
func WithLogger(log *slog.Logger) LinkOption {
	return func(l *Link) { l.failures.log = log }
}

// Admission is what a Link's admit function says of a received packet.
type Admission uint8

const (
	Admit Admission = iota
	// NotOnNetwork: the sender runs no interface on the packet's network.
	NotOnNetwork
	// SpoofedSource: it does, but the packet's source address is none of
	// that interface's.
	SpoofedSource
)

// WithAdmit makes the Link ask admit about every received packet before
// it delivers it: from is the node that sealed it (nil unless it came
// sealed per pair), vni its network and pkt the inner IP packet. A packet
// admit refuses is dropped and counted by the reason it gives
// (Counters). It runs on the receive path and must be quick.
func WithAdmit(admit func(from *Peer, vni uint32, pkt []byte) Admission) LinkOption {
	return func(l *Link) { l.admit = admit }
}

// NewLink returns a link over c that delivers received packets with
// deliver, which takes ownership of pkt.
func NewLink(c *Conn, deliver func(vni uint32, nextHop netip.Addr, pkt []byte) bool, opts ...LinkOption) *Link {
	l := &Link{c: c, deliver: deliver, limit: DefaultQueueLimit, maxPayload: c.maxPayload(), done: make(chan struct{})}
	l.failures.log = slog.Default()
	l.queues.Store(&map[netip.AddrPort]*sendQueue{})
	for _, o := range opts {
		o(l)
	}
	return l
}

// QueueDrops counts packets refused because a peer's queue was full.
func (l *Link) QueueDrops() uint64 { return l.queueDrops.Load() }

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
		var undelivered, notOnNetwork, spoofed uint64
		for _, m := range msgs[:n] {
			h := m.Packet
			nh := h.NextHop()
			if !nh.IsValid() {
				undelivered++ // no next-hop option (Check allows one): nobody to give it to
				continue
			}
			// The stack gets a packet of its own: a detached one as it
			// is, a copy of one in the receive buffers.
			pkt := h.Payload()
			if l.admit != nil {
				switch l.admit(m.Peer, h.VNI(), pkt) {
				case Admit:
				case NotOnNetwork:
					notOnNetwork++
					if m.Peer != nil {
						m.Peer.notOnNetwork.Add(1)
					}
					continue
				default:
					spoofed++
					if m.Peer != nil {
						m.Peer.spoofed.Add(1)
					}
					continue
				}
			}
			if !m.Detached {
				pkt = append([]byte(nil), pkt...)
			}
			if !l.deliver(h.VNI(), nh, pkt) {
				undelivered++
			}
		}
		l.c.stats.undelivered.Add(undelivered)
		l.c.stats.notOnNetwork.Add(notOnNetwork)
		l.c.stats.spoofed.Add(spoofed)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	}
}
