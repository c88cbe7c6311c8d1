package node

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/overlay"
	"github.com/labnet-dev/labnet/node/store"
	"github.com/labnet-dev/labnet/stack"
)

// packetPath carries the lab's packets: the fabric delivers them between
// the hosts of this node, and the overlay link (GENEVE over UDP) to and
// from the hosts of other nodes. Its policy: only cluster members may send
// overlay packets, and not those whose identity is removed; others are
// dropped and counted (the sealing authenticates them too when there is
// a key). Between nodes with identities, packets are sealed per pair of
// nodes and accepted into a virtual network only from a node that runs an
// interface on it, with that interface's addresses (overlaypeers.go,
// netindex.go).
type packetPath struct {
	fab  *fabric.Fabric
	conn *overlay.Conn
	link *overlay.Link

	// allowed is the overlay addresses of the other live members.
	allowed atomic.Pointer[map[netip.AddrPort]bool]
	// peers and changed are the members to allow and the signal that
	// they changed (followMembers); stopWatch ends the watch.
	peers     func() map[string]netip.AddrPort
	changed   <-chan struct{}
	stopWatch func()

	// pairs are the nodes sealed per pair; index who runs interfaces on
	// which networks. Both follow the replica (followIdentities) and the
	// members.
	pairs   pairPeers
	index   atomic.Pointer[netIndex]
	removed atomic.Pointer[map[string]bool] // nodes whose identity is removed
	// pairOnly: this node seals per pair (its own record names its key),
	// so only peers sealed per pair are allowed: a peer without a record
	// gets no cluster-key fallback.
	pairOnly atomic.Bool
	self     string
	st       *store.Store
	key      func() *ecdsa.PrivateKey
	// sealed: the overlay seals (a cluster key, or an address off
	// loopback), so it seals per pair with nodes that have identities. A
	// loopback overlay without a cluster key stays plain GENEVE, as tshark
	// decodes it, for development on one machine.
	sealed bool
	// encrypted reports whether gossip is encrypted (keys from the control
	// plane, handed out at enrolment): the cluster is then sealed, so the
	// overlay seals per pair on loopback too (a member enrolled by invite
	// holds no cluster key). Nil: never.
	encrypted func() bool
	// sharedOnly: --overlay-shared-key-only (benchmarks): no per-pair
	// sealing.
	sharedOnly bool
	log        *slog.Logger
}

// newPacketPath binds the overlay address (cfg.Overlay) and joins the
// fabric to it. No sender is allowed until followMembers.
func newPacketPath(cfg Config, log *slog.Logger) (*packetPath, error) {
	var key *overlay.Key
	if len(cfg.Key) > 0 {
		var err error
		if key, err = overlay.NewKey(cfg.Key); err != nil {
			return nil, fmt.Errorf("--cluster-key: %w", err)
		}
	}
	addr, err := netip.ParseAddrPort(cfg.Overlay)
	if err != nil {
		return nil, fmt.Errorf("--overlay %s: %w", cfg.Overlay, err)
	}
	p := &packetPath{fab: fabric.New(fabric.WithClock(stack.SystemClock{})), stopWatch: func() {}, self: cfg.Name, log: log,
		sealed: key != nil || !isLoopback(cfg.Overlay), sharedOnly: cfg.SharedKeyOnly}
	p.allowed.Store(&map[netip.AddrPort]bool{})
	p.removed.Store(&map[string]bool{})
	p.index.Store(newNetIndex(lab.All{}))
	noPeers, _ := overlay.NewPeerSet(cfg.Name, nil, nil)
	p.pairs.set.Store(noPeers)
	// Large socket buffers absorb the trains a TCP flow sends at once.
	p.conn, err = overlay.Listen(addr, overlay.Options{Key: key, Peers: &p.pairs, Accept: p.accept, ReadBuffer: 8 << 20, WriteBuffer: 8 << 20})
	if err != nil {
		return nil, fmt.Errorf("--overlay %s: %w", cfg.Overlay, err)
	}
	p.link = overlay.NewLink(p.conn, p.fab.DeliverRemote, overlay.WithLogger(log.With("component", "overlay")), overlay.WithAdmit(p.admit))
	p.fab.SetRemote(p.link)
	return p, nil
}

// accept is the overlay's sender check: members only.
func (p *packetPath) accept(from netip.AddrPort) bool { return (*p.allowed.Load())[from] }

// admit is the overlay's check of a packet's network and source: a packet
// sealed per pair comes from a known node, which must run an interface
// on the packet's network with its source address. Packets from nodes
// without identities (the cluster key, loopback development) are not
// checked, their sender is not known, unless this node seals per pair:
// then they are refused.
func (p *packetPath) admit(from *overlay.Peer, vni uint32, pkt []byte) overlay.Admission {
	if from == nil {
		if p.pairOnly.Load() {
			// Not sealed per pair, to a node that seals per pair: the
			// allow-list keeps such senders out; this is the backstop.
			return overlay.NotOnNetwork
		}
		return overlay.Admit
	}
	return p.index.Load().admit(from.Node(), vni, pkt)
}

// followIdentities makes the per-pair keys and the network index follow
// the replica st (node identities, hosts and networks) and this node's
// certificate key (key, nil before the node has one), while run runs.
func (p *packetPath) followIdentities(st *store.Store, key func() *ecdsa.PrivateKey) {
	p.st, p.key = st, key
}

// rebuild recomputes, from the members, the replica and the key, the
// allow-list, the per-pair peers and the network index.
func (p *packetPath) rebuild() {
	var peers map[string]netip.AddrPort
	if p.peers != nil {
		peers = p.peers()
	}
	if p.st != nil {
		var own *ecdsa.PrivateKey
		if (p.sealed || p.encrypted != nil && p.encrypted()) && !p.sharedOnly {
			own = p.key() // nil: no per-pair sealing (nor without a certificate)
		}
		set, removed, pairOnly := buildPeers(p.self, own, readIdentities(p.st), peers, p.pairs.set.Load(), p.log)
		p.removed.Store(&removed)
		p.pairs.set.Store(set)
		p.pairOnly.Store(pairOnly)
		if len(set.Peers()) == 0 {
			// Only packets sealed per pair are admitted by the index: a
			// single node, or a loopback cluster without a key, has none
			// and need not decode every host on each change.
			p.index.Store(newNetIndex(lab.All{}))
			p.allow(peers)
			return
		}
		all, err := lab.ReadAll(p.st)
		if err != nil {
			p.log.Warn("overlay: records left out of the network index", "err", err)
		}
		p.index.Store(newNetIndex(all))
	}
	p.allow(peers)
}

// followMembers makes the allow-list follow peers (node name to overlay
// address), read again after every signal of watch (cluster.WatchMembers)
// while run runs.
func (p *packetPath) followMembers(peers func() map[string]netip.AddrPort, watch func() (<-chan struct{}, func())) {
	p.peers = peers
	p.changed, p.stopWatch = watch()
}

// allow replaces the allow-list with the addresses of peers, but for
// nodes whose identity is removed and, once this node seals per pair,
// nodes it has no pair keys with (no identity record: unknown_node).
func (p *packetPath) allow(peers map[string]netip.AddrPort) {
	removed := *p.removed.Load()
	set, pairOnly := p.pairs.set.Load(), p.pairOnly.Load()
	m := map[netip.AddrPort]bool{}
	for name, ap := range peers {
		if removed[name] {
			continue
		}
		if pairOnly && set.ByAddr(ap) == nil {
			continue
		}
		m[ap] = true
	}
	p.allowed.Store(&m)
}

// run carries packets from the overlay into the fabric and keeps the
// allow-list up to date until ctx is done; the link closes the overlay
// socket then.
func (p *packetPath) run(ctx context.Context) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		if err := p.link.Run(ctx); err != nil {
			return fmt.Errorf("overlay: %w", err)
		}
		return nil
	})
	if p.peers != nil || p.st != nil {
		var stored <-chan struct{}
		if p.st != nil {
			var cancel func()
			stored, cancel = p.st.Subscribe()
			defer cancel()
		}
		members := p.changed
		eg.Go(func() error {
			for {
				p.rebuild()
				select {
				case <-ctx.Done():
					return nil
				case _, ok := <-members:
					if !ok {
						members = nil // the cluster shut down; the replica may still change
					}
				case <-stored:
				}
			}
		})
	}
	return eg.Wait()
}

// peerCounters are the counters of the nodes sealed per pair, by name.
func (p *packetPath) peerCounters() map[string]overlay.PeerCounters {
	out := map[string]overlay.PeerCounters{}
	for _, peer := range p.pairs.set.Load().Peers() {
		out[peer.Node()] = peer.Counters()
	}
	return out
}

// addr is the overlay's bound address.
func (p *packetPath) addr() netip.AddrPort { return p.conn.LocalAddr() }

// close ends the member watch and closes the overlay socket (again, if
// run has closed it).
func (p *packetPath) close() error {
	p.stopWatch()
	if err := p.conn.Close(); err != nil {
		return fmt.Errorf("overlay: close: %w", err)
	}
	return nil
}
