package api_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/runtime"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

const testNode = "n1"

// runtimeHosts adapts a runtime.Runtime to api.Hosts.
type runtimeHosts struct{ rt *runtime.Runtime }

func (a runtimeHosts) Host(name string) (api.LiveHost, bool) {
	h, ok := a.rt.Host(name)
	if !ok {
		return nil, false
	}
	return h, true
}

func (a runtimeHosts) Count() int { return a.rt.Count() }

// oneNode is a cluster of this node alone.
type oneNode struct{}

func (oneNode) Nodes() []*labv1.Node {
	return []*labv1.Node{{Name: "nodes/" + testNode, State: labv1.NodeState_NODE_STATE_ALIVE}}
}

// Watch: a lone node never changes.
func (oneNode) Watch() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }

// env is a running API server with its store, runtime and clients.
type env struct {
	srv   *api.Server
	store *store.Store
	rt    *runtime.Runtime
	lab   labv1.LabServiceClient
	live  labv1.LiveServiceClient
	nodes labv1.NodeServiceClient
	sock  labv1.SocketServiceClient
	capt  labv1.CaptureServiceClient
	users labv1.AuthServiceClient
	addr  string // the server's address
	// auth stands in for node/auth's interceptor (principal_test.go).
	auth *testAuth
}

// tb is what newEnv needs from a *testing.T or *testing.B.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// newEnv starts a gRPC server over a fresh store in a temporary directory.
// With run, the runtime reconciles the store, so hosts actually run; opts
// adjust the server's configuration. The tests' stand-in for node/auth's
// interceptor (principal_test.go) says who makes each call.
func newEnv(t tb, run bool, opts ...func(*api.Config)) *env {
	t.Helper()
	return startEnv(t, run, false, opts...)
}

// startEnv is newEnv; with realAuth, node/auth's interceptor checks every
// call's bearer token, as the daemon installs it.
func startEnv(t tb, run, realAuth bool, opts ...func(*api.Config)) *env {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{Origin: testNode})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	rt := runtime.New(runtime.Config{Node: testNode, Store: st, Fabric: fabric.New()})
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("runtime.Run: %v", err)
			}
		})
	}
	cfg := api.Config{Node: testNode, Store: st, Hosts: runtimeHosts{rt}, Members: oneNode{}}
	for _, o := range opts {
		o(&cfg)
	}
	srv := api.New(cfg)
	ta := &testAuth{st: st}
	first := ta.options()
	if realAuth {
		i := auth.NewInterceptor(auth.InterceptorConfig{Dir: lab.NewDirectory(st), Now: cfg.Now})
		first = []grpc.ServerOption{grpc.ChainUnaryInterceptor(i.Unary()), grpc.ChainStreamInterceptor(i.Stream())}
	}
	g := grpc.NewServer(append(first, srv.ServerOptions()...)...)
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &env{
		srv: srv, store: st, rt: rt, addr: lis.Addr().String(), auth: ta,
		lab:   labv1.NewLabServiceClient(conn),
		live:  labv1.NewLiveServiceClient(conn),
		nodes: labv1.NewNodeServiceClient(conn),
		sock:  labv1.NewSocketServiceClient(conn),
		capt:  labv1.NewCaptureServiceClient(conn),
		users: labv1.NewAuthServiceClient(conn),
	}
}

// waitRunning waits until the runtime runs every named host.
func (e *env) waitRunning(t tb, names ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, name := range names {
		for {
			if _, ok := e.rt.Host(name); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("host %s is not running after 10s", name)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// demo is the two-LAN lab: r1 routes between lan1 and lan2; h1 and h2 have
// no addresses (assigned) and default routes via r1.
func demo() *labv1.Topology {
	return &labv1.Topology{
		Lab:         "demo",
		Description: "two LANs and a router",
		Networks: []*labv1.Network{
			{Name: "lan1", Ipv4: "10.0.1.0/24", Ipv6: "fd00:0:0:1::/64"},
			{Name: "lan2", Ipv4: "10.0.2.0/24", Ipv6: "fd00:0:0:2::/64"},
		},
		Hosts: []*labv1.Host{
			{Name: "r1", Forwarding: true, Interfaces: []*labv1.Interface{
				{Network: "lan1", Ipv4: "10.0.1.1/24", Ipv6: "fd00:0:0:1::1/64"},
				{Network: "lan2", Ipv4: "10.0.2.1/24", Ipv6: "fd00:0:0:2::1/64"},
			}},
			{Name: "h1", Interfaces: []*labv1.Interface{{Network: "lan1"}}, Routes: []*labv1.Route{
				{To: "default", Via: "10.0.1.1"},
				{To: "default", Via: "fd00:0:0:1::1"},
			}},
			{Name: "h2", Interfaces: []*labv1.Interface{{Network: "lan2"}}, Routes: []*labv1.Route{
				{To: "default", Via: "10.0.2.1"},
				{To: "default", Via: "fd00:0:0:2::1"},
			}},
		},
	}
}

func (e *env) apply(t tb, topo *labv1.Topology) *labv1.ApplyResponse {
	t.Helper()
	resp, err := e.lab.Apply(context.Background(), &labv1.ApplyRequest{Topology: topo})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return resp
}

func (e *env) host(t tb, name string) *labv1.Host {
	t.Helper()
	resp, err := e.lab.GetHost(context.Background(), &labv1.GetHostRequest{Name: name})
	if err != nil {
		t.Fatalf("GetHost %s: %v", name, err)
	}
	return resp.Host
}

// snapshot is the store's whole content and revision.
type snapshot struct {
	rev  uint64
	recs []store.Record
}

func (e *env) snapshot() snapshot {
	recs, rev := e.store.Snapshot()
	return snapshot{rev, recs}
}

// unchanged fails unless the store is exactly as in before.
func (e *env) unchanged(t tb, before snapshot) {
	t.Helper()
	after := e.snapshot()
	if after.rev != before.rev {
		t.Fatalf("store revision %d, want %d (unchanged)", after.rev, before.rev)
	}
	if diff := cmp.Diff(before.recs, after.recs); diff != "" {
		t.Fatalf("store changed (-before +after):\n%s", diff)
	}
}

// changes maps each change's resource name to its action.
func changes(cs []*labv1.Change) map[string]labv1.ChangeAction {
	m := map[string]labv1.ChangeAction{}
	for _, c := range cs {
		m[c.Name] = c.Action
	}
	return m
}

// wantCode fails unless err is a status with code c.
func wantCode(t tb, err error, c codes.Code) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != c {
		t.Fatalf("error %v, want code %v", err, c)
	}
	return st
}

// wantField fails unless err is InvalidArgument with a BadRequest whose
// first violation names field, and a message starting with it.
func wantField(t tb, err error, field string) {
	t.Helper()
	st := wantCode(t, err, codes.InvalidArgument)
	var fields []string
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.FieldViolations {
			fields = append(fields, v.Field)
			if v.Description == "" {
				t.Errorf("violation of %s has no description", v.Field)
			}
		}
	}
	if len(fields) == 0 {
		t.Fatalf("error %v has no google.rpc.BadRequest field violation", err)
	}
	if fields[0] != field {
		t.Fatalf("violated fields %q, want %q first (error: %v)", fields, field, st.Message())
	}
	if !strings.HasPrefix(st.Message(), field+": ") {
		t.Fatalf("message %q does not start with %q", st.Message(), field+": ")
	}
}
