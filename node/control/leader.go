package control

import (
	"slices"
	"strconv"

	"github.com/hashicorp/raft"
)

// NotLeaderError is returned by writes on a node that does not lead.
// Leader names the leader when this node knows it, "" otherwise; Controls
// names the control nodes this node knows of (the raft configuration's
// servers), so a write that finds no leader can say which nodes it needs.
type NotLeaderError struct {
	Leader   string
	Controls []string
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return "control: not the leader, and no leader is known"
	}
	return "control: not the leader; the leader is " + e.Leader
}

// NotLeader returns the leader's name: callers outside this package (the
// API) recognise the error by this method without importing control.
func (e *NotLeaderError) NotLeader() string { return e.Leader }

// ControlNodes returns the control nodes known when the write was refused.
func (e *NotLeaderError) ControlNodes() []string { return e.Controls }

// Term is raft's current term on this node (0 when raft cannot say).
// Gossip carries the leader's, so that a node that led in an older term
// (killed, its death not yet noticed) is told from the leader now.
func (c *Control) Term() uint64 {
	t, _ := strconv.ParseUint(c.raft.Stats()["term"], 10, 64)
	return t
}

// IsLeader reports whether this node leads now.
func (c *Control) IsLeader() bool { return c.raft.State() == raft.Leader }

// Leader is the current leader's name, "" when none is known.
func (c *Control) Leader() string {
	if c.IsLeader() { // raft sets its state a moment before its leader
		return c.name
	}
	_, id := c.raft.LeaderWithID()
	return string(id)
}

// LeaderChanged returns a channel closed at the next change of leader or
// of this node's raft state; call it again for the change after.
func (c *Control) LeaderChanged() <-chan struct{} {
	c.leaderMu.Lock()
	defer c.leaderMu.Unlock()
	return c.leaderCh
}

func (c *Control) notLeader() error {
	var names []string
	for _, s := range c.Servers() {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return &NotLeaderError{Leader: c.Leader(), Controls: names}
}
