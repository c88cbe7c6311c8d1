package cli

import (
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestHealth: labctl health exits 0 only while labd's grpc health says
// SERVING, and names the problem otherwise.
func TestHealth(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	addr := lis.Addr().String()

	if r := runCLI(t.Context(), addr, "", []string{"health"}); r.code != 0 || r.stdout != "SERVING\n" || r.stderr != "" {
		t.Errorf("serving: %+v", r)
	}
	hs.Shutdown() // what labd does first on SIGTERM
	if r := runCLI(t.Context(), addr, "", []string{"health"}); r.code != 1 || r.stdout != "NOT_SERVING\n" {
		t.Errorf("shutting down: %+v", r)
	}
	if r := runCLI(t.Context(), addr, "", []string{"health", "--service", "nope.v1.Nope"}); r.code != 1 || !strings.HasPrefix(r.stderr, "error: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("unknown service: %+v", r)
	}
	if r := runCLI(t.Context(), addr, "", []string{"health", "extra"}); r.code != 1 || !strings.Contains(r.stderr, "extra") {
		t.Errorf("stray argument: %+v", r)
	}
	s.Stop()
	if r := runCLI(t.Context(), addr, "", []string{"--timeout", "2s", "health"}); r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "error: ") {
		t.Errorf("labd gone: %+v", r)
	}
}
