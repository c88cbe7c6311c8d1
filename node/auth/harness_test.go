package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/labnet-dev/labnet/node/identity"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// fakeDir is a Directory the tests change as they go.
type fakeDir struct {
	mu     sync.Mutex
	users  map[string]Role
	tokens map[string]Token
	labs   map[string]LabInfo
	// hostOwners maps "lab/host" to the host's owner.
	hostOwners map[string]string
	nodes      map[string]identity.NodeInfo
}

func newFakeDir() *fakeDir {
	return &fakeDir{users: map[string]Role{}, tokens: map[string]Token{}, labs: map[string]LabInfo{}, hostOwners: map[string]string{}, nodes: map[string]identity.NodeInfo{}}
}

func (d *fakeDir) User(id string) (Role, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.users[id]
	return r, ok
}

func (d *fakeDir) Token(id string) (Token, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.tokens[id]
	return t, ok
}

func (d *fakeDir) HostOwner(lab, id string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hostOwners[lab+"/"+id]
}

func (d *fakeDir) Node(name string) (identity.NodeInfo, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.nodes[name]
	return n, ok
}

func (d *fakeDir) Lab(id string) (LabInfo, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.labs[id]
	return l, ok
}

func (d *fakeDir) setLab(id string, info LabInfo) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.labs[id] = info
}

func (d *fakeDir) revoke(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.tokens, id)
}

// token adds user (with role) and a token of kind for them, expiring at
// expires (zero: never); it returns the token string and its id.
func (d *fakeDir) token(user string, role Role, kind TokenKind, expires time.Time) (string, string) {
	tok, id, hash := identity.NewToken()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.users[user] = role
	d.tokens[id] = Token{ID: id, User: user, Kind: kind, Hash: hash, Expires: expires}
	return tok, id
}

// testCA is a throwaway CA that signs the test server's and nodes'
// certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test labnet CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf is a certificate of ca for both TLS ends, naming node in a
// labnet URI when node is not empty: a control node's (whose forwarded
// users are believed).
func (ca *testCA) leaf(t testing.TB, node string) tls.Certificate {
	t.Helper()
	return ca.leafKind(t, node, KindControl)
}

// leafKind is leaf with the node kind kind (KindControl, KindMember, or
// "" for a certificate that records none).
func (ca *testCA) leafKind(t testing.TB, node, kind string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "labd " + node, OrganizationalUnit: kindOU(kind)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"labd"},
	}
	if node != "" {
		tmpl.URIs = append(tmpl.URIs, NodeURI(node))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// env is a gRPC server with the interceptors in front of fake services,
// over an in-memory listener with TLS (client certificates verified when
// given, as the API's listener does).
type env struct {
	t      testing.TB
	dir    *fakeDir
	ca     *testCA
	ic     *Interceptor
	lis    *bufconn.Listener
	logBuf *syncBuffer
	now    time.Time
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var testNow = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, dir: newFakeDir(), ca: newTestCA(t), lis: bufconn.Listen(1 << 20), logBuf: &syncBuffer{}, now: testNow}
	e.ic = NewInterceptor(InterceptorConfig{
		Dir: e.dir,
		Log: slog.New(slog.NewTextHandler(e.logBuf, nil)),
		Now: func() time.Time { return e.now },
	})
	e.serve(e.lis, true)
	return e
}

// serve serves the fake services on lis with TLS, behind the
// interceptors when auth.
func (e *env) serve(lis *bufconn.Listener, auth bool) {
	srvCert := e.ca.leaf(e.t, "n1")
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{srvCert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    e.ca.pool,
		MinVersion:   tls.VersionTLS13,
	})
	opts := []grpc.ServerOption{grpc.Creds(creds)}
	if auth {
		opts = append(opts, grpc.ChainUnaryInterceptor(e.ic.Unary()), grpc.ChainStreamInterceptor(e.ic.Stream()))
	}
	srv := grpc.NewServer(opts...)
	fs := &fakeServices{dir: e.dir}
	labv1.RegisterLabServiceServer(srv, fs)
	labv1.RegisterLiveServiceServer(srv, fs)
	labv1.RegisterSocketServiceServer(srv, fs)
	labv1.RegisterCaptureServiceServer(srv, fs)
	labv1.RegisterAuthServiceServer(srv, fs)
	labv1.RegisterControlServiceServer(srv, fs)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	e.t.Cleanup(srv.Stop)
}

// noAuth is a TLS connection to the fake services without the
// interceptors, for comparison.
func (e *env) noAuth() *grpc.ClientConn {
	lis := bufconn.Listen(1 << 20)
	e.serve(lis, false)
	return e.dial(credentials.NewTLS(&tls.Config{RootCAs: e.ca.pool, ServerName: "labd", MinVersion: tls.VersionTLS13}), lis)
}

func kindOU(kind string) []string {
	if kind == "" {
		return nil
	}
	return []string{kind}
}

// conn is a client connection with TLS; with node, it presents a control
// node's certificate of the CA.
func (e *env) conn(node string) *grpc.ClientConn {
	e.t.Helper()
	return e.connKind(node, KindControl)
}

// connKind is conn with a node certificate of kind kind ("": none
// recorded).
func (e *env) connKind(node, kind string) *grpc.ClientConn {
	e.t.Helper()
	cfg := &tls.Config{RootCAs: e.ca.pool, ServerName: "labd", MinVersion: tls.VersionTLS13}
	if node != "" {
		cfg.Certificates = []tls.Certificate{e.ca.leafKind(e.t, node, kind)}
	}
	return e.dial(credentials.NewTLS(cfg), e.lis)
}

func (e *env) dial(creds credentials.TransportCredentials, lis *bufconn.Listener) *grpc.ClientConn {
	e.t.Helper()
	c, err := grpc.NewClient("passthrough:///labd",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(creds))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// plain is a client connection to a plaintext server sharing e's
// interceptor and Directory (the loopback API without TLS).
func (e *env) plain() *grpc.ClientConn {
	e.t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(e.ic.Unary()), grpc.ChainStreamInterceptor(e.ic.Stream()))
	fs := &fakeServices{dir: e.dir}
	labv1.RegisterLabServiceServer(srv, fs)
	labv1.RegisterAuthServiceServer(srv, fs)
	go func() { _ = srv.Serve(lis) }()
	e.t.Cleanup(srv.Stop)
	return e.dial(insecure.NewCredentials(), lis)
}

// withToken is ctx carrying token as the bearer.
func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantCode fails t unless err has code c and, with subs, a message
// containing each.
func wantCode(t testing.TB, what string, err error, c codes.Code, subs ...string) {
	t.Helper()
	if status.Code(err) != c {
		t.Errorf("%s: %v, want %v", what, err, c)
		return
	}
	for _, s := range subs {
		if !strings.Contains(status.Convert(err).Message(), s) {
			t.Errorf("%s: message %q lacks %q", what, status.Convert(err).Message(), s)
		}
	}
}

// fakeServices answers every call the tests make with what the request
// named (and, for WhoAmI, who the interceptor says called).
type fakeServices struct {
	labv1.UnimplementedLabServiceServer
	labv1.UnimplementedLiveServiceServer
	labv1.UnimplementedSocketServiceServer
	labv1.UnimplementedCaptureServiceServer
	labv1.UnimplementedAuthServiceServer
	labv1.UnimplementedControlServiceServer
	dir *fakeDir
}

func (f *fakeServices) GetHost(_ context.Context, r *labv1.GetHostRequest) (*labv1.GetHostResponse, error) {
	return &labv1.GetHostResponse{Host: &labv1.Host{Name: r.Name}}, nil
}

func (f *fakeServices) DeleteHost(context.Context, *labv1.DeleteHostRequest) (*labv1.DeleteHostResponse, error) {
	return &labv1.DeleteHostResponse{}, nil
}

func (f *fakeServices) GetLab(_ context.Context, r *labv1.GetLabRequest) (*labv1.GetLabResponse, error) {
	return &labv1.GetLabResponse{Lab: &labv1.Lab{Name: r.Name}}, nil
}

func (f *fakeServices) DeleteLab(context.Context, *labv1.DeleteLabRequest) (*labv1.DeleteLabResponse, error) {
	return &labv1.DeleteLabResponse{}, nil
}

func (f *fakeServices) CreateLab(_ context.Context, r *labv1.CreateLabRequest) (*labv1.CreateLabResponse, error) {
	return &labv1.CreateLabResponse{Lab: &labv1.Lab{Name: "labs/" + r.LabId}}, nil
}

func (f *fakeServices) UpdateLab(_ context.Context, r *labv1.UpdateLabRequest) (*labv1.UpdateLabResponse, error) {
	return &labv1.UpdateLabResponse{Lab: r.Lab}, nil
}

func (f *fakeServices) Apply(context.Context, *labv1.ApplyRequest) (*labv1.ApplyResponse, error) {
	return &labv1.ApplyResponse{}, nil
}

func (f *fakeServices) SetImpairment(_ context.Context, r *labv1.SetImpairmentRequest) (*labv1.SetImpairmentResponse, error) {
	return &labv1.SetImpairmentResponse{Host: &labv1.Host{Name: r.Host}}, nil
}

// everyLab is the labs, networks and hosts List answers with: a host and
// a network in each lab of the Directory.
func (f *fakeServices) everyLab() []string {
	f.dir.mu.Lock()
	defer f.dir.mu.Unlock()
	var labs []string
	for id := range f.dir.labs {
		labs = append(labs, id)
	}
	return labs
}

func (f *fakeServices) ListLabs(context.Context, *labv1.ListLabsRequest) (*labv1.ListLabsResponse, error) {
	resp := &labv1.ListLabsResponse{}
	for _, id := range f.everyLab() {
		resp.Labs = append(resp.Labs, &labv1.Lab{Name: "labs/" + id})
	}
	return resp, nil
}

func (f *fakeServices) ListHosts(context.Context, *labv1.ListHostsRequest) (*labv1.ListHostsResponse, error) {
	resp := &labv1.ListHostsResponse{}
	for _, id := range f.everyLab() {
		resp.Hosts = append(resp.Hosts, &labv1.Host{Name: "labs/" + id + "/hosts/h1"})
	}
	return resp, nil
}

func (f *fakeServices) ListNetworks(context.Context, *labv1.ListNetworksRequest) (*labv1.ListNetworksResponse, error) {
	resp := &labv1.ListNetworksResponse{}
	for _, id := range f.everyLab() {
		resp.Networks = append(resp.Networks, &labv1.Network{Name: "labs/" + id + "/networks/n1"})
	}
	return resp, nil
}

// Watch sends: ADDED of every lab named in watchScript, SYNCED, then hands
// lab "a" to bob and sends MODIFIED for it, and DELETED of a lab that
// never existed.
func (f *fakeServices) Watch(_ *labv1.WatchRequest, st grpc.ServerStreamingServer[labv1.WatchResponse]) error {
	added := labv1.WatchEventType_WATCH_EVENT_TYPE_ADDED
	for _, name := range []string{"labs/a", "labs/a/hosts/h1", "labs/b", "labs/b/hosts/h1", "labs/s"} {
		if err := st.Send(&labv1.WatchResponse{Revision: 1, Type: added, Name: name}); err != nil {
			return err
		}
	}
	if err := st.Send(&labv1.WatchResponse{Revision: 1, Type: labv1.WatchEventType_WATCH_EVENT_TYPE_SYNCED}); err != nil {
		return err
	}
	f.dir.setLab("a", LabInfo{Owner: "bob"})
	for _, ev := range []*labv1.WatchResponse{
		{Revision: 2, Type: labv1.WatchEventType_WATCH_EVENT_TYPE_MODIFIED, Name: "labs/a", Resource: &labv1.WatchResponse_Lab{Lab: &labv1.Lab{Name: "labs/a", Description: "bob's now"}}},
		{Revision: 3, Type: labv1.WatchEventType_WATCH_EVENT_TYPE_DELETED, Name: "labs/gone"},
	} {
		if err := st.Send(ev); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeServices) Ping(r *labv1.PingRequest, st grpc.ServerStreamingServer[labv1.PingResponse]) error {
	return st.Send(&labv1.PingResponse{Event: &labv1.PingResponse_Started{Started: &labv1.PingStarted{Source: r.Host}}})
}

func (f *fakeServices) Capture(r *labv1.CaptureRequest, st grpc.ServerStreamingServer[labv1.CaptureResponse]) error {
	return st.Send(&labv1.CaptureResponse{Event: &labv1.CaptureResponse_Stats{Stats: &labv1.CaptureStats{Done: true}}})
}

// Dial answers opened to the open, and echoes data, until the client
// ends its side or a receive fails.
func (f *fakeServices) Dial(st grpc.BidiStreamingServer[labv1.DialRequest, labv1.DialResponse]) error {
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &labv1.DialResponse{Event: &labv1.DialResponse_Data{Data: m.GetData()}}
		if m.GetOpen() != nil {
			resp.Event = &labv1.DialResponse_Opened{Opened: &labv1.SocketOpened{LocalAddress: m.GetOpen().GetHost()}}
		}
		if err := st.Send(resp); err != nil {
			return err
		}
	}
}

func (f *fakeServices) WhoAmI(ctx context.Context, _ *labv1.WhoAmIRequest) (*labv1.WhoAmIResponse, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "no principal")
	}
	kind := labv1.TokenKind_TOKEN_KIND_SESSION
	if p.TokenKind == Invite {
		kind = labv1.TokenKind_TOKEN_KIND_INVITE
	}
	return &labv1.WhoAmIResponse{User: "users/" + p.User + "|" + p.String(), Token: &labv1.Token{Name: p.TokenID, Kind: kind}}, nil
}

func (f *fakeServices) Login(context.Context, *labv1.LoginRequest) (*labv1.LoginResponse, error) {
	return &labv1.LoginResponse{}, nil
}

func (f *fakeServices) CanI(context.Context, *labv1.CanIRequest) (*labv1.CanIResponse, error) {
	return &labv1.CanIResponse{Allowed: true}, nil
}

func (f *fakeServices) RevokeToken(context.Context, *labv1.RevokeTokenRequest) (*labv1.RevokeTokenResponse, error) {
	return &labv1.RevokeTokenResponse{}, nil
}

func (f *fakeServices) Follow(*labv1.FollowRequest, grpc.ServerStreamingServer[labv1.FollowResponse]) error {
	return nil
}
