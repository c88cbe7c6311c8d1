package auth

import (
	"context"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The cost of TLS on the API, client and server in this process: a new
// connection and one unary call (Health.Check), and a unary call on a
// connection that is up. cpu-ns/op is the process's user+system CPU time
// per operation (both sides), steadier than ns/op on a shared machine.
//
//	go test -run '^$' -bench 'Handshake|Unary' -benchtime 2s -count 4 ./node/auth

func BenchmarkHandshakeAndCall(b *testing.B) {
	for _, tc := range benchCases(b) {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			cpu := startCPU()
			for b.Loop() {
				cc, err := grpc.NewClient("passthrough:///"+tc.addr, grpc.WithTransportCredentials(tc.creds))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
					b.Fatal(err)
				}
				cc.Close()
			}
			cpu.report(b)
		})
	}
}

func BenchmarkUnaryCall(b *testing.B) {
	for _, tc := range benchCases(b) {
		b.Run(tc.name, func(b *testing.B) {
			cc, err := grpc.NewClient("passthrough:///"+tc.addr, grpc.WithTransportCredentials(tc.creds))
			if err != nil {
				b.Fatal(err)
			}
			defer cc.Close()
			hc := healthpb.NewHealthClient(cc)
			ctx := context.Background()
			if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				b.Fatal(err)
			}
			cpu := startCPU()
			for b.Loop() {
				if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}

type benchCase struct {
	name  string
	addr  string
	creds credentials.TransportCredentials
}

// benchCases are one server (allowPlain) and its clients: mutual TLS with
// a node certificate, TLS without a client certificate (a user with a
// token), and plaintext.
func benchCases(b *testing.B) []benchCase {
	ca, err := NewCA()
	if err != nil {
		b.Fatal(err)
	}
	ts := startTestServer(b, ca, true)
	n := signTestNode(b, ca, "client", false)
	cert, err := TLSCertificate(n.key, n.certDER, ca.Cert)
	if err != nil {
		b.Fatal(err)
	}
	return []benchCase{
		{"mtls", ts.addr, ClientTLS(ca.Cert, &cert)},
		{"tls", ts.addr, ClientTLS(ca.Cert, nil)},
		{"plaintext", ts.addr, insecure.NewCredentials()},
	}
}

type cpuClock struct{ start time.Duration }

func startCPU() cpuClock { return cpuClock{cpuTime()} }

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(cpuTime()-c.start)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
