package cluster

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync"
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
			c.joinPending(ctx)
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

// pendingNodes are nodes refused as unknown_node: their record had not
// reached this replica yet. memberlist would hear of them again only at
// their next push/pull with this node (30 s on a LAN), so joinPending
// joins each once its record admits it.
type pendingNodes struct {
	mu sync.Mutex
	m  map[string]pendingNode
}

type pendingNode struct {
	ip    net.IP
	port  uint16
	meta  []byte
	until time.Time // given up then
}

// maxPending bounds the pending nodes (names are the sender's choice).
const maxPending = 64

// pendingFor is how long a node refused as unknown is waited for: its
// record normally follows within seconds.
const pendingFor = 2 * time.Minute

// notePending remembers node name, refused as unknown at ip:port.
func (c *Cluster) notePending(name string, ip net.IP, port uint16, meta []byte) {
	p := &c.pending
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]pendingNode{}
	}
	if _, ok := p.m[name]; !ok && len(p.m) >= maxPending {
		return
	}
	p.m[name] = pendingNode{ip: slices.Clone(ip), port: port, meta: slices.Clone(meta), until: c.now().Add(pendingFor)}
}

// joinPending joins the pending nodes the records now admit, at the
// address they signed, and forgets them and those waited for too long.
func (c *Cluster) joinPending(ctx context.Context) {
	var addrs []string
	now := c.now()
	c.pending.mu.Lock()
	for name, n := range c.pending.m {
		switch {
		case c.checkPeer(name, n.ip, n.port, n.meta) == "":
			addrs = append(addrs, net.JoinHostPort(n.ip.String(), strconv.Itoa(int(n.port))))
			delete(c.pending.m, name)
		case now.After(n.until):
			delete(c.pending.m, name)
		}
	}
	c.pending.mu.Unlock()
	if len(addrs) == 0 {
		return
	}
	if _, err := c.Join(ctx, addrs); err != nil {
		c.log.Debug("joining nodes whose records arrived", "nodes", addrs, "err", err)
	}
}
