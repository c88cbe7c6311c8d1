// Package cluster joins labds into a cluster with hashicorp/memberlist: it
// tracks membership (with each node's API and overlay addresses in the node
// metadata) and failure detection. It does not carry the desired state:
// that goes through the control plane (Raft on control nodes, a watch
// stream to members), as Consul and Nomad keep Serf for membership only.
//
// Memberlist callbacks never block: they copy what they are given and hand
// it to the cluster's own goroutines.
package cluster

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// DefaultDeadNodeReclaimTime is how long after a node is declared dead its
// name may be taken by a node at another address (a labd restarted with a
// new address). A node that left gracefully can come back at once.
const DefaultDeadNodeReclaimTime = 10 * time.Second

// Config configures New.
type Config struct {
	// Name is this node's name in the cluster.
	Name string
	// BindAddr is the gossip address, host:port (UDP and TCP). Port 0
	// picks a free port; LocalAddr tells which.
	BindAddr string
	// AdvertiseAddr, host:port, is the address other nodes use to reach
	// this one, when it is not BindAddr (optional).
	AdvertiseAddr string
	// Join lists gossip addresses (host:port) of nodes to join at Start.
	Join []string
	// Meta is published to the other nodes.
	Meta NodeMeta
	// Key, when set, encrypts and authenticates gossip (memberlist's
	// SecretKey). A key of 16, 24 or 32 bytes is used as is; anything
	// else is taken as a passphrase and hashed with SHA-256 to 32 bytes.
	// Nodes with different keys cannot join each other.
	Key []byte
	// Logger receives the cluster's and memberlist's logs; slog.Default()
	// when nil.
	Logger *slog.Logger
	// Local selects memberlist.DefaultLocalConfig (fast timers for
	// loopback and tests) instead of DefaultLANConfig.
	Local bool
	// DeadNodeReclaimTime overrides DefaultDeadNodeReclaimTime.
	DeadNodeReclaimTime time.Duration
	// RejoinInterval is the first wait before joining Join again while this
	// node is alone (the others were not up yet when it started, or it lost
	// them all); the wait doubles up to MaxRejoinInterval. Zero takes
	// DefaultRejoinInterval.
	RejoinInterval time.Duration
	// Tune, when set, adjusts the memberlist configuration after the
	// cluster has filled it in (timers in tests). It must not replace the
	// delegates.
	Tune func(*memberlist.Config)
}

// State is a member's state as this node sees it.
type State int

// Member states.
const (
	StateAlive State = iota
	StateSuspect
	StateDead // failed: stopped answering probes
	StateLeft // left gracefully
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Member is one node of the cluster.
type Member struct {
	Name  string
	State State
	Meta  NodeMeta
	Addr  string // gossip address, host:port
}

// ErrClosed is returned by calls on a cluster that was shut down.
var ErrClosed = errors.New("cluster: shut down")

// Cluster is this node's membership in the cluster.
type Cluster struct {
	cfg    Config
	log    *slog.Logger
	mlConf *memberlist.Config
	queue  *memberlist.TransmitLimitedQueue
	ml     atomic.Pointer[memberlist.Memberlist]

	lifeMu   sync.Mutex // serialises Start and Shutdown
	started  bool
	shutdown bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	membersMu sync.Mutex
	members   map[string]*Member
	leaving   map[string]time.Time // names that announced a graceful leave
	watchers  map[chan struct{}]struct{}
	unwatched bool // Shutdown closed the watchers
}

// New checks cfg and prepares a cluster; Start joins it.
func New(cfg Config) (*Cluster, error) {
	if cfg.Name == "" {
		return nil, errors.New("cluster: empty name")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	var conf *memberlist.Config
	if cfg.Local {
		conf = memberlist.DefaultLocalConfig()
	} else {
		conf = memberlist.DefaultLANConfig()
	}
	conf.Name = cfg.Name
	host, port, err := splitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: bind address: %w", err)
	}
	conf.BindAddr, conf.BindPort = host, port
	conf.AdvertiseAddr, conf.AdvertisePort = "", port
	if cfg.AdvertiseAddr != "" {
		host, port, err := splitHostPort(cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("cluster: advertise address: %w", err)
		}
		conf.AdvertiseAddr, conf.AdvertisePort = host, port
	}
	if len(cfg.Key) > 0 {
		conf.SecretKey = gossipKey(cfg.Key)
		conf.GossipVerifyIncoming = true
		conf.GossipVerifyOutgoing = true
	}
	conf.DeadNodeReclaimTime = DefaultDeadNodeReclaimTime
	if cfg.DeadNodeReclaimTime > 0 {
		conf.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	}
	conf.LogOutput = &logWriter{log: log.With("component", "memberlist")}
	conf.Logger = nil

	c := &Cluster{
		cfg:      cfg,
		log:      log,
		mlConf:   conf,
		members:  map[string]*Member{},
		leaving:  map[string]time.Time{},
		watchers: map[chan struct{}]struct{}{},
	}
	meta, err := encodeMeta(cfg.Meta)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	d := &delegate{c: c, meta: meta}
	conf.Delegate = d
	conf.Events = d
	if cfg.Tune != nil {
		cfg.Tune(conf)
	}
	c.queue = &memberlist.TransmitLimitedQueue{
		NumNodes: func() int {
			if ml := c.ml.Load(); ml != nil {
				return ml.NumMembers()
			}
			return 1
		},
		RetransmitMult: conf.RetransmitMult,
	}
	return c, nil
}

// gossipKey turns Config.Key into a memberlist key.
func gossipKey(k []byte) []byte {
	switch len(k) {
	case 16, 24, 32:
		return append([]byte{}, k...)
	}
	sum := sha256.Sum256(k)
	return sum[:]
}

func splitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, int(port), nil
}

// Rejoin timing (Config.RejoinInterval).
const (
	DefaultRejoinInterval = time.Second
	MaxRejoinInterval     = 30 * time.Second
)

// Start binds the gossip address and joins the nodes in
// Config.Join. It fails if Join lists nodes and none of them could be
// joined; the cluster then still runs, and keeps trying to join them for
// as long as it is alone (a student's laptop started before the
// instructor's, say).
func (c *Cluster) Start(ctx context.Context) error {
	c.lifeMu.Lock()
	if c.shutdown {
		c.lifeMu.Unlock()
		return ErrClosed
	}
	if c.started {
		c.lifeMu.Unlock()
		return errors.New("cluster: already started")
	}
	ml, err := memberlist.Create(c.mlConf)
	if err != nil {
		c.lifeMu.Unlock()
		return fmt.Errorf("cluster: start gossip on %s: %w", c.cfg.BindAddr, err)
	}
	c.ml.Store(ml)
	c.started = true
	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.runRejoin(runCtx)
	}()
	c.lifeMu.Unlock()
	c.log.Info("cluster started", "name", c.cfg.Name, "gossip", c.LocalAddr(), "encrypted", len(c.cfg.Key) > 0)
	if len(c.cfg.Join) > 0 {
		if _, err := c.Join(ctx, c.cfg.Join); err != nil {
			return err
		}
	}
	return nil
}

// runRejoin joins Config.Join again whenever this node has been alone for
// a while, backing off from RejoinInterval to MaxRejoinInterval.
func (c *Cluster) runRejoin(ctx context.Context) {
	if len(c.cfg.Join) == 0 {
		return
	}
	first := c.cfg.RejoinInterval
	if first <= 0 {
		first = DefaultRejoinInterval
	}
	wait := first
	failures := 0
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ml := c.ml.Load()
		if ml.NumMembers() > 1 {
			wait, failures = first, 0
			t.Reset(MaxRejoinInterval)
			continue
		}
		n, err := c.Join(ctx, c.cfg.Join)
		switch {
		case err != nil:
			failures++
			if failures == 1 {
				c.log.Warn("alone: joining again until a node answers", "join", c.cfg.Join, "err", err)
			} else {
				c.log.Debug("join failed", "join", c.cfg.Join, "err", err)
			}
			wait = min(wait*2, MaxRejoinInterval)
		default:
			if ml.NumMembers() > 1 {
				c.log.Info("joined the cluster", "reached", n, "members", ml.NumMembers())
			}
			wait, failures = first, 0
		}
		t.Reset(wait)
	}
}

// Join contacts the given nodes (host:port) and exchanges full state with
// each one it reaches. It returns how many it reached; the error is non-nil
// only if it reached none.
func (c *Cluster) Join(ctx context.Context, addrs []string) (int, error) {
	ml := c.ml.Load()
	if ml == nil {
		return 0, errors.New("cluster: not started")
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// memberlist.Join takes no context; its dials are bounded by
	// TCPTimeout per address.
	n, err := ml.Join(addrs)
	if n == 0 && err != nil {
		return 0, fmt.Errorf("cluster: join %v: %w", addrs, err)
	}
	if err != nil {
		c.log.Warn("some nodes could not be joined", "err", err)
	}
	return n, nil
}

// LocalAddr is the gossip address this node advertises (with the port
// chosen when BindAddr's port was 0), or "" before Start.
func (c *Cluster) LocalAddr() string {
	ml := c.ml.Load()
	if ml == nil {
		return ""
	}
	return ml.LocalNode().Address()
}

// Leave tells the other nodes that this node is leaving for good, so they
// mark it left rather than dead, and waits up to timeout for the news to go
// out. Call Shutdown afterwards.
func (c *Cluster) Leave(timeout time.Duration) error {
	ml := c.ml.Load()
	if ml == nil {
		return errors.New("cluster: not started")
	}
	c.announceLeave(ml, timeout/2)
	if err := ml.Leave(timeout); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	return nil
}

// Shutdown stops gossiping at once, without telling anyone (the others will
// find this node dead), and waits for the cluster's goroutines. It is
// idempotent. For a graceful exit, Leave first.
func (c *Cluster) Shutdown() error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.shutdown {
		return nil
	}
	c.shutdown = true
	var err error
	if c.started {
		c.cancel()
		err = c.ml.Load().Shutdown()
		c.wg.Wait()
	}
	c.membersMu.Lock()
	c.unwatched = true
	for ch := range c.watchers {
		delete(c.watchers, ch)
		close(ch)
	}
	c.membersMu.Unlock()
	if err != nil {
		return fmt.Errorf("cluster: shutdown: %w", err)
	}
	return nil
}

// Members returns every node this node knows of, this one included, dead and
// left ones too, sorted by name.
//
// memberlist v0.7 does not expose whether a live node is suspected (its
// Node.State field is never set), so live nodes are reported alive.
func (c *Cluster) Members() []Member {
	c.membersMu.Lock()
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, *m)
	}
	c.membersMu.Unlock()
	sortMembers(out)
	return out
}

// WatchMembers returns a channel that receives a value after the membership
// changes (several changes may be coalesced into one signal; read Members
// for the new state) and a function that ends the watch. The channel is
// closed by Shutdown.
func (c *Cluster) WatchMembers() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.membersMu.Lock()
	defer c.membersMu.Unlock()
	if c.unwatched {
		close(ch)
		return ch, func() {}
	}
	c.watchers[ch] = struct{}{}
	return ch, func() {
		c.membersMu.Lock()
		defer c.membersMu.Unlock()
		if _, ok := c.watchers[ch]; ok {
			delete(c.watchers, ch)
			close(ch)
		}
	}
}
