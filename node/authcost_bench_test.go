package node

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// benchToken is a bearer token sent with every call (the file builds
// without auth too, for comparing with a labd from before it).
type benchToken string

func (b benchToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (benchToken) RequireTransportSecurity() bool { return false }

// benchDial dials d's API as the admin of its data directory (when it has
// one): plaintext, or TLS verified against DATA/ca.crt; ok is false when
// TLS is asked for and d has no CA (a labd from before auth).
func benchDial(b *testing.B, d *Daemon, useTLS bool) (conn *grpc.ClientConn, ok bool) {
	b.Helper()
	var opts []grpc.DialOption
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(d.cfg.DataDir, "ca.crt")); err != nil {
			break // no auth: no admin token either
		}
		if tok, err := os.ReadFile(filepath.Join(d.cfg.DataDir, "admin.token")); err == nil {
			opts = append(opts, grpc.WithPerRPCCredentials(benchToken(strings.TrimSpace(string(tok)))))
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no admin.token")
		}
	}
	creds := insecure.NewCredentials()
	if useTLS {
		pemb, err := os.ReadFile(filepath.Join(d.cfg.DataDir, "ca.crt"))
		if err != nil {
			return nil, false
		}
		blk, _ := pem.Decode(pemb)
		ca, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			b.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		creds = credentials.NewClientTLSFromCert(pool, "")
	}
	conn, err := grpc.NewClient(d.api.lis.Addr().String(), append(opts, grpc.WithTransportCredentials(creds))...)
	if err != nil {
		b.Fatal(err)
	}
	return conn, true
}

func benchConfig(b *testing.B, name string) Config {
	return Config{Control: true, Name: name, DataDir: b.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0"}
}

// runBenchDaemon is runDaemon for a benchmark; stop stops it.
func runBenchDaemon(b *testing.B, cfg Config) (d *Daemon, stop func()) {
	b.Helper()
	d, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return d, func() { cancel(); <-done; d.Close() }
}

// BenchmarkAPICalls is a small unary call (GetHost) through a whole labd,
// in plaintext and over TLS: with auth, the bearer token is checked and
// the call authorized on every call. Compare with a labd from before auth
// (the TLS case is skipped there).
func BenchmarkAPICalls(b *testing.B) {
	d, stop := runBenchDaemon(b, benchConfig(b, "bench"))
	defer stop()
	for _, useTLS := range []bool{false, true} {
		name := "plaintext"
		if useTLS {
			name = "tls"
		}
		b.Run("GetHost/"+name, func(b *testing.B) {
			conn, ok := benchDial(b, d, useTLS)
			if !ok {
				b.Skip("no TLS")
			}
			defer conn.Close()
			ctx := context.Background()
			lc := labv1.NewLabServiceClient(conn)
			if _, err := lc.GetLab(ctx, &labv1.GetLabRequest{Name: "labs/b"}, grpc.WaitForReady(true)); err != nil {
				if _, err := lc.Apply(ctx, &labv1.ApplyRequest{Topology: &labv1.Topology{Lab: "b",
					Networks: []*labv1.Network{{Name: "lan", Ipv4: "10.0.0.0/24"}},
					Hosts:    []*labv1.Host{{Name: "h", Interfaces: []*labv1.Interface{{Network: "lan"}}}}}}); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if _, err := lc.GetHost(ctx, &labv1.GetHostRequest{Name: "labs/b/hosts/h"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApply1000ThroughLabd applies 1,000 hosts in one call through a
// whole labd (a fresh one each time; the timer covers the Apply call).
func BenchmarkApply1000ThroughLabd(b *testing.B) {
	topo := &labv1.Topology{Lab: "big"}
	for n := range 10 {
		netName := fmt.Sprintf("net%d", n)
		topo.Networks = append(topo.Networks, &labv1.Network{Name: netName, Ipv4: fmt.Sprintf("10.0.%d.0/24", n)})
		for h := range 100 {
			topo.Hosts = append(topo.Hosts, &labv1.Host{Name: fmt.Sprintf("h%d-%d", n, h), Interfaces: []*labv1.Interface{{Network: netName}}})
		}
	}
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		d, stop := runBenchDaemon(b, benchConfig(b, fmt.Sprint("a", i)))
		conn, _ := benchDial(b, d, false)
		lc := labv1.NewLabServiceClient(conn)
		if _, err := lc.ListLabs(context.Background(), &labv1.ListLabsRequest{}, grpc.WaitForReady(true)); err != nil {
			b.Fatal(err)
		}
		for !d.control.isLeader() { // not the election's time
			time.Sleep(10 * time.Millisecond)
		}
		b.StartTimer()
		resp, err := lc.Apply(context.Background(), &labv1.ApplyRequest{Topology: topo})
		if err != nil {
			b.Fatal(err)
		}
		if len(resp.Changes) != 1+10+1000 {
			b.Fatalf("%d changes, want 1011", len(resp.Changes))
		}
		b.StopTimer()
		conn.Close()
		stop()
		b.StartTimer()
	}
}
