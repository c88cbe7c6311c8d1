// Package control is labd's control plane: hashicorp/raft over node/raftlog
// (log and stable store) and raft's file snapshot store, with node/store's
// revisioned Store as the state machine. Every write goes through the
// leader's Update: a consistent read of the state, a batch conditioned on
// what it read, one raft entry, and the answer once it is committed and
// applied. Reads answer from the local store; ReadBarrier makes one
// linearizable.
package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/labnet-dev/labnet/node/raftlog"
)

// Tuning holds raft's timing. The zero value is labd's: a leader lost is
// noticed within about half a second on a classroom network.
type Tuning struct {
	HeartbeatTimeout   time.Duration // 500ms
	ElectionTimeout    time.Duration // 500ms
	LeaderLeaseTimeout time.Duration // 250ms
	CommitTimeout      time.Duration // 20ms
	SnapshotInterval   time.Duration // raft's default, 120s
	SnapshotThreshold  uint64        // 8192 entries
	TrailingLogs       uint64        // 10240 entries
	// LogMaxSize caps the raft log file in bytes, as a full disk would
	// (raftlog.Options.MaxSize); 0 is no limit. For tests.
	LogMaxSize int
}

func (t Tuning) withDefaults() Tuning {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.HeartbeatTimeout, 500*time.Millisecond)
	def(&t.ElectionTimeout, 500*time.Millisecond)
	def(&t.LeaderLeaseTimeout, 250*time.Millisecond)
	def(&t.CommitTimeout, 20*time.Millisecond)
	def(&t.SnapshotInterval, 120*time.Second)
	if t.SnapshotThreshold == 0 {
		t.SnapshotThreshold = 8192
	}
	if t.TrailingLogs == 0 {
		t.TrailingLogs = 10240
	}
	return t
}

// Config configures Open.
type Config struct {
	// Name is this node's name: its raft server ID.
	Name string
	// DataDir holds raft's files under DataDir/raft.
	DataDir string
	// Bind is the raft listen address; Advertise what other control nodes
	// dial (Bind's when empty; it must not be unspecified).
	Bind, Advertise string
	// State is the state machine (a *store.Store through StoreState).
	State State
	// Bootstrap makes a node with no raft state yet the first server of a
	// new single-server cluster. Without it (or with state on disk) the
	// node starts and waits: for its old configuration, or to be added.
	Bootstrap bool
	// TLS secures raft connections (tls.go); labd always sets it. Without
	// it raft speaks plain TCP, and only on a loopback Bind.
	TLS *TLS
	// OnError, when set, is called with every persistence failure of the
	// raft log (raftlog.Options.OnError: on raft's goroutines, must not
	// block); Err keeps it too.
	OnError func(error)
	// Logger gets raft's warnings and errors. nil discards them.
	Logger *slog.Logger
	// Tuning is raft's timing; zero fields take labd's values.
	Tuning Tuning
}

// Control is a running control node.
type Control struct {
	name   string
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	stream *streamLayer
	logs   *raftlog.Store
	state  State
	log    *slog.Logger

	writeMu sync.Mutex // serialises Update: read, propose, wait

	leaderMu    sync.Mutex
	leaderCh    chan struct{} // closed at the next leadership change
	needBarrier bool          // became leader since the last Update
	observer    *raft.Observer
	obsCh       chan raft.Observation
	done        chan struct{}
	wg          sync.WaitGroup

	stats    latencies
	orphaned []Record // see Orphaned

	closeOnce sync.Once
	closeErr  error
}

// Open starts raft on cfg's files and address.
func Open(ctx context.Context, cfg Config) (*Control, error) {
	if cfg.Name == "" || cfg.DataDir == "" || cfg.State == nil {
		return nil, errors.New("control: open: Name, DataDir and State are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := cfg.Tuning.withDefaults()
	hl := newHclog(cfg.Logger)

	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(cfg.Name)
	conf.HeartbeatTimeout = t.HeartbeatTimeout
	conf.ElectionTimeout = t.ElectionTimeout
	conf.LeaderLeaseTimeout = t.LeaderLeaseTimeout
	conf.CommitTimeout = t.CommitTimeout
	conf.SnapshotInterval = t.SnapshotInterval
	conf.SnapshotThreshold = t.SnapshotThreshold
	conf.TrailingLogs = t.TrailingLogs
	conf.Logger = hl
	if err := raft.ValidateConfig(conf); err != nil {
		return nil, fmt.Errorf("control: raft config: %w", err)
	}

	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	c := &Control{
		name:     cfg.Name,
		state:    cfg.State,
		log:      cfg.Logger,
		leaderCh: make(chan struct{}),
		done:     make(chan struct{}),
	}
	var err error
	c.logs, err = raftlog.Open(filepath.Join(dir, "raft.db"), raftlog.Options{Check: true, OnError: cfg.OnError, MaxSize: t.LogMaxSize})
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	fail := func(err error) (*Control, error) {
		if c.trans != nil {
			c.trans.Close()
		} else if c.stream != nil {
			c.stream.Close()
		}
		c.logs.Close()
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hl)
	if err != nil {
		return fail(fmt.Errorf("control: snapshots: %w", err))
	}
	if c.stream, err = newStreamLayer(cfg.Bind, cfg.Advertise, cfg.TLS, cfg.Logger); err != nil {
		return fail(fmt.Errorf("control: %w", err))
	}
	c.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: c.stream, MaxPool: 3, Timeout: 5 * time.Second, Logger: hl,
	})

	existing, err := raft.HasExistingState(c.logs, c.logs, snaps)
	if err != nil {
		return fail(fmt.Errorf("control: %w", err))
	}
	if !existing && cfg.State.AppliedIndex() > 0 {
		// The state was applied from a raft log that is gone (its files
		// moved away, as raftlog's corruption message advises). Its
		// indexes mean nothing to the new log: empty it, so that entries
		// are not skipped as replays, and keep its records for the
		// caller to propose again (Orphaned).
		c.orphaned, _ = cfg.State.Snapshot()
		if err := cfg.State.Restore(nil, 0, 0); err != nil {
			return fail(fmt.Errorf("control: reset a state without its raft log: %w", err))
		}
		cfg.Logger.Warn("the state had been applied from a raft log that is gone: emptied it, to be filled through raft", "records", len(c.orphaned))
	}
	if cfg.Bootstrap && !existing {
		self := raft.Server{Suffrage: raft.Voter, ID: conf.LocalID, Address: c.trans.LocalAddr()}
		if err := raft.BootstrapCluster(conf, c.logs, c.logs, snaps, c.trans, raft.Configuration{Servers: []raft.Server{self}}); err != nil {
			return fail(fmt.Errorf("control: bootstrap: %w", err))
		}
	}
	c.raft, err = raft.NewRaft(conf, &fsm{state: cfg.State}, c.logs, c.logs, snaps, c.trans)
	if err != nil {
		return fail(fmt.Errorf("control: start raft: %w", err))
	}
	c.obsCh = make(chan raft.Observation, 16)
	c.observer = raft.NewObserver(c.obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	c.raft.RegisterObserver(c.observer)
	c.wg.Add(1)
	go c.watchLeader()
	return c, nil
}

// watchLeader turns raft's observations into LeaderChanged signals. It is
// owned by Control and ends at Close.
func (c *Control) watchLeader() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case o := <-c.obsCh:
			c.leaderMu.Lock()
			if s, ok := o.Data.(raft.RaftState); ok && s == raft.Leader {
				c.needBarrier = true
			}
			close(c.leaderCh)
			c.leaderCh = make(chan struct{})
			c.leaderMu.Unlock()
		}
	}
}

// Close stops raft and closes its files; the state is the caller's.
// Close is idempotent.
func (c *Control) Close() error {
	c.closeOnce.Do(func() {
		c.raft.DeregisterObserver(c.observer)
		close(c.done)
		c.wg.Wait()
		if err := c.raft.Shutdown().Error(); err != nil {
			c.closeErr = fmt.Errorf("control: shutdown: %w", err)
		}
		c.trans.Close()
		if err := c.logs.Close(); err != nil && c.closeErr == nil {
			c.closeErr = fmt.Errorf("control: close raft log: %w", err)
		}
	})
	return c.closeErr
}

// Err is the raft log's first persistence failure (disk full, a corrupt
// entry read), nil while healthy: the daemon's health turns NOT_SERVING.
func (c *Control) Err() error { return c.logs.Err() }

// Name is this node's raft server ID.
func (c *Control) Name() string { return c.name }

// Addr is the advertised raft address.
func (c *Control) Addr() string { return string(c.trans.LocalAddr()) }

// RefusedConns counts raft connections refused, both directions: a peer
// this node refused, or one that refused it.
func (c *Control) RefusedConns() uint64 {
	var n uint64
	c.stream.refused.All(func(_, _ string, count uint64) bool { n += count; return true })
	return n
}

// Refused yields the raft connections refused by node (the peer's
// verified name, else its address) and reason (RefusedError; "handshake"
// for a TLS handshake that failed otherwise, "refused_by_peer" for a
// peer that closed the connection instead of accepting it).
func (c *Control) Refused(yield func(node, reason string, count uint64) bool) {
	c.stream.refused.All(yield)
}

// Orphaned returns the records the state held at Open when raft had no
// state of its own (its files were moved away): Open emptied the state so
// that it agrees with the new log again. The caller may propose them once
// this node leads; nil when there were none.
func (c *Control) Orphaned() []Record { return c.orphaned }
