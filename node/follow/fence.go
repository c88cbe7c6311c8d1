package follow

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Fence tells a member when to stop the hosts the control plane's leader
// may have placed elsewhere. The leader moves a gone node's movable hosts
// once it has seen the node gone for the failover time; a member cut off
// from the control plane cannot know when that happens, so it closes the
// fence once it has heard nothing for three quarters of that time (the
// leader's clock starts later still: after gossip's failure detection).
// It opens again only once it hears the control plane and its replica has
// caught up with the revision last announced, so that a move committed
// during the cut is applied (and the moved host not started here again)
// before the fence opens.
type Fence struct {
	progress func() (age time.Duration, rev, leaderRev uint64)
	limit    time.Duration
	changed  chan<- struct{}
	log      *slog.Logger
	fenced   atomic.Bool
}

// NewFence returns the fence of f's member for a failover time of
// failoverAfter (which must be positive); a change of Fenced's answer is
// signalled on changed without blocking (a buffered channel of one).
func NewFence(f *Follower, failoverAfter time.Duration, changed chan<- struct{}, log *slog.Logger) *Fence {
	return newFence(f.progress, failoverAfter, changed, log)
}

func newFence(progress func() (time.Duration, uint64, uint64), failoverAfter time.Duration, changed chan<- struct{}, log *slog.Logger) *Fence {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fence{progress: progress, limit: failoverAfter * 3 / 4, changed: changed, log: log}
}

// Fenced reports whether the member's movable hosts must not run.
func (fe *Fence) Fenced() bool { return fe.fenced.Load() }

// Run checks the follower's progress until ctx ends, ten times per fence
// time (at most every 100 ms).
func (fe *Fence) Run(ctx context.Context) error {
	t := time.NewTicker(max(fe.limit/10, 100*time.Millisecond))
	defer t.Stop()
	for {
		fe.check()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// check updates Fenced from the follower's progress and reports whether
// it changed.
func (fe *Fence) check() bool {
	age, rev, leaderRev := fe.progress()
	was := fe.fenced.Load()
	now := was
	switch {
	case !was && age >= fe.limit:
		now = true
		fe.log.Warn("the control plane has not been heard for most of the failover time: stopping the hosts it may move to other nodes",
			"silent", age.Round(time.Millisecond), "failover_after", fe.limit*4/3)
	case was && age < fe.limit && rev >= leaderRev:
		now = false
		fe.log.Info("the control plane is heard again and the replica caught up: running this node's hosts again", "revision", rev)
	}
	if now == was {
		return false
	}
	fe.fenced.Store(now)
	select {
	case fe.changed <- struct{}{}:
	default:
	}
	return true
}
