package follow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Backoff bounds between rounds of failed attempts.
const (
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 2 * time.Second
)

// Candidate is a control node a follower may follow.
type Candidate struct {
	Name string
	Addr string // its API address
}

// Config configures a Follower.
type Config struct {
	Node string // this member's name, sent to the control node
	// Replica returns the member's replica as it is now: the daemon may
	// reopen it after a persistence failure.
	Replica func() Replica
	// Candidates lists the control nodes to try, best first (the daemon:
	// those gossip knows, then those it last knew).
	Candidates func() []Candidate
	// Dial returns a connection to c's API. The follower does not close
	// it: the daemon keeps its peer connections.
	Dial func(ctx context.Context, c Candidate) (grpc.ClientConnInterface, error)
	// ReplicaFailed is told, once per failure, that the replica reports a
	// persistence error and the follower stopped applying to it; nil: only
	// logged.
	ReplicaFailed func(err error)
	// Removed, when set, is told, after every refused stream, that the
	// control node refused this node because an admin removed it (labctl
	// node remove; node/auth's NodeRefusedError, reason removed).
	Removed func()
	Now     func() time.Time // time.Now when nil
	// MinBackoff and MaxBackoff bound the wait after a round of
	// candidates that all failed (MinBackoff, MaxBackoff when 0).
	MinBackoff, MaxBackoff time.Duration
	// IdleTimeout ends a stream that has brought nothing (not even a
	// heartbeat) for this long, so that a connection that died with the
	// network (no reset ever comes) is left for another attempt;
	// 3*HeartbeatEvery when 0.
	IdleTimeout time.Duration
	Logger      *slog.Logger
}

// Follower keeps a member's replica following the control plane. Run runs
// it; Staleness may be called from any goroutine.
type Follower struct {
	cfg Config

	mu        sync.Mutex
	heard     time.Time // last message from any control node
	leaderRev uint64    // the control plane's revision, as last heard
	from      string    // the control node followed now ("" between sessions)
	resync    bool      // ask for a snapshot next time
}

// New returns a follower; nothing runs until Run.
func New(cfg Config) *Follower {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = MinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(MaxBackoff, cfg.MinBackoff)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 3 * HeartbeatEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Follower{cfg: cfg, heard: cfg.Now()}
}

// Staleness is how long ago the control plane was last heard from (any
// message: a change, a snapshot or a heartbeat; before the first, since
// the follower was made, so a lower bound) and the replica's revision.
func (f *Follower) Staleness() (time.Duration, uint64) {
	f.mu.Lock()
	heard := f.heard
	f.mu.Unlock()
	var rev uint64
	if r := f.cfg.Replica(); r != nil {
		rev = r.Revision()
	}
	return f.cfg.Now().Sub(heard), rev
}

// Following names the control node the follower streams from now, "" when
// it has none.
func (f *Follower) Following() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.from
}

func (f *Follower) touch(leaderRev uint64) {
	now := f.cfg.Now()
	f.mu.Lock()
	f.heard = now
	if leaderRev > 0 {
		f.leaderRev = leaderRev
	}
	f.mu.Unlock()
}

// Run follows until ctx is done: it streams from one candidate at a time,
// moves on to the next at once when a stream fails, and waits (100 ms
// doubling to 2 s) only after a whole round of candidates failed without a
// single message. It never gives up; it returns nil when ctx ends.
func (f *Follower) Run(ctx context.Context) error {
	backoff := f.cfg.MinBackoff
	next := 0 // the candidate to try next, an index into the current list
	failedInRound := 0
	for ctx.Err() == nil {
		cands := f.cfg.Candidates()
		if len(cands) > 0 {
			c := cands[next%len(cands)]
			next = (next + 1) % len(cands)
			progressed, err := f.session(ctx, c)
			if ctx.Err() != nil {
				return nil
			}
			if f.cfg.Removed != nil && IsRemoved(err) {
				f.cfg.Removed()
			}
			if progressed {
				backoff, failedInRound = f.cfg.MinBackoff, 0
				f.cfg.Logger.Warn("stream from the control plane ended: trying the control nodes", "control", c.Name, "err", err)
			} else {
				f.cfg.Logger.Debug("control node not followed", "control", c.Name, "addr", c.Addr, "err", err)
			}
			if failedInRound++; failedInRound < len(cands) {
				continue // try the next candidate at once
			}
		}
		failedInRound = 0
		if err := sleep(ctx, backoff); err != nil {
			return nil
		}
		backoff = min(2*backoff, f.cfg.MaxBackoff)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errReplica marks a replica that cannot be written: the session ends and
// the next one re-syncs once the daemon has reopened it.
var errReplica = errors.New("replica has a persistence error")

// session follows c until the stream fails. progressed is true when a
// message came (the candidate is worth coming back to without a wait).
func (f *Follower) session(ctx context.Context, c Candidate) (progressed bool, err error) {
	rep := f.cfg.Replica()
	if rep == nil || rep.Err() != nil {
		// Stopped applying: a failed replica may have lost writes in
		// memory or on disk; once it is healthy again (reopened), it is
		// re-synced from a snapshot.
		f.mu.Lock()
		f.resync = true
		f.mu.Unlock()
		return false, errReplica
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, err := f.cfg.Dial(ctx, c)
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", c.Name, err)
	}
	f.mu.Lock()
	from := rep.Revision()
	if f.resync {
		from = 0
	}
	f.mu.Unlock()
	stream, err := labv1.NewControlServiceClient(conn).Follow(ctx, &labv1.FollowRequest{Node: f.cfg.Node, FromRevision: from})
	if err != nil {
		return false, fmt.Errorf("follow %s: %w", c.Name, err)
	}
	f.setFrom(c.Name)
	defer f.setFrom("")
	// The control node sends at least a heartbeat a second: silence for
	// IdleTimeout means the connection is gone, though no error says so.
	idle := time.AfterFunc(f.cfg.IdleTimeout, cancel)
	defer idle.Stop()
	var snap snapshotBuilder
	for {
		m, err := stream.Recv()
		if err != nil {
			if isDecodeError(err) {
				f.needResync()
			}
			if !idle.Stop() {
				err = fmt.Errorf("nothing heard for %v: %w", f.cfg.IdleTimeout, err)
			}
			return progressed, fmt.Errorf("follow %s: %w", c.Name, err)
		}
		idle.Reset(f.cfg.IdleTimeout)
		if !progressed {
			progressed = true
			f.cfg.Logger.Info("following the control plane", "control", c.Name, "from_revision", from)
		}
		if err := f.handle(rep, &snap, m); err != nil {
			if errors.Is(err, errReplica) {
				f.replicaFailed(rep.Err())
			} else {
				f.needResync()
			}
			return true, fmt.Errorf("follow %s: %w", c.Name, err)
		}
	}
}

// handle applies one message to rep. An error other than errReplica means
// the stream cannot be trusted any more: re-sync.
func (f *Follower) handle(rep Replica, snap *snapshotBuilder, m *labv1.FollowResponse) error {
	switch ev := m.GetEvent().(type) {
	case *labv1.FollowResponse_Snapshot:
		done, err := snap.add(ev.Snapshot)
		if err != nil {
			return err
		}
		if done {
			if err := rep.Restore(snap.recs, snap.rev, 0); err != nil {
				return f.applyError(rep, fmt.Errorf("restore snapshot at %d: %w", snap.rev, err))
			}
			f.mu.Lock()
			f.resync = false
			f.mu.Unlock()
			snap.recs = nil
		}
		f.touch(ev.Snapshot.GetRevision())
	case *labv1.FollowResponse_Change:
		if snap.started {
			return fmt.Errorf("change %d inside a snapshot", ev.Change.GetRevision())
		}
		c, err := decodeChange(ev.Change)
		if err != nil {
			return err
		}
		if c.Rev <= rep.Revision() {
			return fmt.Errorf("change %d: the replica is already at %d", c.Rev, rep.Revision())
		}
		if err := rep.ApplyChange(c); err != nil {
			return f.applyError(rep, fmt.Errorf("apply change %d: %w", c.Rev, err))
		}
		f.touch(c.Rev)
	case *labv1.FollowResponse_Heartbeat:
		f.touch(ev.Heartbeat.GetRevision())
	default:
		return fmt.Errorf("unknown message %T", ev)
	}
	return nil
}

// applyError tells a replica failure (errReplica) from a refused change (a
// gap: re-sync).
func (f *Follower) applyError(rep Replica, err error) error {
	if rep.Err() != nil {
		return fmt.Errorf("%w: %w", errReplica, err)
	}
	return err
}

func (f *Follower) replicaFailed(err error) {
	f.needResync()
	f.cfg.Logger.Error("replica cannot be written: stopped following until it is reopened", "err", err)
	if f.cfg.ReplicaFailed != nil {
		f.cfg.ReplicaFailed(err)
	}
}

func (f *Follower) needResync() {
	f.mu.Lock()
	f.resync = true
	f.mu.Unlock()
}

func (f *Follower) setFrom(name string) {
	f.mu.Lock()
	f.from = name
	f.mu.Unlock()
}

// IsRemoved reports whether err is a control node's refusal of this
// node because it was removed: PermissionDenied saying "was removed"
// (node/auth's NodeRefusedError).
func IsRemoved(err error) bool {
	return status.Code(err) == codes.PermissionDenied && strings.Contains(status.Convert(err).Message(), " was removed (labctl node remove)")
}

// isDecodeError reports a message the client could not decode (gRPC ends
// the stream with Internal) or a server that lost data: the stream's
// position cannot be trusted, so the next one starts from a snapshot.
func isDecodeError(err error) bool {
	switch status.Code(err) {
	case codes.Internal, codes.DataLoss:
		return true
	}
	return false
}

// progress is Staleness with the control plane's revision as last heard
// (0 before any): a replica whose revision is below it has not caught up.
func (f *Follower) progress() (age time.Duration, rev, leaderRev uint64) {
	age, rev = f.Staleness()
	f.mu.Lock()
	leaderRev = f.leaderRev
	f.mu.Unlock()
	return age, rev, leaderRev
}
