package node

import (
	"sync"
	"time"
)

// refusals counts refused requests by node and reason (CONTRACT14:
// everything refused is counted), and rate-limits their log lines: add
// reports whether this one should be logged (the first of a node and
// reason in refusalLogEvery).
type refusals struct {
	mu     sync.Mutex
	counts map[refusal]uint64
	logged map[refusal]time.Time
}

type refusal struct{ node, reason string }

const refusalLogEvery = 10 * time.Second

func (r *refusals) add(node, reason string) (log bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts, r.logged = map[refusal]uint64{}, map[refusal]time.Time{}
	}
	k := refusal{node, reason}
	r.counts[k]++
	if now := time.Now(); now.Sub(r.logged[k]) >= refusalLogEvery {
		r.logged[k] = now
		return true
	}
	return false
}

// count is how many requests of node were refused for reason.
func (r *refusals) count(node, reason string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[refusal{node, reason}]
}
