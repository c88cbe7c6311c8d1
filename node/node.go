package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/metrics"
	"github.com/labnet-dev/labnet/node/overlay"
	"github.com/labnet-dev/labnet/node/runtime"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
	"github.com/labnet-dev/labnet/stack"
)

// Tombstones of deleted resources are kept this long so that a node that
// was away can still learn of the delete.
const (
	tombstoneHorizon = 7 * 24 * time.Hour
	shutdownGrace    = 10 * time.Second
)

// Run runs labd until ctx is cancelled, then shuts down cleanly: stop
// accepting calls, let calls in flight finish (up to a grace period), stop
// the hosts and close the store. The returned error is nil after a clean
// shutdown.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "state.db"), store.Options{Origin: cfg.Name})
	if err != nil {
		return err
	}
	defer st.Close()

	var gw *gateway
	if cfg.Tun.Device != "" {
		if gw, err = openGateway(cfg.Tun, log.With("component", "tun")); err != nil {
			return err
		}
		defer gw.close()
	}
	lis, err := net.Listen("tcp", cfg.API)
	if err != nil {
		return fmt.Errorf("--api %s: %w", cfg.API, err)
	}
	var ml net.Listener
	if cfg.Metrics != "" {
		if ml, err = metrics.Listen(cfg.Metrics); err != nil {
			lis.Close()
			return fmt.Errorf("--metrics %s: %w", cfg.Metrics, err)
		}
	}
	started := time.Now()
	fab := fabric.New(fabric.WithClock(stack.SystemClock{}))

	// The overlay carries packets to hosts on other nodes; the cluster
	// finds the nodes and replicates the desired state.
	var key *overlay.Key
	if len(cfg.Key) > 0 {
		if key, err = overlay.NewKey(cfg.Key); err != nil {
			return fmt.Errorf("--cluster-key: %w", err)
		}
	}
	oaddr, err := netip.ParseAddrPort(cfg.Overlay)
	if err != nil {
		return fmt.Errorf("--overlay %s: %w", cfg.Overlay, err)
	}
	// Only members may send overlay packets: others are dropped and
	// counted (the sealing authenticates them too when there is a key).
	var members atomic.Pointer[map[netip.AddrPort]bool]
	members.Store(&map[netip.AddrPort]bool{})
	accept := func(from netip.AddrPort) bool { return (*members.Load())[from] }
	// Large socket buffers absorb the trains a TCP flow sends at once.
	oconn, err := overlay.Listen(oaddr, overlay.Options{Key: key, Accept: accept, ReadBuffer: 8 << 20, WriteBuffer: 8 << 20})
	if err != nil {
		return fmt.Errorf("--overlay %s: %w", cfg.Overlay, err)
	}
	link := overlay.NewLink(oconn, fab.DeliverRemote)
	fab.SetRemote(link)
	apiAddr, overlayAddr := lis.Addr().String(), oconn.LocalAddr().String()
	if cfg.Advertise == "" {
		// An address bound to all interfaces is no address peers can use:
		// advertise the private IP memberlist would pick for itself.
		apiAddr = reachable(apiAddr, sockaddr.GetPrivateIP, log)
		overlayAddr = reachable(overlayAddr, sockaddr.GetPrivateIP, log)
	}
	var gossipAdvertise string
	if cfg.Advertise != "" {
		_, p, _ := net.SplitHostPort(apiAddr)
		apiAddr = net.JoinHostPort(cfg.Advertise, p)
		overlayAddr = net.JoinHostPort(cfg.Advertise, strconv.Itoa(int(oconn.LocalAddr().Port())))
		_, gp, _ := net.SplitHostPort(cfg.Gossip) // port 0: memberlist advertises the port it binds
		gossipAdvertise = net.JoinHostPort(cfg.Advertise, gp)
	}
	cl, err := cluster.New(cluster.Config{
		Name: cfg.Name, BindAddr: cfg.Gossip, AdvertiseAddr: gossipAdvertise, Join: cfg.Join, Store: st,
		Meta: cluster.NodeMeta{APIAddr: apiAddr, OverlayAddr: overlayAddr, Version: Version, Started: started.Unix()},
		Key:  cfg.Key, Logger: log.With("component", "cluster"),
	})
	if err != nil {
		oconn.Close()
		return err
	}
	membersChanged, stopWatch := cl.WatchMembers()
	defer stopWatch()
	allowChanged, stopAllow := cl.WatchMembers()
	defer stopAllow()
	refreshAllowed := func() {
		m := map[netip.AddrPort]bool{}
		for _, ap := range peersOf(cl, cfg.Name) {
			m[ap] = true
		}
		members.Store(&m)
	}
	rt := runtime.New(runtime.Config{
		Node: cfg.Name, Store: st, Fabric: fab, Clock: stack.SystemClock{}, Logger: log.With("component", "runtime"),
		Peers: func() map[string]netip.AddrPort { return peersOf(cl, cfg.Name) }, PeersChanged: membersChanged,
		Started: gw.hook(),
	})
	self := &clusterNodes{cl: cl, st: st, name: cfg.Name, started: started}
	peers := &peerConns{cl: cl, conns: map[string]*grpc.ClientConn{}}
	defer peers.close()
	srv := api.New(api.Config{Node: cfg.Name, Store: st, Hosts: hostsOf{rt}, Members: self, Peer: peers.dial, Logger: log.With("component", "api")})

	g := grpc.NewServer()
	srv.Register(g)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	eg, ctx := errgroup.WithContext(ctx)
	if err := cl.Start(ctx); err != nil {
		// Joining can fail while the other nodes are still starting:
		// the cluster keeps trying while this node is alone.
		log.Warn("joining the cluster", "err", err)
	}
	eg.Go(func() error { return link.Run(ctx) })
	if ml != nil {
		reg := metrics.New(metrics.Sources{
			Overlay: oconn.Counters,
			Members: func() map[string]int {
				m := map[string]int{}
				for _, mem := range cl.Members() {
					m[mem.State.String()]++
				}
				return m
			},
			Interfaces: metrics.HostInterfaces(func(yield func(string, metrics.Host) bool) {
				for name, h := range rt.All() {
					if !yield(name, h) {
						return
					}
				}
			}),
		})
		eg.Go(func() error { return metrics.Serve(ctx, ml, reg) })
		log.Info("metrics", "addr", ml.Addr().String())
	}
	if cfg.FailoverAfter > 0 {
		fo := &failover{cl: cl, st: st, self: cfg.Name, after: cfg.FailoverAfter, log: log.With("component", "failover"), gone: map[string]time.Time{}}
		eg.Go(func() error { return fo.run(ctx) })
	}
	eg.Go(func() error {
		for {
			refreshAllowed()
			select {
			case <-ctx.Done():
				return nil
			case _, ok := <-allowChanged:
				if !ok {
					return nil
				}
			}
		}
	})
	eg.Go(func() error { return rt.Run(ctx) })
	eg.Go(func() error {
		if err := g.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("api: %w", err)
		}
		return nil
	})
	eg.Go(func() error {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case now := <-t.C:
				if n, err := st.CollectTombstones(now, tombstoneHorizon); err != nil {
					log.Warn("tombstone collection failed", "err", err)
				} else if n > 0 {
					log.Debug("tombstones collected", "count", n)
				}
			}
		}
	})
	eg.Go(func() error {
		<-ctx.Done()
		hs.Shutdown()
		srv.Stop()
		if err := cl.Leave(2 * time.Second); err != nil {
			log.Warn("leaving the cluster", "err", err)
		}
		cl.Shutdown()
		log.Info("shutting down: finishing calls in flight")
		done := make(chan struct{})
		go func() { g.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(shutdownGrace):
			log.Warn("calls still running after the grace period: stopping them", "grace", shutdownGrace)
			g.Stop()
		}
		return nil
	})
	log.Info("labd ready", "name", cfg.Name, "api", lis.Addr().String(), "data", cfg.DataDir, "version", Version)
	err = eg.Wait()
	if cerr := st.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err == nil {
		log.Info("labd stopped")
	}
	return err
}

// hostsOf adapts the runtime to api.Hosts.
type hostsOf struct{ rt *runtime.Runtime }

func (h hostsOf) Host(name string) (api.LiveHost, bool) {
	host, ok := h.rt.Host(name)
	if !ok {
		return nil, false
	}
	return host, true
}

func (h hostsOf) Count() int { return h.rt.Count() }

// clusterNodes reports the cluster's members as lab.v1 nodes.
type clusterNodes struct {
	cl      *cluster.Cluster
	st      *store.Store
	name    string
	started time.Time
}

func (c *clusterNodes) Nodes() []*labv1.Node {
	all, _ := lab.ReadAll(c.st) // a record that does not decode counts nowhere
	counts := lab.HostsPerNode(all.Hosts)
	states := map[cluster.State]labv1.NodeState{
		cluster.StateAlive: labv1.NodeState_NODE_STATE_ALIVE, cluster.StateSuspect: labv1.NodeState_NODE_STATE_SUSPECT,
		cluster.StateDead: labv1.NodeState_NODE_STATE_DEAD, cluster.StateLeft: labv1.NodeState_NODE_STATE_LEFT,
	}
	var out []*labv1.Node
	for _, m := range c.cl.Members() {
		n := &labv1.Node{
			Name: lab.NodeName(m.Name), State: states[m.State], ApiAddress: m.Meta.APIAddr,
			GossipAddress: m.Addr, OverlayAddress: m.Meta.OverlayAddr, Version: m.Meta.Version,
			HostCount: int32(counts[m.Name]),
		}
		switch {
		case m.Name == c.name:
			n.StartTime = timestamppb.New(c.started)
		case m.Meta.Started != 0:
			n.StartTime = timestamppb.New(time.Unix(m.Meta.Started, 0))
		}
		out = append(out, n)
	}
	return out
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

// peerConns keeps one gRPC connection per other node's API, for forwarding
// live calls to the node that runs a host.
type peerConns struct {
	cl    *cluster.Cluster
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // by API address
}

func (p *peerConns) dial(node string) (grpc.ClientConnInterface, error) {
	var addr string
	for _, m := range p.cl.Members() {
		if m.Name == node {
			if m.State != cluster.StateAlive {
				return nil, fmt.Errorf("node %s is %s", node, m.State)
			}
			addr = m.Meta.APIAddr
		}
	}
	if addr == "" {
		return nil, fmt.Errorf("node %s is not a member of the cluster", node)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[addr]; c != nil {
		return c, nil
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	p.conns[addr] = c
	return c, nil
}

func (p *peerConns) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// reachable replaces the unspecified host of addr (0.0.0.0, ::) with the
// machine's private IP (from private), so that peers are told an address
// they can dial; addr is kept when it names a host or no private IP is
// found.
func reachable(addr string, private func() (string, error), log *slog.Logger) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsUnspecified() {
		return addr
	}
	ip, err := private()
	if err != nil || ip == "" {
		log.Warn("binding all addresses and no private IP found to tell peers: give --advertise", "address", addr)
		return addr
	}
	return net.JoinHostPort(ip, port)
}
