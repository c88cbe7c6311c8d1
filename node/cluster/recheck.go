package cluster

import (
	"context"
	"time"

	"github.com/hashicorp/memberlist"
)

// recheckInterval is how often the live members are checked again
// against the node identity records.
const recheckInterval = time.Second

// runRecheck checks the live members against the node identity records
// every recheckInterval until ctx ends. memberlist asks the alive
// delegate only about news: a node admitted before its record was marked
// removed stays alive in memberlist as long as it answers probes. This
// loop takes such a node out of Members (dead, so that its hosts fail
// over), and puts it back if the records admit it again.
func (c *Cluster) runRecheck(ctx context.Context) {
	if c.cfg.Identities == nil {
		return
	}
	t := time.NewTicker(recheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ml := c.ml.Load(); ml != nil {
			c.recheck(ml.Members())
		}
	}
}

// recheck checks nodes, the members memberlist holds alive.
func (c *Cluster) recheck(nodes []*memberlist.Node) {
	for _, n := range nodes {
		if n.Name == c.cfg.Name {
			continue
		}
		reason := c.checkPeer(n.Name, n.Addr, n.Port, n.Meta)
		c.membersMu.Lock()
		m, known := c.members[n.Name]
		takenOut := false
		switch {
		case reason != "" && known && m.State == StateAlive:
			m.State = StateDead
			c.changed[n.Name] = c.now()
			c.refusedNow[n.Name] = true
			c.notifyLocked()
			takenOut = true
		case reason == "" && c.refusedNow[n.Name]:
			c.membersMu.Unlock()
			c.memberUp(n)
			continue
		}
		c.membersMu.Unlock()
		if takenOut { // counted once, when taken out
			c.refuse(n.Name, reason, "recheck", n.Addr, n.Port)
		}
	}
}
