package overlay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/labnet-dev/labnet/node/fabric"
)

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
	closed bool // the link has stopped: nothing more is queued
}

// queued is a packet with its GENEVE header, written by SendRemote while
// the packet is fresh in the cache (the flush may come much later).
type queued struct {
	head    [maxEncapLen]byte
	headLen uint8
	pkt     []byte
}

// flushBatch is the most datagrams one WriteDatagrams of a flush carries:
// up to 16 GSO trains of 64 in one sendmmsg.
const flushBatch = 1024

// maxEncapLen is EncapLen of an IPv6 next hop, the longer.
const maxEncapLen = HeaderMinLen + optHeaderLen + 16

// The refusals of SendRemote, made once: a full queue refuses packet
// after packet and must not allocate for each.
var (
	errQueueFull = fmt.Errorf("overlay: %w", fabric.ErrRemoteQueueFull)
	errTooBig    = fmt.Errorf("overlay: %w", fabric.ErrRemoteTooBig)
	errDown      = fmt.Errorf("overlay: %w", fabric.ErrRemoteDown)
)

// SendRemote queues pkt (an IP packet) for peer, to go in GENEVE with the
// VNI and next-hop option (fabric.Remote). It takes ownership of pkt: the
// packet is not copied, its header is written beside it and the two go to
// the kernel as one datagram (Conn.WriteDatagrams). What it cannot queue
// it refuses at once, with an error naming the fabric's reason, and counts
// (Counters): peer's queue is full, peer is no address for the socket or
// the packet no IP packet the overlay carries, the datagram would be too
// big, the link has stopped.
func (l *Link) SendRemote(peer netip.AddrPort, vni uint32, nextHop netip.Addr, pkt []byte) error {
	st := &l.c.stats
	p := queued{pkt: pkt}
	head, err := AppendHeader(p.head[:0], vni, nextHop, pkt)
	if err != nil {
		st.txNoRoute.Add(1)
		return fmt.Errorf("%w: %w", fabric.ErrRemoteNoRoute, err)
	}
	if len(head)+len(pkt) > l.maxPayload {
		st.txTooBig.Add(1)
		return errTooBig
	}
	p.headLen = uint8(len(head))
	q, err := l.queue(peer)
	if err != nil {
		return err
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		st.txDown.Add(1)
		return errDown
	}
	if len(q.pkts) >= l.limit {
		q.mu.Unlock()
		l.queueDrops.Add(1)
		st.txQueueFull.Add(1)
		return errQueueFull
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

// queue returns peer's queue, starting its goroutine the first time; an
// error (counted) once the link has stopped or for a peer the socket
// cannot send to. Most calls find the queue of the call before.
func (l *Link) queue(peer netip.AddrPort) (*sendQueue, error) {
	if q := l.last.Load(); q != nil && q.peer == peer {
		return q, nil
	}
	q := (*l.queues.Load())[peer]
	if q == nil {
		if _, err := l.c.peerAddr(peer); err != nil {
			l.c.stats.txNoRoute.Add(1)
			return nil, fmt.Errorf("%w: %w", fabric.ErrRemoteNoRoute, err)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-l.done:
			l.c.stats.txDown.Add(1)
			return nil, errDown
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
	return q, nil
}

// flush writes a peer's queue until the link stops; what is still queued
// then is dropped and counted (TxDown).
func (l *Link) flush(q *sendQueue) {
	defer l.wg.Done()
	var dgs []Datagram
	for {
		select {
		case <-l.done:
			q.mu.Lock()
			q.closed = true
			l.c.stats.txDown.Add(uint64(len(q.pkts)))
			clear(q.pkts)
			q.pkts = q.pkts[:0]
			q.mu.Unlock()
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
			if sent, err := l.c.writeDatagrams(q.peer, dgs); err != nil {
				// Too late to tell the senders: counted and logged. A
				// lost packet is then the transport's to recover.
				l.sendFailed(q.peer, n-sent, err)
			}
			rest = rest[n:]
		}
		clear(batch)
		clear(dgs)
		q.spare = batch[:0]
	}
}

// sendFailed counts n packets a write to peer did not send, by the
// reason err gives, and logs them (at most once per failureLogEvery).
func (l *Link) sendFailed(peer netip.AddrPort, n int, err error) {
	st := &l.c.stats
	switch {
	case errors.Is(err, net.ErrClosed):
		st.txDown.Add(uint64(n))
	case errors.Is(err, ErrTooBig):
		st.txTooBig.Add(uint64(n))
	case errors.Is(err, ErrNotPeer):
		st.txNoRoute.Add(uint64(n))
	default:
		st.txSendFailed.Add(uint64(n))
	}
	l.failures.note(time.Now(), peer, n, err)
}

// failureLogEvery is how often at most a Link logs failed sends.
const failureLogEvery = 10 * time.Second

// failureLog logs failed sends, rate-limited: a kernel that refuses one
// send refuses thousands, and each is counted anyway.
type failureLog struct {
	log *slog.Logger

	mu      sync.Mutex
	next    time.Time // no line before then
	dropped int       // since the last line
}

func (f *failureLog) note(now time.Time, peer netip.AddrPort, n int, err error) {
	f.mu.Lock()
	f.dropped += n
	if now.Before(f.next) {
		f.mu.Unlock()
		return
	}
	dropped := f.dropped
	f.dropped, f.next = 0, now.Add(failureLogEvery)
	f.mu.Unlock()
	f.log.Warn("overlay: sending failed, packets dropped", "peer", peer, "dropped", dropped, "err", err)
}
