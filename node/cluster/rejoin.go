package cluster

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// DefaultRejoinInterval is how often the known nodes that are not live
// members are joined again (Config.RejoinInterval).
const DefaultRejoinInterval = time.Second

// resolveEvery is how long the addresses a --join host name resolves to are
// reused before it is resolved again.
const resolveEvery = 30 * time.Second

// runRejoin, every RejoinInterval (with jitter, so that a class of laptops
// back from the same WiFi drop do not all call at once), joins each known
// node that is not a live member: Config.Join and the control nodes seen
// (knownNodes). A member whose teacher restarted, a node back from a
// network drop (it and the others found each other dead) and a node at a
// new address are so back within a round or two of failure detection.
// memberlist alone would only find them again by its push/pull with a
// random live node every PushPullInterval (30 s on a LAN), and never when
// this node sees no other as alive. It also forgets old dead nodes and
// saves the known nodes' file.
func (c *Cluster) runRejoin(ctx context.Context) {
	r := newRejoiner(c)
	defer r.wg.Wait()
	t := time.NewTimer(jitter(c.cfg.RejoinInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.membersMu.Lock()
		c.forgetLocked()
		c.membersMu.Unlock()
		c.saveKnown()
		reclaim := c.reclaiming()
		targets := r.targets(ctx, reclaim)
		r.round(ctx, targets)
		t.Reset(jitter(c.cfg.RejoinInterval))
	}
}

// jitter returns d plus or minus up to a quarter of d.
func jitter(d time.Duration) time.Duration {
	q := int64(d / 4)
	if q <= 0 {
		return d
	}
	return d - time.Duration(q) + time.Duration(rand.Int64N(2*q+1))
}

func newRejoiner(c *Cluster) *rejoiner {
	return &rejoiner{c: c, inflight: map[string]bool{}, failing: map[string]bool{}, joined: map[string]time.Time{}, resolved: map[string]resolvedHost{}}
}

// rejoiner is runRejoin's state; only its goroutine and the joins it starts
// touch it.
type rejoiner struct {
	c  *Cluster
	wg sync.WaitGroup

	mu       sync.Mutex
	inflight map[string]bool      // addresses being joined
	failing  map[string]bool      // addresses whose last join failed (logged once)
	joined   map[string]time.Time // address -> when its last successful join began

	resolved map[string]resolvedHost // runRejoin's goroutine only
}

type resolvedHost struct {
	addrs []string // host:port with the resolved IPs
	at    time.Time
}

// targets lists the known nodes to join now: all of them while reclaiming
// our name, else those that are not live members, and those that came
// alive (again) after the last join that went through to them.
//
// The last ones matter after a network cut: the node cut off and the
// others found each other dead, and the first news to cross after the heal
// may well be the known node refuting the dead message it gets from this
// one, so this node sees it alive again without having joined it; the
// other side then still holds this node dead, and nothing tells this node
// so (it was never told it was dead, so it never refutes) until a
// push/pull, every 30 s. One join, a push/pull both ways, settles it.
func (r *rejoiner) targets(ctx context.Context, reclaim bool) []string {
	c := r.c
	byName, byAddr := c.liveSince()
	seen := map[string]bool{}
	var out []string
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	type known struct {
		addr  string
		live  bool
		since time.Time // when it came alive
	}
	var all []known
	for _, a := range c.cfg.Join {
		since, live := r.joinLive(ctx, a, byAddr)
		all = append(all, known{a, live, since})
	}
	for _, k := range c.known.controls() {
		since, live := byName[k.Name]
		all = append(all, known{k.Addr, live, since})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range all {
		if reclaim || !k.live || k.since.After(r.joined[k.addr]) {
			add(k.addr)
		}
	}
	return out
}

// liveSince maps the live members' names and addresses to when they came
// alive.
func (c *Cluster) liveSince() (byName, byAddr map[string]time.Time) {
	c.membersMu.Lock()
	defer c.membersMu.Unlock()
	byName, byAddr = map[string]time.Time{}, map[string]time.Time{}
	for name, m := range c.members {
		if m.State == StateAlive {
			byName[name] = c.changed[name]
			byAddr[m.Addr] = c.changed[name]
		}
	}
	return byName, byAddr
}

// joinLive tells whether a --join address is a live member's address, and
// since when that member is alive. A host name is resolved (at most every
// resolveEvery).
func (r *rejoiner) joinLive(ctx context.Context, a string, live map[string]time.Time) (time.Time, bool) {
	if since, ok := live[a]; ok {
		return since, true
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || net.ParseIP(host) != nil {
		return time.Time{}, false
	}
	rh, ok := r.resolved[a]
	if !ok || time.Since(rh.at) > resolveEvery {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		ips, err := net.DefaultResolver.LookupHost(rctx, host)
		cancel()
		rh = resolvedHost{at: time.Now()}
		if err == nil {
			for _, ip := range ips {
				rh.addrs = append(rh.addrs, net.JoinHostPort(ip, port))
			}
		}
		r.resolved[a] = rh
	}
	for _, x := range rh.addrs {
		if since, ok := live[x]; ok {
			return since, true
		}
	}
	return time.Time{}, false
}

// round joins each target not already being joined, each in its own
// goroutine (owned by runRejoin).
func (r *rejoiner) round(ctx context.Context, targets []string) {
	for _, a := range targets {
		r.mu.Lock()
		busy := r.inflight[a]
		r.inflight[a] = true
		r.mu.Unlock()
		if busy {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.join(ctx, a)
		}()
	}
}

// join joins one address, logging the first failure of an outage and the
// return.
func (r *rejoiner) join(ctx context.Context, a string) {
	c := r.c
	began := c.now()
	_, err := c.Join(ctx, []string{a})
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.inflight, a)
	if ctx.Err() != nil {
		return
	}
	was := r.failing[a]
	switch {
	case err == nil:
		delete(r.failing, a)
		r.joined[a] = began
		if was {
			c.log.Info("joined again", "node", a, "members", c.ml.Load().NumMembers())
		}
	case !was:
		r.failing[a] = true
		var km *KeyMismatchError
		if errors.As(err, &km) {
			c.log.Warn("a known node refuses this node's cluster key", "node", a, "err", km)
		} else {
			c.log.Info("a known node is not reachable; trying again every interval", "node", a, "interval", c.cfg.RejoinInterval, "err", err)
		}
	default:
		c.log.Debug("join failed", "node", a, "err", err)
	}
}
