package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/labnet-dev/labnet/node/store"
)

// defaultWriteTimeout bounds a write whose ctx has no deadline.
const defaultWriteTimeout = 10 * time.Second

// ErrOutcomeUnknown is in the chain of a write's error when leadership was
// lost after the entry was proposed: it may or may not have committed.
// Callers outside this package (the API) recognise it by its
// OutcomeUnknown method.
var ErrOutcomeUnknown error = outcomeUnknown{}

type outcomeUnknown struct{}

func (outcomeUnknown) Error() string {
	return "control: leadership lost while committing: the write may or may not have been applied"
}

// OutcomeUnknown marks the error for callers that do not import control.
func (outcomeUnknown) OutcomeUnknown() bool { return true }

// Update runs fn on the leader's state and commits its writes through raft,
// conditioned on everything fn read: it returns the revision after them, or
// store.ErrConflict when another write changed what fn read in between
// (nothing applied). On a node that does not lead it returns a
// *NotLeaderError naming the leader.
//
// Updates are serialised on the leader from the read to the apply, so one
// Update always reads the state its predecessor left and concurrent
// writers only conflict with writes through another leader.
func (c *Control) Update(ctx context.Context, fn func(*store.Tx) error) (uint64, error) {
	return c.update(ctx, func() ([]byte, error) { return c.state.Propose(fn) })
}

// update is Update with the proposal made by propose, under the write lock.
func (c *Control) update(ctx context.Context, propose func() ([]byte, error)) (uint64, error) {
	c.waitLeader(ctx)
	if !c.IsLeader() {
		return 0, c.notLeader()
	}
	start := time.Now()
	if err := c.lock(ctx); err != nil {
		return 0, err
	}
	unlock := true
	defer func() {
		if unlock {
			c.writeMu.Unlock()
		}
	}()
	timeout := defaultWriteTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	// A new leader may not have applied every entry of the terms before
	// it: wait for them once, so its first read is not stale (which would
	// only cost a conflict, but a needless one).
	c.leaderMu.Lock()
	barrier := c.needBarrier
	c.leaderMu.Unlock()
	if barrier {
		if err := c.raft.Barrier(timeout).Error(); err != nil {
			return 0, c.raftErr("barrier", err)
		}
		c.leaderMu.Lock()
		c.needBarrier = false
		c.leaderMu.Unlock()
	}
	entry, err := propose()
	if err != nil {
		return 0, err
	}
	f := c.raft.Apply(entry, timeout)
	done := make(chan struct{})
	go func() { // owned by this write: ends when raft answers the future
		f.Error()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// The entry may still commit. Keep the write lock until raft
		// answers so the next Update still reads after it.
		unlock = false
		go func() {
			<-done
			c.writeMu.Unlock()
		}()
		return 0, fmt.Errorf("control: write: %w (it may still be applied)", ctx.Err())
	}
	if err := f.Error(); err != nil {
		return 0, c.raftErr("write", err)
	}
	r, _ := f.Response().(result)
	if r.err != nil {
		return 0, r.err
	}
	c.stats.add(time.Since(start))
	return r.rev, nil
}

// leaderWait bounds how long a write waits for an election to end (at
// start, or after the leader was lost) before it says no leader is known.
const leaderWait = 5 * time.Second

// waitLeader returns once some node leads, after leaderWait, or when ctx
// ends, whichever is first: a write during an election waits for its
// outcome instead of failing.
func (c *Control) waitLeader(ctx context.Context) {
	timeout := time.NewTimer(leaderWait)
	defer timeout.Stop()
	poll := time.NewTicker(50 * time.Millisecond) // in case an observation was dropped
	defer poll.Stop()
	for {
		changed := c.LeaderChanged()
		if c.Leader() != "" {
			return
		}
		select {
		case <-changed:
		case <-poll.C:
		case <-timeout.C:
			return
		case <-ctx.Done():
			return
		case <-c.done:
			return
		}
	}
}

// lock takes the write lock, or gives up when ctx ends.
func (c *Control) lock(ctx context.Context) error {
	if c.writeMu.TryLock() {
		return nil
	}
	got := make(chan struct{})
	go func() { // owned by this call: hands the lock back if ctx ended first
		c.writeMu.Lock()
		close(got)
	}()
	select {
	case <-got:
		return nil
	case <-ctx.Done():
		go func() {
			<-got
			c.writeMu.Unlock()
		}()
		return fmt.Errorf("control: write: %w", ctx.Err())
	}
}

// raftErr turns raft's errors into ours: not leading becomes a
// NotLeaderError (nothing was applied, the caller may go to the leader);
// leadership lost after proposing is ErrOutcomeUnknown.
func (c *Control) raftErr(op string, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return c.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("control: %s: %w", op, err)
	}
	return fmt.Errorf("control: %s: %w", op, err)
}

// ReadBarrier makes the next local read linearizable: this node still
// leads (a quorum answered it) and has applied every entry committed
// before the call. On a node that does not lead it returns a
// *NotLeaderError.
func (c *Control) ReadBarrier(ctx context.Context) error {
	c.waitLeader(ctx)
	if !c.IsLeader() {
		return c.notLeader()
	}
	timeout := defaultWriteTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if err := c.raft.VerifyLeader().Error(); err != nil {
		return c.raftErr("read barrier", err)
	}
	if err := c.raft.Barrier(timeout).Error(); err != nil {
		return c.raftErr("read barrier", err)
	}
	return nil
}
