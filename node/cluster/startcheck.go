package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// NameTakenError is Start's error when a live node already has this node's
// name: the labd must not run under it.
type NameTakenError struct {
	Name string
	Addr string // the live node's gossip address
}

func (e *NameTakenError) Error() string {
	return fmt.Sprintf("node name %s is taken by a live node at %s: choose another --name", e.Name, e.Addr)
}

// KeyMismatchError is Start's (and Join's) error when the nodes reached
// refused this node's cluster key, or it refused theirs.
type KeyMismatchError struct {
	Addr string
	Err  error // memberlist's error
}

func (e *KeyMismatchError) Error() string {
	return fmt.Sprintf("cannot join %s: the cluster key does not match (or one side has none)", e.Addr)
}

func (e *KeyMismatchError) Unwrap() error { return e.Err }

// isKeyMismatch tells memberlist's join errors caused by keys from the
// others (nobody listening, a timeout). memberlist does not export them as
// values, so this matches their text (memberlist v0.7 net.go readStream and
// security.go): whichever side has no key or the other key, the joining
// side gets one of these, its own or in the other side's error reply.
func isKeyMismatch(err error) bool {
	s := err.Error()
	for _, m := range []string{
		"encryption is configured but remote state is not encrypted",
		"remote state is encrypted and encryption is not configured",
		"no installed keys could decrypt",
	} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// conflicts records what memberlist reported about this node's own name
// being held at another address.
//
// memberlist calls NotifyConflict on both sides: on the node that holds
// the name when a newcomer claims it, and on the newcomer when the state it
// receives lists its name at the old address. Start tells them apart: a
// report during Start's join is about us, the newcomer. If the other
// address still answers, the name is taken; if not, it is this node's own
// earlier life (restarted at another address) and the name is reclaimed.
// The others accept the new address only once they have found the old one
// dead (suspicion: up to 24 s on a LAN with few nodes) and
// DeadNodeReclaimTime has passed, and nothing tells this node when that
// happened (while they suspect the old address they no longer report a
// conflict), so the rejoin loop joins every known node every round until
// reclaimWindow has passed since the last conflict report: the first join
// after they gave the old address up carries the new one.
type conflicts struct {
	mu           sync.Mutex
	addr         string    // where the others hold our name; "" when no report
	reclaimUntil time.Time // reclaiming our name until then
}

// reclaimWindow is how long after the last conflict report this node keeps
// pushing its address to every known node.
const reclaimWindow = 30 * time.Second

func (c *Cluster) noteConflict(existing, other *memberlist.Node) {
	if existing.Name != c.cfg.Name {
		c.log.Warn("a node claims a known node's name from another address; refused", "node", existing.Name, "known", existing.Address(), "claimant", other.Address())
		return
	}
	c.conflict.mu.Lock()
	defer c.conflict.mu.Unlock()
	c.conflict.addr = other.Address()
	if now := c.now(); now.Before(c.conflict.reclaimUntil) {
		c.conflict.reclaimUntil = now.Add(reclaimWindow)
	}
}

// takeConflict returns and clears the last report about our name.
func (c *Cluster) takeConflict() string {
	c.conflict.mu.Lock()
	defer c.conflict.mu.Unlock()
	a := c.conflict.addr
	c.conflict.addr = ""
	return a
}

// reclaiming tells whether this node is still taking its name back; on a
// node that is not, it reports the labds that claimed our name. It is the
// rejoin loop's check before each round.
func (c *Cluster) reclaiming() bool {
	c.conflict.mu.Lock()
	defer c.conflict.mu.Unlock()
	if c.now().Before(c.conflict.reclaimUntil) {
		c.conflict.addr = ""
		return true
	}
	if !c.conflict.reclaimUntil.IsZero() {
		c.conflict.reclaimUntil = time.Time{}
		c.log.Debug("no conflict about this node's name for a while: back to joining only the missing nodes")
	}
	if c.conflict.addr != "" {
		c.log.Warn("another labd claims this node's name; the cluster refuses it", "name", c.cfg.Name, "claimant", c.conflict.addr)
		c.conflict.addr = ""
	}
	return false
}

// startJoin is Start's join of Config.Join and the known control nodes,
// with the checks that must stop a labd: another cluster key, or our name
// held by a live node.
func (c *Cluster) startJoin(ctx context.Context) error {
	targets := c.startTargets()
	if len(targets) == 0 {
		return nil
	}
	c.takeConflict()
	n, err := c.Join(ctx, targets)
	if err != nil {
		return err
	}
	// memberlist merges the state it received before Join returns, so a
	// conflict about our name has been reported by now.
	if old := c.takeConflict(); old != "" {
		if dialCheck(ctx, old, nameCheckTimeout) == nil {
			return &NameTakenError{Name: c.cfg.Name, Addr: old}
		}
		c.log.Info("this node's name was last at another address, which does not answer: taking the name over", "old", old, "gossip", c.LocalAddr())
		c.conflict.mu.Lock()
		c.conflict.reclaimUntil = c.now().Add(reclaimWindow)
		c.conflict.mu.Unlock()
	}
	c.log.Info("joined the cluster", "reached", n, "members", c.ml.Load().NumMembers())
	return nil
}

// startTargets is Config.Join and the known control nodes' addresses,
// without duplicates.
func (c *Cluster) startTargets() []string {
	seen := map[string]bool{}
	var out []string
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, a := range c.cfg.Join {
		add(a)
	}
	for _, k := range c.known.controls() {
		add(k.Addr)
	}
	return out
}

// nameCheckTimeout bounds the check that a node holding our name answers.
const nameCheckTimeout = time.Second
