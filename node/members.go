package node

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
)

// leaveTimeout is how long leaving the cluster may take at shutdown.
const leaveTimeout = 2 * time.Second

// members is this node in the cluster: membership (node/cluster), the
// peers the runtime and the packet path reach, and failover of the hosts of
// nodes gone too long.
type members struct {
	cl            *cluster.Cluster
	st            *store.Store
	name          string
	failoverAfter time.Duration
	failback      bool
	// isLeader decides who moves hosts (failover.isLeader); nil: the live
	// node first by name.
	isLeader func() bool
	// update is how failover writes (failover.update); nil: the store.
	update func(ctx context.Context, fn func(*store.Tx) error) (uint64, error)
	log    *slog.Logger
}

// newMembers prepares this node's membership; start joins the cluster.
// Its gossip is signed with signer's key (the node certificate's, nil
// while it has none) and peers are checked against the node identity
// records of st (gossipids.go).
func newMembers(cfg Config, st *store.Store, meta cluster.NodeMeta, gossipAdvertise string, signer cluster.Signer, log *slog.Logger) (*members, error) {
	cl, err := cluster.New(cluster.Config{
		Name: cfg.Name, BindAddr: cfg.Gossip, AdvertiseAddr: gossipAdvertise, Join: cfg.Join,
		KnownFile: filepath.Join(cfg.DataDir, knownNodesFile), ForgetAfter: cfg.ForgetAfter,
		Meta: meta, Key: cfg.Key, Logger: log.With("component", "cluster"),
		Signer: signer, Identities: newGossipIdentities(lab.StoreGetter{St: st}),
		// Every node with a certificate has its record (a CA holder
		// records its own at the leader: nodeidentity.go), so a peer
		// without one is refused once this node checks (unknown_node,
		// joined again when the record arrives).
		RequireIdentity: true,
	})
	if err != nil {
		return nil, err
	}
	return &members{cl: cl, st: st, name: cfg.Name, failoverAfter: cfg.FailoverAfter, failback: cfg.Failback, log: log}, nil
}

// knownNodesFile, in the data directory, keeps the control nodes this node
// has seen (node/cluster), so that it finds them again after a restart.
const knownNodesFile = "known-nodes.json"

// start binds the gossip address and joins the cluster. It fails when this
// labd must not join: a live node has its name, or the cluster key does not
// match (the error is one line saying so; the caller must not leave, which
// would speak for the live node of that name). Joining can also fail while
// the other nodes are still starting: the cluster keeps trying the nodes it
// knows, so that is a warning, not an error.
func (m *members) start(ctx context.Context) error {
	err := m.cl.Start(ctx)
	var taken *cluster.NameTakenError
	var key *cluster.KeyMismatchError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &taken), errors.As(err, &key), errors.Is(err, cluster.ErrClosed):
		return err
	}
	m.log.Warn("joining the cluster; trying again every second", "err", err)
	return nil
}

// run runs failover (unless it is off) until ctx is done.
func (m *members) run(ctx context.Context) error {
	eg, ctx := errgroup.WithContext(ctx)
	if m.failoverAfter > 0 {
		fo := &failover{cl: m.cl, st: m.st, self: m.name, after: m.failoverAfter, failback: m.failback, isLeader: m.isLeader, update: m.update, log: m.log.With("component", "failover")}
		eg.Go(func() error { return fo.run(ctx) })
	}
	return eg.Wait()
}

// peers maps every other live node to its overlay address.
func (m *members) peers() map[string]netip.AddrPort { return peersOf(m.cl, m.name) }

// watch signals membership changes (cluster.WatchMembers).
func (m *members) watch() (<-chan struct{}, func()) { return m.cl.WatchMembers() }

// states counts the members by state, for metrics.
func (m *members) states() map[string]int {
	out := map[string]int{}
	for _, mem := range m.cl.Members() {
		out[mem.State.String()]++
	}
	return out
}

// leave tells the others this node is leaving and stops gossiping.
func (m *members) leave() {
	if err := m.cl.Leave(leaveTimeout); err != nil {
		m.log.Warn("leaving the cluster", "err", err)
	}
	m.close()
}

// close stops gossiping at once (idempotent; leave says goodbye first).
func (m *members) close() {
	if err := m.cl.Shutdown(); err != nil {
		m.log.Warn("stopping the cluster", "err", err)
	}
}

// peersOf maps every other live node to its overlay address.
func peersOf(cl *cluster.Cluster, self string) map[string]netip.AddrPort {
	out := map[string]netip.AddrPort{}
	for _, m := range cl.Members() {
		if m.Name == self || m.State != cluster.StateAlive {
			continue
		}
		if ap, err := netip.ParseAddrPort(m.Meta.OverlayAddr); err == nil {
			out[m.Name] = ap
		}
	}
	return out
}
