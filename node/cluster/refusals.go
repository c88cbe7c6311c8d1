package cluster

import (
	"iter"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Refusal is how many times gossip about a node was refused for one
// reason (identity.go's Reason constants).
type Refusal struct {
	Node   string
	Reason string
	Count  uint64
}

// refusalLogEvery is how often one node and reason is logged at most.
const refusalLogEvery = time.Minute

// refuse counts and, rate-limited, logs a refusal of name at ip:port.
func (c *Cluster) refuse(name, reason, via string, ip net.IP, port uint16) {
	if log, since := c.refused.AddAt(name, reason, c.now()); log {
		c.log.Warn("gossip refused", "node", name, "reason", reason, "via", via, "addr", net.JoinHostPort(ip.String(), strconv.Itoa(int(port))), "times", since)
	}
}

// Refusals yields the refusals counted so far, by node and reason (for
// metrics).
func (c *Cluster) Refusals() iter.Seq[Refusal] {
	return func(yield func(Refusal) bool) {
		c.refused.All(func(node, reason string, n uint64) bool {
			return yield(Refusal{Node: node, Reason: reason, Count: n})
		})
	}
}

// NotifyAlive is memberlist's alive delegate: it refuses an alive message
// (news of a node, or of its new metadata) for a node checkPeer refuses.
// memberlist also calls it for each node of a merged state.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	if reason := d.c.checkPeer(n.Name, n.Addr, n.Port, n.Meta); reason != "" {
		d.c.refuse(n.Name, reason, "alive", n.Addr, n.Port)
		if reason == ReasonUnknownNode {
			d.c.notePending(n.Name, n.Addr, n.Port, n.Meta)
		}
		return refusedError(reason)
	}
	return nil
}

// NotifyMerge is memberlist's merge delegate, called with the state a
// node sends when one joins the other. It cancels the whole merge when
// the state holds a forgery (a node alive with metadata unsigned or
// signed by another key than its record's), so that a rogue's join
// fails; a node that is only unknown yet or removed is left to
// NotifyAlive, which refuses that one node as the state is merged, so
// that an honest node whose view still holds it is not shut out.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if n.State != memberlist.StateAlive && n.State != memberlist.StateSuspect {
			continue // merging a dead or left node admits nobody
		}
		switch reason := d.c.checkPeer(n.Name, n.Addr, n.Port, n.Meta); reason {
		case ReasonUnsigned, ReasonBadSignature, ReasonBadMeta:
			d.c.refuse(n.Name, reason, "merge", n.Addr, n.Port)
			return refusedError(reason)
		}
	}
	return nil
}

type refusedError string

func (e refusedError) Error() string { return refusedPrefix + string(e) }

// refusedPrefix starts refusedError's text, which memberlist logs on each
// refusal: logWriter turns those lines to debug.
const refusedPrefix = "refused by the node identities: "
