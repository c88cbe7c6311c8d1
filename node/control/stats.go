package control

import (
	"slices"
	"sync"
	"time"
)

// statWindow is how many recent writes Stats summarises.
const statWindow = 1024

// latencies keeps the durations of the last statWindow writes.
type latencies struct {
	mu   sync.Mutex
	ring []time.Duration
	next int
	n    uint64
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) < statWindow {
		l.ring = append(l.ring, d)
	} else {
		l.ring[l.next] = d
		l.next = (l.next + 1) % statWindow
	}
	l.n++
}

// Stats summarises this node's recent writes as leader.
type Stats struct {
	Writes        uint64        // acknowledged writes since Open
	P50, P99, Max time.Duration // over the last 1024 writes
	AppliedIndex  uint64
	RefusedConns  uint64 // raft connections refused (RefusedConns)
}

// Stats returns write latency (from Update's call to its answer, as a
// client on the leader sees it) and counters.
func (c *Control) Stats() Stats {
	c.stats.mu.Lock()
	ds := slices.Clone(c.stats.ring)
	s := Stats{Writes: c.stats.n}
	c.stats.mu.Unlock()
	slices.Sort(ds)
	if n := len(ds); n > 0 {
		s.P50 = ds[n/2]
		s.P99 = ds[min(n-1, n*99/100)]
		s.Max = ds[n-1]
	}
	s.AppliedIndex = c.state.AppliedIndex()
	s.RefusedConns = c.RefusedConns()
	return s
}
