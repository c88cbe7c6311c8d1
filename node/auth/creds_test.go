package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// testServer is a gRPC server (the health service) on 127.0.0.1 with
// ServerCreds, remembering the AuthInfo of every call it serves.
type testServer struct {
	addr  string
	calls atomic.Int64
	mu    sync.Mutex
	infos []credentials.AuthInfo
}

func (s *testServer) last() credentials.AuthInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.infos) == 0 {
		return nil
	}
	return s.infos[len(s.infos)-1]
}

func startTestServer(t testing.TB, ca *CA, allowPlain bool) *testServer {
	t.Helper()
	n := signTestNode(t, ca, "server-node", true)
	cert, err := TLSCertificate(n.key, n.certDER, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{}
	srv := grpc.NewServer(
		grpc.Creds(ServerCreds(ServerTLSConfig(ca.Cert, cert), allowPlain)),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ts.calls.Add(1)
			if p, ok := peer.FromContext(ctx); ok {
				ts.mu.Lock()
				ts.infos = append(ts.infos, p.AuthInfo)
				ts.mu.Unlock()
			}
			return h(ctx, req)
		}),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return ts
}

func check(t testing.TB, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestServerCreds(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	client := signTestNode(t, ca, "client-node", false)
	clientCert, err := TLSCertificate(client.key, client.certDER, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	strangerNode := signTestNode(t, stranger, "client-node", false)
	strangerCert, err := TLSCertificate(strangerNode.key, strangerNode.certDER, stranger.Cert)
	if err != nil {
		t.Fatal(err)
	}

	for _, allowPlain := range []bool{true, false} {
		t.Run(map[bool]string{true: "allowPlain", false: "TLS only"}[allowPlain], func(t *testing.T) {
			ts := startTestServer(t, ca, allowPlain)

			t.Run("node certificate", func(t *testing.T) {
				if err := check(t, ts.addr, ClientTLS(ca.Cert, &clientCert)); err != nil {
					t.Fatal(err)
				}
				info, ok := ts.last().(credentials.TLSInfo)
				if !ok {
					t.Fatalf("AuthInfo is %T, want credentials.TLSInfo", ts.last())
				}
				if info.SecurityLevel != credentials.PrivacyAndIntegrity || info.State.Version != tls.VersionTLS13 {
					t.Errorf("security level %v, TLS version %x", info.SecurityLevel, info.State.Version)
				}
				if len(info.State.VerifiedChains) == 0 {
					t.Fatal("no verified chain")
				}
				if name, ok := NodeOf(info.State.VerifiedChains[0][0]); !ok || name != "client-node" {
					t.Errorf("NodeOf(peer) = %q, %v", name, ok)
				}
			})
			t.Run("TLS without a certificate", func(t *testing.T) {
				if err := check(t, ts.addr, ClientTLS(ca.Cert, nil)); err != nil {
					t.Fatal(err)
				}
				info, ok := ts.last().(credentials.TLSInfo)
				if !ok {
					t.Fatalf("AuthInfo is %T", ts.last())
				}
				if len(info.State.VerifiedChains) != 0 || len(info.State.PeerCertificates) != 0 {
					t.Errorf("chains %v, certificates %v", info.State.VerifiedChains, info.State.PeerCertificates)
				}
			})
			t.Run("certificate of another CA", func(t *testing.T) {
				before := ts.calls.Load()
				if err := check(t, ts.addr, ClientTLS(ca.Cert, &strangerCert)); err == nil {
					t.Fatal("a certificate of another CA was accepted")
				}
				if ts.calls.Load() != before {
					t.Error("the server served the call")
				}
			})
			t.Run("server of another CA", func(t *testing.T) {
				if err := check(t, ts.addr, ClientTLS(stranger.Cert, nil)); err == nil {
					t.Fatal("the client trusted a server of another CA")
				}
			})
			t.Run("plaintext", func(t *testing.T) {
				before := ts.calls.Load()
				err := check(t, ts.addr, insecure.NewCredentials())
				if !allowPlain {
					if status.Code(err) != codes.Unavailable {
						t.Errorf("plaintext to a TLS-only server: %v, want Unavailable", err)
					}
					if ts.calls.Load() != before {
						t.Error("the server served the call")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				info := ts.last()
				ci, ok := info.(interface {
					GetCommonAuthInfo() credentials.CommonAuthInfo
				})
				if !ok || ci.GetCommonAuthInfo().SecurityLevel != credentials.NoSecurity {
					t.Errorf("AuthInfo %#v, want SecurityLevel NoSecurity", info)
				}
			})
		})
	}
}

func TestPinnedTLS(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, ca, false)

	var got *x509.Certificate
	if err := check(t, ts.addr, credentials.NewTLS(PinnedTLS(CAHash(ca.Cert), func(c *x509.Certificate) { got = c }))); err != nil {
		t.Fatalf("right pin: %v", err)
	}
	if got == nil || !got.Equal(ca.Cert) {
		t.Errorf("onCA got %v, want the CA", got)
	}

	for name, pin := range map[string]string{
		"another CA's hash": CAHash(other.Cert),
		"malformed hash":    "sha256:00",
	} {
		t.Run(name, func(t *testing.T) {
			before := ts.calls.Load()
			called := false
			err := check(t, ts.addr, credentials.NewTLS(PinnedTLS(pin, func(*x509.Certificate) { called = true })))
			if err == nil {
				t.Fatal("the handshake passed")
			}
			if called || ts.calls.Load() != before {
				t.Errorf("onCA called %v, server calls %d -> %d", called, before, ts.calls.Load())
			}
		})
	}
}

// A server that does not send the CA in its chain cannot be pinned: the
// pin is over the CA's key, and only the chain shows it.
func TestPinnedTLSWithoutCAInChain(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	n := signTestNode(t, ca, "n", true)
	cert, err := TLSCertificate(n.key, n.certDER, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Certificate) != 1 {
		t.Fatalf("chain of %d certificates, want the leaf alone", len(cert.Certificate))
	}
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{n.cert}}
	if _, err := verifyPinned(cs, CAHash(ca.Cert)); err == nil {
		t.Error("verifyPinned passed without the CA in the chain")
	}
	cs.PeerCertificates = append(cs.PeerCertificates, ca.Cert)
	if _, err := verifyPinned(cs, CAHash(ca.Cert)); err != nil {
		t.Errorf("verifyPinned with the CA: %v", err)
	}
	// A leaf of the pinned CA that is no node's is refused.
	cs.PeerCertificates = []*x509.Certificate{ca.Cert, ca.Cert}
	if _, err := verifyPinned(cs, CAHash(ca.Cert)); err == nil {
		t.Error("verifyPinned accepted the CA itself as a server certificate")
	}
}

// The plaintext connection ServerCreds hands on still shows its socket
// (gRPC's channelz and socket options use it).
func TestPeekedConnSyscallConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
			c.Read(make([]byte, 1)) // until the server closes
			c.Close()
		}
	}()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := ServerCreds(&tls.Config{}, true).ServerHandshake(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sc, ok := conn.(syscall.Conn)
	if !ok {
		t.Fatalf("%T is not a syscall.Conn", conn)
	}
	if _, err := sc.SyscallConn(); err != nil {
		t.Error(err)
	}
}
