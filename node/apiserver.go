package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/cluster"
)

// shutdownGrace is how long calls in flight may run at shutdown.
const shutdownGrace = 10 * time.Second

// apiServer is the gRPC API: the lab.v1 services (node/api), grpc health
// and server reflection on one listener, and connections to the other
// nodes' APIs for the calls node/api forwards to them.
type apiServer struct {
	lis    net.Listener
	log    *slog.Logger
	srv    *api.Server
	grpc   *grpc.Server
	health *health.Server
	peers  *peerConns
	auth   *auth.Interceptor
}

// listenAPI binds the API address; register then builds the server, which
// needs the address first (it is advertised to the cluster).
func listenAPI(addr string, log *slog.Logger) (*apiServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--api %s: %w", addr, err)
	}
	return &apiServer{lis: lis, log: log}, nil
}

// apiSecurity is how the API authenticates and authorizes calls.
type apiSecurity struct {
	pki *pki
	// allowPlain accepts plaintext gRPC beside TLS: an API on loopback
	// without --tls.
	allowPlain bool
	dir        auth.Directory // the users, tokens and lab owners
	log        *slog.Logger   // the audit's
}

// register builds the lab.v1 services of cfg (its Peer is set here: live
// calls are forwarded over connections to cl's members, with this node's
// certificate), health and reflection, behind sec's TLS and the auth
// interceptors, which see every call before node/api's.
func (a *apiServer) register(cfg api.Config, cl *cluster.Cluster, sec apiSecurity) {
	a.peers = &peerConns{cl: cl, creds: sec.pki.clientCreds, conns: map[string]*grpc.ClientConn{}}
	cfg.Peer = a.peers.dial
	cfg.Member = sec.pki.isMember
	a.srv = api.New(cfg)
	a.auth = auth.NewInterceptor(auth.InterceptorConfig{Dir: sec.dir, Log: sec.log, Self: cfg.Node})
	opts := []grpc.ServerOption{
		grpc.Creds(auth.ServerCreds(sec.pki.serverTLS(), sec.allowPlain)),
		grpc.ChainUnaryInterceptor(a.auth.Unary()),
		grpc.ChainStreamInterceptor(a.auth.Stream()),
		grpc.KeepaliveEnforcementPolicy(peerKeepaliveMin),
	}
	a.grpc = grpc.NewServer(append(opts, a.srv.ServerOptions()...)...)
	a.srv.Register(a.grpc)
	a.health = health.NewServer()
	healthpb.RegisterHealthServer(a.grpc, a.health)
	reflection.Register(a.grpc)
}

// serve serves calls until stop.
func (a *apiServer) serve() error {
	if err := a.grpc.Serve(a.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

// stopAccepting reports NOT_SERVING to health checks and ends the calls
// that would run forever (node/api's Stop); drain follows.
func (a *apiServer) stopAccepting() {
	a.health.Shutdown()
	a.srv.Stop()
}

// drain stops the server: no new calls, and calls in flight may finish
// for shutdownGrace before they are cut.
func (a *apiServer) drain() {
	a.log.Info("shutting down: finishing calls in flight")
	done := make(chan struct{})
	go func() { a.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownGrace):
		a.log.Warn("calls still running after the grace period: stopping them", "grace", shutdownGrace)
		a.grpc.Stop()
		<-done
	}
}

// close closes the connections to peers and the listener (already
// closed if the server ran).
func (a *apiServer) close() error {
	if a.peers != nil {
		a.peers.close()
	}
	if err := a.lis.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("api: close: %w", err)
	}
	return nil
}

// peerConns keeps one gRPC connection per other node's API, for forwarding
// live calls to the node that runs a host, and for following the control
// plane. The connections are mutual TLS: the other node's certificate is
// verified against the cluster CA and its address, and this node's tells
// the other that a node calls (so it trusts the forwarded caller's name).
type peerConns struct {
	cl *cluster.Cluster
	// creds are mutual TLS with this node's certificate (pki.clientCreds).
	creds func() (credentials.TransportCredentials, error)
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
	return p.dialAddr(addr)
}

// dialAddr returns the connection to the API at addr, made on first use.
func (p *peerConns) dialAddr(addr string) (grpc.ClientConnInterface, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[addr]; c != nil {
		return c, nil
	}
	creds, err := p.creds()
	if err != nil {
		return nil, err
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(peerKeepalive), grpc.WithConnectParams(peerConnect))
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

// A connection to another labd that died with the network (a laptop's
// Wi-Fi, a cut) sends no reset: without keepalive, calls and the follow
// stream would wait on it for TCP's retransmission timeouts, minutes. A
// ping after 5 s of silence unanswered for 3 s closes it, and a new one
// is tried at most 2 s apart (gRPC's default backoff grows to 2 min).
var (
	peerKeepalive = keepalive.ClientParameters{Time: 5 * time.Second, Timeout: 3 * time.Second}
	peerConnect   = grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
		MinConnectTimeout: 3 * time.Second,
	}
	// peerKeepaliveMin lets peers ping that often (the default policy
	// closes a connection pinged more often than every 5 min).
	peerKeepaliveMin = keepalive.EnforcementPolicy{MinTime: 2 * time.Second, PermitWithoutStream: true}
)
