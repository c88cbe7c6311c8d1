// Package api serves labnet's gRPC API (package lab.v1): it validates
// requests, reads and writes the desired state in the store, and serves live
// calls (ping, traceroute, status) from the hosts this node runs.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/labnet-dev/labnet/format/capture"
	"github.com/labnet-dev/labnet/node/probe"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// LiveHost is a running virtual host, as the live calls need it: the
// probes run from it, it reports its state in plain structs, opens standard
// sockets and taps its interfaces. The daemon implements it
// (node/runtime/live.go); nothing of the stack crosses it but the opaque
// probe.Host, which api only hands to the probes.
type LiveHost interface {
	// Probe is the host the probes (ping, traceroute, fetch, bench) run
	// from.
	Probe() probe.Host
	// Status reports interfaces (with their networks and impairment
	// counters), routes and IP counters.
	Status() probe.HostStatus
	// Connections lists TCP connections, then UDP sockets.
	Connections() []probe.Connection
	// DialTCP connects to dst; ListenTCP listens on addr (the zero
	// address: every address). Their connections have CloseWrite and
	// SetLinger, as a *net.TCPConn does.
	DialTCP(ctx context.Context, dst netip.AddrPort) (net.Conn, error)
	ListenTCP(addr netip.AddrPort) (net.Listener, error)
	// ListenUDP opens a UDP socket on addr (the zero address: every
	// address of both families). It has ReadFromUDPAddrPort and
	// WriteToUDPAddrPort, as a *net.UDPConn does.
	ListenUDP(addr netip.AddrPort) (net.PacketConn, error)
	// Tap gives deliver every packet interface iface sends and receives,
	// named label, until remove is called; want (when set) picks packets
	// before they are copied. deliver must not block. An unknown iface
	// is probe.ErrNoInterface.
	Tap(iface, label string, want func(pkt []byte) bool, deliver func(*capture.Packet)) (remove func(), err error)
}

// Hosts finds running hosts by resource name.
type Hosts interface {
	// Host is the running host; the same (==) value while it runs, and a
	// different one once it restarts (captures tap a restarted host anew),
	// so its dynamic type must be comparable, such as a pointer.
	Host(name string) (LiveHost, bool)
	// Count is the number of hosts running on this node.
	Count() int
}

// Members reports the cluster's nodes.
type Members interface {
	Nodes() []*labv1.Node
	// Watch returns a channel that receives a value after the nodes change
	// (coalesced; read Nodes again) and a function that ends the watch.
	// The channel is closed when the node shuts down.
	Watch() (<-chan struct{}, func())
}

// Membership changes which nodes are control nodes (voters of the control
// plane's Raft group). Errors that are gRPC statuses reach the client as
// they are.
type Membership interface {
	Promote(ctx context.Context, node string) error
	Demote(ctx context.Context, node string) error
}

// Config configures a Server.
type Config struct {
	Node    string // this node's name: where unplaced hosts go
	Store   *store.Store
	Hosts   Hosts
	Members Members
	// Membership promotes and demotes control nodes; nil on a node that
	// cannot (PromoteNode and DemoteNode are then Unimplemented).
	Membership Membership
	Now        func() time.Time
	Logger     *slog.Logger
	// Peer returns a connection to another node's API, to forward live
	// calls for the hosts it runs; nil for a labd without a cluster.
	Peer peerDialer
	// Member reports whether this node's certificate is a member's (not
	// a control node's): it then forwards calls with the caller's own
	// bearer token, since other nodes believe the user a node names only
	// from a control node (forwardctx.go). nil: a control node.
	Member func() bool
	// Staleness reports, on a member, how long ago its replica last heard
	// from the control plane (member true): reads then carry it in the
	// labnet-replica-age header (ServerOptions). nil, or member false, on
	// control nodes.
	Staleness func() (age time.Duration, member bool)
	// Control serves ControlService (node/follow); nil: not served. Stop
	// ends its streams.
	Control interface {
		labv1.ControlServiceServer
		Stop()
	}
	// Writer commits writes (writer.go); nil: Store directly, as a labd
	// without a control plane.
	Writer Writer
	// Invite is what CreateToken returns with an invite, for `labctl
	// login`: the API address this node advertises and the hash of the
	// cluster CA (auth.CAHash); nil: nothing.
	Invite func() (server, caHash string)
	// Gossip is the gossip address this node advertises, for the command
	// CreateNodeInvite prints (labd --join); nil: none.
	Gossip func() string
}

// Server implements the lab.v1 services.
type Server struct {
	labv1.UnimplementedLabServiceServer
	labv1.UnimplementedNodeServiceServer
	labv1.UnimplementedLiveServiceServer

	cfg      Config
	stopping chan struct{}
	stopOnce sync.Once
}

// Stop ends the streaming calls in flight (ping, traceroute) so that a
// graceful shutdown need not wait for clients to hang up. Idempotent.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		close(s.stopping)
		if s.cfg.Control != nil {
			s.cfg.Control.Stop()
		}
	})
}

// New returns a server.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Writer == nil {
		cfg.Writer = localWriter{cfg.Store}
	}
	return &Server{cfg: cfg, stopping: make(chan struct{})}
}

// Register adds the services to g.
func (s *Server) Register(g *grpc.Server) {
	labv1.RegisterLabServiceServer(g, s)
	labv1.RegisterNodeServiceServer(g, s)
	labv1.RegisterLiveServiceServer(g, s)
	labv1.RegisterSocketServiceServer(g, newSocketServer(s))
	labv1.RegisterCaptureServiceServer(g, &captureServer{s: s})
	labv1.RegisterAuthServiceServer(g, &authServer{s: s})
	if s.cfg.Control != nil {
		labv1.RegisterControlServiceServer(g, s.cfg.Control)
	}
}

// errAbort makes a write discard a validated write (validate_only).
var errAbort = errors.New("abort")
