package control

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Server is one server of the raft configuration.
type Server struct {
	Name   string
	Addr   string
	Voter  bool
	Leader bool
}

// Servers lists the current raft configuration; nil when it cannot be read
// (raft shutting down).
func (c *Control) Servers() []Server {
	f := c.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	leader := c.Leader()
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{
			Name:   string(s.ID),
			Addr:   string(s.Address),
			Voter:  s.Suffrage == raft.Voter,
			Leader: string(s.ID) == leader,
		})
	}
	return out
}

// AddVoter adds (or re-addresses) a voting control node; leader only. It
// returns once the configuration change is committed.
func (c *Control) AddVoter(ctx context.Context, name, addr string) error {
	if !c.IsLeader() {
		return c.notLeader()
	}
	err := c.raft.AddVoter(raft.ServerID(name), raft.ServerAddress(addr), 0, timeoutOf(ctx)).Error()
	if err != nil {
		return fmt.Errorf("add voter %s at %s: %w", name, addr, c.raftErr("add voter", err))
	}
	return nil
}

// RemoveServer removes a server from the configuration; leader only. A
// leader may remove itself: it steps down once the change commits.
func (c *Control) RemoveServer(ctx context.Context, name string) error {
	if !c.IsLeader() {
		return c.notLeader()
	}
	if err := c.raft.RemoveServer(raft.ServerID(name), 0, timeoutOf(ctx)).Error(); err != nil {
		return fmt.Errorf("remove server %s: %w", name, c.raftErr("remove server", err))
	}
	return nil
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return defaultWriteTimeout
}
