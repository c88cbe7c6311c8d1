package auth

import (
	"sync"
	"time"
)

// NodeRefusals counts refused requests by node and reason (CONTRACT14:
// everything refused is counted, and logged rate-limited). The node names
// may come from whoever asks (an enrolment names any node), so at most
// maxRefusalKeys are kept apart; the rest count under node "other".
// The zero value is ready to use.
type NodeRefusals struct {
	mu     sync.Mutex
	counts map[refusalKey]uint64
	logged map[refusalKey]time.Time
}

type refusalKey struct{ node, reason string }

const (
	maxRefusalKeys  = 1024
	refusalLogEvery = 10 * time.Second
)

// Add counts one refusal; it reports whether to log it (the first of a
// node and reason in refusalLogEvery).
func (r *NodeRefusals) Add(node, reason string) (log bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts, r.logged = map[refusalKey]uint64{}, map[refusalKey]time.Time{}
	}
	k := refusalKey{node, reason}
	if _, ok := r.counts[k]; !ok && len(r.counts) >= maxRefusalKeys {
		k.node = "other"
	}
	r.counts[k]++
	if now := time.Now(); now.Sub(r.logged[k]) >= refusalLogEvery {
		r.logged[k] = now
		return true
	}
	return false
}

// Count is how many refusals of node for reason were counted.
func (r *NodeRefusals) Count(node, reason string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[refusalKey{node, reason}]
}

// All yields every count (a copy: yield may take its time).
func (r *NodeRefusals) All(yield func(node, reason string, count uint64) bool) {
	r.mu.Lock()
	counts := make(map[refusalKey]uint64, len(r.counts))
	for k, v := range r.counts {
		counts[k] = v
	}
	r.mu.Unlock()
	for k, v := range counts {
		if !yield(k.node, k.reason, v) {
			return
		}
	}
}
