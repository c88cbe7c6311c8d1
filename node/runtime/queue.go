package runtime

import (
	"sync"

	"github.com/labnet-dev/labnet/stack"
)

// queueLimit bounds each host's receive queue, like a NIC's receive ring: a
// full queue drops and counts. Its storage grows on demand, so an idle host
// costs nothing for it. It holds one TCP connection's whole window (4 MiB
// by default: about 3100 segments at MTU 1400) and its ACKs, so a single
// bulk transfer whose receiver falls behind for a moment queues rather than
// loses a burst at the end of slow start; several at once can still fill it.
const queueLimit = 4096

// rxQueue is a host's receive queue: any goroutine pushes, the host's loop
// takes everything queued at once.
type rxQueue struct {
	mu     sync.Mutex
	items  []inbound
	spare  []inbound
	signal chan struct{}
}

type inbound struct {
	nic *stack.NIC
	pkt []byte
}

func newRxQueue() *rxQueue { return &rxQueue{signal: make(chan struct{}, 1)} }

// push queues a packet; false when the queue is full.
func (q *rxQueue) push(in inbound) bool {
	q.mu.Lock()
	if len(q.items) >= queueLimit {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, in)
	first := len(q.items) == 1
	q.mu.Unlock()
	if first {
		select {
		case q.signal <- struct{}{}:
		default:
		}
	}
	return true
}

// take returns everything queued; the slice is valid until the next take.
func (q *rxQueue) take() []inbound {
	q.mu.Lock()
	batch := q.items
	q.items = q.spare[:0]
	q.mu.Unlock()
	q.spare = batch
	return batch
}
