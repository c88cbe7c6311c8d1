// Package cluster joins labds into a cluster with hashicorp/memberlist, for
// membership, failure detection and addresses only: each node's API,
// overlay and Raft addresses, its role and whether it leads the control
// plane travel in the node metadata. The desired state is not gossiped: the
// control nodes keep it in Raft (node/control) and members follow them.
//
// A node keeps trying to reach the nodes it knows (Config.Join and every
// control node it has seen, kept in Config.KnownFile), so that a restarted
// control node, or a node back from a network drop or at a new address,
// is back within seconds (rejoin.go). A labd that claims the name of a live
// node, or joins with the wrong cluster key, is refused at Start
// (startcheck.go). Nodes gone longer than Config.ForgetAfter are no longer
// listed. Gossip is bound to node certificates: a node signs its metadata
// with its certificate's key, and peers are checked against the node
// identity records (identity.go, refusals.go, recheck.go). Gossip is
// encrypted with a keyring that can change while the cluster runs
// (keyring.go: the control plane keeps and rotates the keys).
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

	"github.com/labnet-dev/labnet/node/refusal"
)

// DefaultDeadNodeReclaimTime is how long after a node is declared dead its
// name may be taken by a node at another address (a labd restarted with a
// new address, a laptop back with a new IP). A node that left gracefully
// can come back at once. memberlist refuses the new address until then
// ("Conflicting address"); a second labd claiming the name of a node that
// is still alive is refused at its Start (startcheck.go), so the wait only
// has to cover a node wrongly declared dead for a moment.
const DefaultDeadNodeReclaimTime = time.Second

// DefaultForgetAfter is how long a dead or left node stays listed.
const DefaultForgetAfter = 24 * time.Hour

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
	// Join lists gossip addresses (host:port) of nodes to join at Start,
	// and to join again whenever they are not live members.
	Join []string
	// KnownFile, when set, is where the control nodes this node has seen
	// are kept (a small JSON file in the data directory), so that after a
	// restart it still knows where the control plane is.
	KnownFile string
	// Meta is published to the other nodes; UpdateMeta changes it.
	Meta NodeMeta
	// Key, when set, encrypts and authenticates gossip (memberlist's
	// SecretKey). A key of 16, 24 or 32 bytes is used as is; anything
	// else is taken as a passphrase and hashed with SHA-256 to 32 bytes.
	// Nodes with different keys cannot join each other.
	Key []byte
	// Keys are gossip keys (16, 24 or 32 bytes each), primary first,
	// installed before Key's (which, when set and not among them, is
	// added after them); SetKeys changes them while the cluster runs
	// (keyring.go).
	Keys [][]byte
	// Logger receives the cluster's and memberlist's logs; slog.Default()
	// when nil.
	Logger *slog.Logger
	// Local selects memberlist.DefaultLocalConfig (fast timers for
	// loopback and tests) instead of DefaultLANConfig.
	Local bool
	// DeadNodeReclaimTime overrides DefaultDeadNodeReclaimTime.
	DeadNodeReclaimTime time.Duration
	// RejoinInterval is how often the known nodes that are not live
	// members are joined again (with a quarter of jitter either way).
	// Zero takes DefaultRejoinInterval.
	RejoinInterval time.Duration
	// ForgetAfter is how long a dead or left node stays in Members. Zero
	// takes DefaultForgetAfter.
	ForgetAfter time.Duration
	// Signer, when set, returns the key this node signs its metadata
	// with (its certificate's), nil while it has none (identity.go).
	// UpdateMeta after the key changes, so that the new signature spreads.
	Signer Signer
	// Identities, when set, are the node identity records peers are
	// checked against (identity.go); nil admits every peer.
	Identities Identities
	// RequireIdentity refuses peers without an identity record
	// ("unknown_node") once this node checks. Off, a peer without a record
	// is admitted, as the API and the overlay still trust such nodes: a
	// control node that holds the CA signs its own certificate but writes
	// its record only once it leads, so refusing it would keep it out of
	// the Raft group that would make it a voter.
	RequireIdentity bool
	// Tune, when set, adjusts the memberlist configuration after the
	// cluster has filled it in (timers, a transport in tests). It must not
	// replace the delegates.
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
	meta   atomic.Pointer[[]byte]   // this node's encoded NodeMeta, unsigned
	self   atomic.Pointer[selfAddr] // this node's gossip address, once started
	now    func() time.Time

	lifeMu   sync.Mutex // serialises Start and Shutdown
	started  bool
	shutdown bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	membersMu sync.Mutex
	members   map[string]*Member
	changed   map[string]time.Time // when each member last changed state
	leaving   map[string]time.Time // names that announced a graceful leave
	// refusedNow are the members recheck took out: memberlist holds
	// them alive, but their identity records refuse them now.
	refusedNow map[string]bool
	watchers   map[chan struct{}]struct{}
	unwatched  bool // Shutdown closed the watchers

	known    *knownNodes     // rejoin.go
	conflict conflicts       // startcheck.go
	refused  refusal.Counter // refusals.go
	verified verifiedMetas   // identity.go
	pending  pendingNodes    // recheck.go

	keysMu sync.Mutex // serialises SetKeys (keyring.go)
}

// selfAddr is the gossip address this node signs its metadata for.
type selfAddr struct {
	ip   net.IP
	port uint16
}

// New checks cfg and prepares a cluster; Start joins it.
func New(cfg Config) (*Cluster, error) {
	if cfg.Name == "" {
		return nil, errors.New("cluster: empty name")
	}
	if len(cfg.Name) > maxNameLen {
		return nil, fmt.Errorf("cluster: name is %d bytes, over the limit of %d", len(cfg.Name), maxNameLen)
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
	if conf.Keyring, err = newKeyring(cfg); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	// memberlist checks these only while a key is installed.
	conf.GossipVerifyIncoming = true
	conf.GossipVerifyOutgoing = true
	conf.DeadNodeReclaimTime = DefaultDeadNodeReclaimTime
	if cfg.DeadNodeReclaimTime > 0 {
		conf.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	}
	if cfg.RejoinInterval <= 0 {
		cfg.RejoinInterval = DefaultRejoinInterval
	}
	if cfg.ForgetAfter <= 0 {
		cfg.ForgetAfter = DefaultForgetAfter
	}
	conf.LogOutput = &logWriter{log: log.With("component", "memberlist")}
	conf.Logger = nil

	known, err := loadKnown(cfg.KnownFile, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c := &Cluster{
		cfg:        cfg,
		log:        log,
		mlConf:     conf,
		now:        time.Now,
		members:    map[string]*Member{},
		changed:    map[string]time.Time{},
		leaving:    map[string]time.Time{},
		refusedNow: map[string]bool{},
		refused:    refusal.Counter{Every: refusalLogEvery},
		watchers:   map[chan struct{}]struct{}{},
		known:      known,
	}
	meta, err := encodeMeta(cfg.Meta)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.meta.Store(&meta)
	d := &delegate{c: c}
	conf.Delegate = d
	conf.Events = d
	conf.Conflict = d
	conf.Alive = d
	conf.Merge = d
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

// Start binds the gossip address and joins the nodes in Config.Join.
//
// It fails, and the caller should stop, when this labd must not be part of
// the cluster: a live node already has its name (*NameTakenError), or the
// nodes it reached have another cluster key (*KeyMismatchError). When
// nobody could be reached it returns an error too, but the cluster runs on
// and keeps joining the known nodes every RejoinInterval (a student's
// laptop started before the teacher's, say): that one is a warning.
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
	// memberlist asked for the metadata before it knew the address to
	// sign it for: sign it now, before anyone hears of this node.
	local := ml.LocalNode()
	c.self.Store(&selfAddr{ip: local.Addr, port: local.Port})
	if c.cfg.Signer != nil {
		if err := ml.UpdateNode(0); err != nil {
			c.log.Warn("signing this node's metadata", "err", err)
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.lifeMu.Unlock()
	c.log.Info("cluster started", "name", c.cfg.Name, "gossip", c.LocalAddr(), "encrypted", c.Encrypted())

	err = c.startJoin(ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.runRejoin(runCtx)
	}()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.runRecheck(runCtx)
	}()
	return err
}

// Join contacts the given nodes (host:port), each at the same time, and
// exchanges membership with each one it reaches. It returns how many it
// reached; the error is non-nil only if it reached none, and is then a
// *KeyMismatchError when one of them refused this node's key.
func (c *Cluster) Join(ctx context.Context, addrs []string) (int, error) {
	ml := c.ml.Load()
	if ml == nil {
		return 0, errors.New("cluster: not started")
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = joinOne(ctx, ml, a)
		}()
	}
	wg.Wait()
	n := 0
	var keyErr error
	for i, err := range errs {
		switch {
		case err == nil:
			n++
		case keyErr == nil && isKeyMismatch(err):
			keyErr = &KeyMismatchError{Addr: addrs[i], Err: err}
		}
	}
	switch {
	case n > 0:
		if err := errors.Join(errs...); err != nil {
			c.log.Warn("some nodes could not be joined", "err", err)
		}
		return n, nil
	case keyErr != nil:
		return 0, keyErr
	case len(addrs) == 0:
		return 0, errors.New("cluster: join: no address")
	}
	return 0, fmt.Errorf("cluster: join %v: %w", addrs, errors.Join(errs...))
}

// joinOne joins one address. memberlist.Join takes no context and waits
// up to TCPTimeout (10 s on a LAN) for an address that does not answer (a
// laptop gone from the network): a short dial of our own first keeps that
// wait to joinDialTimeout, and shutdown from waiting on it.
func joinOne(ctx context.Context, ml *memberlist.Memberlist, addr string) error {
	if err := dialCheck(ctx, addr, joinDialTimeout); err != nil {
		return err
	}
	_, err := ml.Join([]string{addr})
	return err
}

// joinDialTimeout bounds joinOne's check that an address answers.
const joinDialTimeout = 2 * time.Second

// dialCheck checks that something accepts TCP connections at addr (the
// gossip port of a live labd does; memberlist takes a connection closed at
// once quietly).
func dialCheck(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
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

// UpdateMeta replaces this node's metadata (a leadership change, say) and
// spreads it: it waits up to metaUpdateTimeout for the news to go out
// (memberlist's broadcast; past that it goes on spreading, with gossip and
// push/pull, so that is not an error). Before Start it only sets what Start
// will publish.
func (c *Cluster) UpdateMeta(m NodeMeta) error {
	b, err := encodeMeta(m)
	if err != nil {
		return fmt.Errorf("cluster: update metadata: %w", err)
	}
	c.meta.Store(&b)
	c.lifeMu.Lock()
	closed := c.shutdown
	c.lifeMu.Unlock()
	if closed {
		return ErrClosed
	}
	ml := c.ml.Load()
	if ml == nil {
		return nil
	}
	if err := ml.UpdateNode(metaUpdateTimeout); err != nil {
		c.log.Debug("metadata update not yet sent to every node", "err", err)
	}
	return nil
}

// metaUpdateTimeout bounds how long UpdateMeta waits for the broadcast.
const metaUpdateTimeout = 2 * time.Second

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
		c.saveKnown()
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
// left ones too until they are forgotten (Config.ForgetAfter), sorted by
// name.
//
// memberlist v0.7 does not expose whether a live node is suspected (its
// Node.State field is never set), so live nodes are reported alive.
func (c *Cluster) Members() []Member {
	c.membersMu.Lock()
	c.forgetLocked()
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, *m)
	}
	c.membersMu.Unlock()
	sortMembers(out)
	return out
}

// forgetLocked drops the members dead or left for longer than ForgetAfter.
func (c *Cluster) forgetLocked() {
	now := c.now()
	forgot := false
	for name, m := range c.members {
		if m.State != StateDead && m.State != StateLeft {
			continue
		}
		if now.Sub(c.changed[name]) >= c.cfg.ForgetAfter {
			delete(c.members, name)
			delete(c.changed, name)
			delete(c.refusedNow, name)
			forgot = true
			c.log.Info("node forgotten", "node", name, "after", c.cfg.ForgetAfter)
		}
	}
	if forgot {
		c.notifyLocked()
	}
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
