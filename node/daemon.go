package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/health"

	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/follow"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/metrics"
	"github.com/labnet-dev/labnet/node/runtime"
	"github.com/labnet-dev/labnet/node/store"
	"github.com/labnet-dev/labnet/stack"
)

// Daemon is one labd: the replica of the desired state (node/store), the
// runtime that runs this node's hosts, and three parts around them: the
// packet path (packetpath.go), the cluster (members.go) and the API
// (apiserver.go), with the optional TUN gateway (gateway.go) and metrics.
// New builds it and binds its addresses, Run runs it until its context
// ends, Close releases what New took.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	started time.Time

	store    *store.Store
	control  *controlPlane // raft on a control node; the API's writer
	gw       *gateway      // nil without --tun
	api      *apiServer
	metrics  net.Listener // nil without --metrics
	packets  *packetPath
	members  *members
	pki      *pki             // the cluster CA and this node's certificate (tls.go)
	follower *follow.Follower // nil on control nodes (follower.go)
	enroll   *controlServer   // ControlService: Follow and Enroll (enroll.go)
	keys     *gossipKeys      // the gossip keys (gossipkeys.go)
	fence    *follow.Fence    // a member's, with failover on; nil otherwise
	removed  *removedSelf     // whether an admin removed this node (removedself.go)
	rt       *runtime.Runtime

	health        atomic.Pointer[health.Server] // the API's, for storeFailed
	storeFailOnce sync.Once
	raftFailOnce  sync.Once

	ran       bool
	closeOnce sync.Once
	closeErr  error
}

// New checks cfg, opens the store (the data directory is locked while the
// daemon holds it), binds the API, metrics, overlay and, when configured,
// the TUN device, and wires the parts together. On an error, what was
// opened is closed again.
func New(cfg Config, log *slog.Logger) (d *Daemon, err error) {
	if cfg.Raft == "" {
		cfg.Raft = raftBeside(cfg.API)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	d = &Daemon{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Close())
			d = nil
		}
	}()
	// A control node's state is raft's state machine; a member's is the
	// replica it follows.
	var legacy *legacyImport
	if cfg.Control {
		d.store, legacy, err = openControlState(cfg.DataDir, d.storeFailed)
	} else {
		d.store, err = openState(cfg.DataDir, log, d.storeFailed)
	}
	if err != nil {
		return d, err
	}
	if cfg.Tun.Device != "" {
		if d.gw, err = openGateway(cfg.Tun, log.With("component", "tun")); err != nil {
			return d, err
		}
	}
	if d.api, err = listenAPI(cfg.API, log); err != nil {
		return d, err
	}
	if cfg.Metrics != "" {
		if d.metrics, err = metrics.Listen(cfg.Metrics); err != nil {
			return d, fmt.Errorf("--metrics %s: %w", cfg.Metrics, err)
		}
	}
	d.started = time.Now()

	// The overlay carries packets to hosts on other nodes; the cluster
	// finds the nodes and tells which are alive (the desired state is not
	// replicated by gossip any more: that is the control plane's).
	if d.packets, err = newPacketPath(cfg, log); err != nil {
		return d, err
	}
	adv := advertise(cfg, d.api.lis.Addr().String(), d.packets.addr(), log)
	if d.pki, err = openPKI(cfg, adv.api, log.With("component", "tls")); err != nil {
		return d, err
	}
	// Raft runs over TLS with the node's certificate (rafttls.go).
	if d.control, err = openControlPlane(cfg, d.store, legacy, raftTLS(d.pki, d.store), d.raftFailed, log.With("component", "control")); err != nil {
		return d, err
	}
	meta := cluster.NodeMeta{
		APIAddr: adv.api, OverlayAddr: adv.overlay, Version: Version, Started: d.started.Unix(),
		Role: d.control.role(), RaftAddr: d.control.raftAddr(),
		CAHash: d.pki.caHash(), CAKey: d.pki.ca != nil,
	}
	if d.members, err = newMembers(cfg, d.store, meta, adv.gossip, d.pki.gossipSigner, log); err != nil {
		return d, err
	}
	if err := d.setupGossipKeys(); err != nil {
		return d, err
	}
	d.control.attach(d.members.cl, meta)
	d.control.firstAdmin = newFirstAdmin(cfg, d.store, d.control, log)
	d.control.notServing = d.notServing
	// Only the leader moves hosts, and its moves commit through Raft.
	d.members.isLeader, d.members.update = d.control.isLeader, d.control.Update
	peersChanged, _ := d.members.watch() // ends when the cluster shuts down
	d.packets.followMembers(d.members.peers, d.members.watch)
	d.packets.followIdentities(d.store, d.pki.nodeKey)
	fenceChanged := make(chan struct{}, 1)
	d.removed = &removedSelf{dir: cfg.DataDir, serial: d.pki.serial, changed: fenceChanged, log: log.With("component", "follow")}
	d.removed.load()
	d.rt = runtime.New(runtime.Config{
		Node: cfg.Name, Store: d.store, Fabric: d.packets.fab, Clock: stack.SystemClock{}, Logger: log.With("component", "runtime"),
		Peers: d.members.peers, PeersChanged: peersChanged,
		Started: d.gw.hook(),
		Fenced:  d.fenced, FenceChanged: fenceChanged, Removed: d.removed.is,
	})
	self := &clusterNodes{cl: d.members.cl, st: d.store, name: cfg.Name, started: d.started}
	staleness, control := d.newFollowing(log)
	d.enroll = control
	d.wireGossipKeys(control)
	if d.follower != nil && cfg.FailoverAfter > 0 {
		d.fence = follow.NewFence(d.follower, cfg.FailoverAfter, fenceChanged, log.With("component", "fence"))
	}
	d.api.register(api.Config{
		Node: cfg.Name, Store: d.store, Writer: d.control, Membership: d.control, Hosts: hostsOf{d.rt}, Members: self, Logger: log.With("component", "api"),
		Staleness: staleness, Control: control,
		Invite: func() (string, string) { return adv.api, d.pki.caHash() },
		Gossip: d.members.cl.LocalAddr,
	}, d.members.cl, apiSecurity{
		pki: d.pki, allowPlain: isLoopback(cfg.API) && !cfg.tlsOnly(), dir: lab.NewDirectory(d.store), log: log.With("component", "audit"),
	})
	d.health.Store(d.api.health)
	if err := d.store.Err(); err != nil {
		d.storeFailed(err)
	}
	if err := d.control.Err(); err != nil {
		d.raftFailed(err)
	}
	return d, nil
}

// Run joins the cluster, enrols for a certificate when the node has no
// usable one (enroll.go: the API serves nothing before), and runs every
// part until ctx is done or one fails; "labd ready" is logged once the
// API serves and, on the node that formed the control plane, the first
// admin exists. Then it shuts down in order: the API stops accepting
// calls, the node leaves the cluster, calls in flight finish
// (shutdownGrace at most) and the hosts stop. Run may be called once;
// Close follows it.
func (d *Daemon) Run(ctx context.Context) error {
	if d.ran {
		return errors.New("labd: Run called twice")
	}
	d.ran = true
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// An invited node enrols before it gossips: Enroll hands it the
	// gossip keys (gossipkeys_daemon.go).
	if enrolled, err := d.enrolBeforeGossip(ctx); err != nil || (!enrolled && ctx.Err() != nil) {
		return err
	}
	if err := d.startMembers(ctx); err != nil {
		return err
	}
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return d.packets.run(ctx) })
	if d.metrics != nil {
		reg := metrics.New(d.metricsSources())
		eg.Go(func() error { return metrics.Serve(ctx, d.metrics, reg) })
		d.log.Info("metrics", "addr", d.metrics.Addr().String())
	}
	eg.Go(func() error { return d.members.run(ctx) })
	eg.Go(func() error { return d.rt.Run(ctx) })
	eg.Go(func() error { return d.control.run(ctx) })
	eg.Go(func() error {
		<-ctx.Done()
		d.api.stopAccepting()
		d.members.leave()
		d.api.drain()
		return nil
	})
	// The API serves TLS with the node's certificate, and the follower
	// calls the control nodes with it: a node without one enrols first,
	// with a node gossip shows holding the CA.
	if !d.pki.hasCert() || d.pki.otherCA(d.members.cl) {
		var err error
		if d.cfg.Enroll != "" {
			err = d.enrolInvited(ctx)
		} else {
			err = d.pki.enrol(ctx, d.members.cl, d.cfg.Key)
		}
		if err != nil {
			if ctx.Err() != nil { // shutting down, or another part failed
				return eg.Wait()
			}
			cancel() // refused: labd stops, saying why
			return errors.Join(err, eg.Wait())
		}
		d.control.publishCA(d.pki.caHash())
		d.installEnrolledKeys()
	}
	eg.Go(func() error { return d.keys.run(ctx) })
	eg.Go(func() error { d.recordOwnIdentity(ctx); return nil })
	if d.follower != nil {
		eg.Go(func() error { return d.follower.Run(ctx) })
	}
	if d.fence != nil {
		eg.Go(func() error { return d.fence.Run(ctx) })
	}
	eg.Go(d.api.serve)
	d.control.firstAdmin.wait(ctx)
	if d.follower != nil {
		d.awaitUsers(ctx)
	}
	d.log.Info("labd ready", "name", d.cfg.Name, "role", d.control.role(), "api", d.api.lis.Addr().String(), "data", d.cfg.DataDir, "version", Version)
	return eg.Wait()
}

// metricsSources are what --metrics reports: the overlay's counters, the
// members by state, every interface of this node's hosts and the API's
// calls by outcome.
func (d *Daemon) metricsSources() metrics.Sources {
	return metrics.Sources{
		Overlay:      d.packets.conn.Counters,
		OverlayPeers: d.packets.peerCounters,
		Members:      d.members.states,
		Interfaces: metrics.HostInterfaces(func(yield func(string, metrics.Host) bool) {
			for name, h := range d.rt.All() {
				if !yield(name, h) {
					return
				}
			}
		}),
		APICalls: func(yield func(metrics.APICall) bool) {
			for c := range d.api.auth.Calls {
				if !yield(metrics.APICall(c)) {
					return
				}
			}
		},
		GossipRefused: func(yield func(metrics.GossipRefusal) bool) {
			for r := range d.members.cl.Refusals() {
				if !yield(metrics.GossipRefusal(r)) {
					return
				}
			}
		},
		NodeRefusals: func(yield func(metrics.NodeRefusal) bool) {
			more := true
			each := func(where string) func(node, reason string, n uint64) bool {
				return func(node, reason string, n uint64) bool {
					more = yield(metrics.NodeRefusal{Where: where, Node: node, Reason: reason, Count: n})
					return more
				}
			}
			d.api.auth.Refused(each("api"))
			if more {
				d.enroll.refused.All(each("enroll"))
			}
			if more && d.control.ctl != nil {
				d.control.ctl.Refused(each("raft"))
			}
		},
		GossipKeys: d.keys.counts,
	}
}

// Close releases what New took, in reverse: the API's listener and peer
// connections, the cluster, the overlay socket, the metrics listener, the
// TUN device, raft (on a control node) and last the store (flushed and
// unlocked). It is idempotent; its error is the first of them.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() {
		var errs []error
		if d.api != nil {
			errs = append(errs, d.api.close())
		}
		if d.members != nil {
			d.members.close()
		}
		if d.packets != nil {
			errs = append(errs, d.packets.close())
		}
		if d.metrics != nil {
			if err := d.metrics.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("--metrics: close: %w", err))
			}
		}
		if d.gw != nil {
			d.gw.close()
		}
		if d.control != nil {
			errs = append(errs, d.control.close())
		}
		if d.store != nil {
			if err := d.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("store: close: %w", err))
			}
		}
		for _, err := range errs {
			if err != nil {
				d.closeErr = err
				break
			}
		}
	})
	return d.closeErr
}

// enrolInvited enrols with labd --enroll's invite token.
func (d *Daemon) enrolInvited(ctx context.Context) error {
	tok, err := auth.ParseEnrollToken(d.cfg.Enroll)
	if err != nil {
		return fmt.Errorf("--enroll: %w", err)
	}
	return d.pki.enrolToken(ctx, tok)
}
