// Package refusal counts what a node refused, by the node refused and the
// reason, and rate-limits the log lines about it: the API's interceptor,
// enrolment, raft's TLS and gossip each keep one (docs/security.md,
// "Visible"). It links nothing of labnet's, so node/cluster may use it.
package refusal

import (
	"sync"
	"time"
)

// Counter counts refusals by node and reason. Node names may come from
// whoever asks (an enrolment or a gossip message names any node), so at
// most MaxKeys pairs are kept apart; the rest count under node "other".
// The zero value is ready to use and logs each pair at most every 10 s.
type Counter struct {
	// Every is how often one node and reason is logged at most (0: 10 s).
	Every time.Duration

	mu     sync.Mutex
	counts map[key]*count
}

type key struct{ node, reason string }

type count struct {
	n, logged uint64
	loggedAt  time.Time
}

// MaxKeys bounds the node and reason pairs counted apart.
const MaxKeys = 1024

const defaultEvery = 10 * time.Second

// Add counts one refusal of node for reason; it reports whether to log it
// (the first of that pair in Every).
func (c *Counter) Add(node, reason string) (log bool) {
	log, _ = c.AddAt(node, reason, time.Now())
	return log
}

// AddAt is Add at time now; since is how many refusals of the pair
// there were since the last one logged, this one included.
func (c *Counter) AddAt(node, reason string, now time.Time) (log bool, since uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[key]*count{}
	}
	k := key{node, reason}
	if _, ok := c.counts[k]; !ok && len(c.counts) >= MaxKeys {
		k.node = "other"
	}
	ct := c.counts[k]
	if ct == nil {
		ct = &count{}
		c.counts[k] = ct
	}
	ct.n++
	every := c.Every
	if every == 0 {
		every = defaultEvery
	}
	if !ct.loggedAt.IsZero() && now.Sub(ct.loggedAt) < every {
		return false, 0
	}
	since = ct.n - ct.logged
	ct.loggedAt, ct.logged = now, ct.n
	return true, since
}

// Count is how many refusals of node for reason were counted.
func (c *Counter) Count(node, reason string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ct := c.counts[key{node, reason}]; ct != nil {
		return ct.n
	}
	return 0
}

// All yields every count (from a copy: yield may take its time).
func (c *Counter) All(yield func(node, reason string, count uint64) bool) {
	type row struct {
		key
		n uint64
	}
	c.mu.Lock()
	rows := make([]row, 0, len(c.counts))
	for k, ct := range c.counts {
		rows = append(rows, row{k, ct.n})
	}
	c.mu.Unlock()
	for _, r := range rows {
		if !yield(r.node, r.reason, r.n) {
			return
		}
	}
}
