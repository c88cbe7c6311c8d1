package api_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/identity"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/runtime"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// authCostServer is api's server as the daemon runs it with auth (TLS from
// a cluster CA, node/auth's interceptor first, a student's bearer token)
// or as it ran before (plaintext, no interceptor), on a real loopback
// socket.
func authCostServer(b *testing.B, secured bool) labv1.LabServiceClient {
	b.Helper()
	dir := b.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{Origin: testNode})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	tok, id, hash := identity.NewToken()
	if _, err := st.Update(func(tx *store.Tx) error {
		if err := lab.PutUser(tx, lab.User{ID: "alice", Role: identity.Student, Created: time.Now()}); err != nil {
			return err
		}
		return lab.PutToken(tx, identity.Token{ID: id, User: "alice", Kind: identity.Session, Hash: hash, Created: time.Now()})
	}); err != nil {
		b.Fatal(err)
	}
	rt := runtime.New(runtime.Config{Node: testNode, Store: st, Fabric: fabric.New()})
	srv := api.New(api.Config{Node: testNode, Store: st, Hosts: runtimeHosts{rt}, Members: oneNode{}})
	var opts []grpc.ServerOption
	dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if secured {
		ca, _, err := auth.LoadOrCreateCA(dir)
		if err != nil {
			b.Fatal(err)
		}
		key, err := auth.NewNodeKey()
		if err != nil {
			b.Fatal(err)
		}
		csr, err := auth.NewNodeCSR(key, testNode, []net.IP{net.IPv4(127, 0, 0, 1)}, nil)
		if err != nil {
			b.Fatal(err)
		}
		der, err := ca.SignNode(csr, testNode, true)
		if err != nil {
			b.Fatal(err)
		}
		cert, err := auth.TLSCertificate(key, der, ca.Cert)
		if err != nil {
			b.Fatal(err)
		}
		i := auth.NewInterceptor(auth.InterceptorConfig{Dir: lab.NewDirectory(st)})
		opts = []grpc.ServerOption{grpc.Creds(auth.ServerCreds(auth.ServerTLSConfig(ca.Cert, cert), false)),
			grpc.ChainUnaryInterceptor(i.Unary()), grpc.ChainStreamInterceptor(i.Stream())}
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		dial = []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(pool))), grpc.WithPerRPCCredentials(bearerToken(tok))}
	}
	g := grpc.NewServer(append(opts, srv.ServerOptions()...)...)
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go g.Serve(lis)
	b.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), dial...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return labv1.NewLabServiceClient(conn)
}

// BenchmarkAuthCost is what TLS and a bearer token checked on every call
// cost: GetHost calls per second over one connection, and a 1,000-host
// apply, each "plain" (plaintext, no interceptor: the API before issue
// 13) and "tls+token" (as labd serves it now), in one run.
func BenchmarkAuthCost(b *testing.B) {
	for _, mode := range []struct {
		name    string
		secured bool
	}{{"plain", false}, {"tls+token", true}} {
		b.Run("GetHost/"+mode.name, func(b *testing.B) {
			lc := authCostServer(b, mode.secured)
			ctx := context.Background()
			if _, err := lc.Apply(ctx, &labv1.ApplyRequest{Topology: demo()}); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			for b.Loop() {
				if _, err := lc.GetHost(ctx, &labv1.GetHostRequest{Name: "labs/demo/hosts/h1"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		})
		b.Run("Apply1000Hosts/"+mode.name, func(b *testing.B) {
			topo := bigLab()
			for b.Loop() {
				b.StopTimer()
				lc := authCostServer(b, mode.secured)
				if _, err := lc.ListLabs(context.Background(), &labv1.ListLabsRequest{}); err != nil {
					b.Fatal(err) // the connection (and its handshake) before the clock runs
				}
				b.StartTimer()
				if _, err := lc.Apply(context.Background(), &labv1.ApplyRequest{Topology: topo}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func clientTLS(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
}

// bearerToken sends a token on every call, over TLS only.
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return true }
