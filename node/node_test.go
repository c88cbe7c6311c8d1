package node

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/labnet-dev/labnet/node/identity"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseFlags(t *testing.T) {
	home := map[string]string{"HOME": "/home/u"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{name: "defaults", env: home, check: func(t *testing.T, c Config) {
			if c.API != DefaultAPI || c.Gossip != DefaultGossip || c.Overlay != DefaultOverlay || c.DataDir != "/home/u/.local/state/labd" || c.Name == "" || c.LogLevel != slog.LevelInfo {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "xdg", env: map[string]string{"XDG_STATE_HOME": "/x"}, check: func(t *testing.T, c Config) {
			if c.DataDir != "/x/labd" {
				t.Errorf("data = %q", c.DataDir)
			}
		}},
		{name: "env", env: map[string]string{"HOME": "/h", "LABD_API": "127.0.0.1:9", "LABD_LOG_LEVEL": "debug", "LABD_NAME": "n7"}, check: func(t *testing.T, c Config) {
			if c.API != "127.0.0.1:9" || c.LogLevel != slog.LevelDebug || c.Name != "n7" {
				t.Errorf("env not read: %+v", c)
			}
		}},
		{name: "flag beats env", args: []string{"--api", "127.0.0.1:8"}, env: map[string]string{"HOME": "/h", "LABD_API": "127.0.0.1:9"}, check: func(t *testing.T, c Config) {
			if c.API != "127.0.0.1:8" {
				t.Errorf("api = %q", c.API)
			}
		}},
		{name: "bad log level", args: []string{"--log-level", "loud"}, env: home, wantErr: "--log-level"},
		{name: "bad api", args: []string{"--api", "nowhere"}, env: home, wantErr: "--api"},
		{name: "non-loopback gossip", args: []string{"--gossip", "192.0.2.1:7946", "--join", "192.0.2.2:7946"}, env: home, wantErr: "--gossip"},
		{name: "non-loopback gossip of the node that makes the CA", args: []string{"--gossip", "192.0.2.1:7946", "--overlay", "192.0.2.1:6081"}, env: home},
		{name: "non-loopback raft beside api", args: []string{"--gossip", "192.0.2.1:7946", "--api", "192.0.2.1:7700"}, env: home, wantErr: "--raft"},
		{name: "non-loopback overlay allowed with insecure", args: []string{"--overlay", "0.0.0.0:6081", "--insecure"}, env: home},
		{name: "join", args: []string{"--join", "127.0.0.2:7946,127.0.0.3:7946"}, env: home, check: func(t *testing.T, c Config) {
			if len(c.Join) != 2 {
				t.Errorf("join = %v", c.Join)
			}
		}},
		{name: "bad join", args: []string{"--join", "nowhere"}, env: home, wantErr: "--join"},
		{name: "bad advertise", args: []string{"--advertise", "10.0.0.1:7946"}, env: home, wantErr: "--advertise"},
		{name: "non-loopback allowed with a key", args: []string{"--gossip", "0.0.0.0:7946", "--overlay", "0.0.0.0:6081", "--cluster-key", "s3cret"}, env: home},
		{name: "two keys", args: []string{"--cluster-key", "a", "--cluster-key-file", "/nonexistent"}, env: home, wantErr: "give one"},
		{name: "stray argument", args: []string{"run"}, env: home, wantErr: "unexpected argument"},
		{name: "control by default", env: home, check: func(t *testing.T, c Config) {
			if !c.Control || c.Raft != DefaultRaft {
				t.Errorf("control %v raft %q, want a control node on %s", c.Control, c.Raft, DefaultRaft)
			}
		}},
		{name: "member with join", args: []string{"--join", "127.0.0.2:7946"}, env: home, check: func(t *testing.T, c Config) {
			if c.Control {
				t.Error("a node given --join is a control node by default")
			}
		}},
		{name: "control with join", args: []string{"--join", "127.0.0.2:7946", "--control"}, env: home, check: func(t *testing.T, c Config) {
			if !c.Control {
				t.Error("--control --join is not a control node")
			}
		}},
		{name: "control from env", env: map[string]string{"HOME": "/h", "LABD_CONTROL": "false"}, check: func(t *testing.T, c Config) {
			if c.Control {
				t.Error("LABD_CONTROL=false is a control node")
			}
		}},
		{name: "raft beside api", args: []string{"--api", "127.0.0.3:7700"}, env: home, check: func(t *testing.T, c Config) {
			if c.Raft != "127.0.0.3:7701" {
				t.Errorf("raft = %q, want 127.0.0.3:7701", c.Raft)
			}
		}},
		{name: "raft any port beside api port 0", args: []string{"--api", "127.0.0.3:0"}, env: home, check: func(t *testing.T, c Config) {
			if c.Raft != "127.0.0.3:0" {
				t.Errorf("raft = %q, want 127.0.0.3:0", c.Raft)
			}
		}},
		{name: "raft given", args: []string{"--raft", "127.0.0.9:9"}, env: home, check: func(t *testing.T, c Config) {
			if c.Raft != "127.0.0.9:9" {
				t.Errorf("raft = %q", c.Raft)
			}
		}},
		{name: "bad raft", args: []string{"--raft", "nowhere"}, env: home, wantErr: "--raft"},
		{name: "non-loopback raft", args: []string{"--raft", "192.0.2.1:7701"}, env: home, wantErr: "--raft"},
		{name: "bad env", env: map[string]string{"HOME": "/h", "LABD_INSECURE": "maybe"}, wantErr: "LABD_INSECURE"},
		{name: "tls by default off loopback", args: []string{"--api", "0.0.0.0:7700", "--cluster-key", "k"}, env: home, check: func(t *testing.T, c Config) {
			if c.TLS != nil || !c.tlsOnly() {
				t.Errorf("tls %v, tlsOnly %v: want the default, TLS only", c.TLS, c.tlsOnly())
			}
		}},
		{name: "plaintext beside tls on loopback", env: home, check: func(t *testing.T, c Config) {
			if c.tlsOnly() {
				t.Error("the loopback default serves TLS only")
			}
		}},
		{name: "tls forced on loopback", args: []string{"--tls"}, env: home, check: func(t *testing.T, c Config) {
			if !c.tlsOnly() {
				t.Error("--tls on loopback accepts plaintext")
			}
		}},
		{name: "plaintext off loopback", args: []string{"--api", "0.0.0.0:7700", "--tls=false"}, env: home, wantErr: "--tls=false: --api 0.0.0.0:7700 is not a loopback address"},
		{name: "tls sans", args: []string{"--tls-san", "labd.example.org, 192.0.2.5,*.labd.svc"}, env: home, check: func(t *testing.T, c Config) {
			if strings.Join(c.TLSSANs, " ") != "labd.example.org 192.0.2.5 *.labd.svc" {
				t.Errorf("sans = %q", c.TLSSANs)
			}
		}},
		{name: "bad tls san", args: []string{"--tls-san", "a b"}, env: home, wantErr: "--tls-san"},
		{name: "ca cert without key", args: []string{"--ca-cert", "/x/ca.crt"}, env: home, wantErr: "give both"},
		{name: "shared key only without a key", args: []string{"--overlay-shared-key-only"}, env: home, wantErr: "--overlay-shared-key-only: needs --cluster-key"},
		{name: "shared key only off loopback", args: []string{"--overlay-shared-key-only", "--cluster-key", "k", "--overlay", "192.0.2.1:6081"}, env: home, wantErr: "--overlay-shared-key-only"},
		{name: "shared key only", args: []string{"--overlay-shared-key-only", "--cluster-key", "k"}, env: home, check: func(t *testing.T, c Config) {
			if !c.SharedKeyOnly {
				t.Error("SharedKeyOnly not set")
			}
		}},
		{name: "admin token file missing", args: []string{"--admin-token-file", "/nonexistent/t"}, env: home, wantErr: "--admin-token-file"},
		{name: "enroll file missing", args: []string{"--enroll-file", "/nonexistent/t"}, env: home, wantErr: "--enroll-file"},
		{name: "enroll and enroll file", args: []string{"--enroll", "lne1:x", "--enroll-file", "/nonexistent/t"}, env: home, wantErr: "give one"},
		{name: "enroll file empty", args: []string{"--enroll-file", writeTemp(t, "enroll.token", " \n")}, env: home, wantErr: "is empty"},
		{name: "enroll file not a token", args: []string{"--enroll-file", writeTemp(t, "enroll.token", "lnt_abc\n")}, env: home, wantErr: "--enroll:"},
		{name: "enroll file from env", env: map[string]string{"HOME": "/h", "LABD_ENROLL_FILE": writeTemp(t, "enroll.token", testEnrollToken+"\n")}, check: func(t *testing.T, c Config) {
			if c.Enroll != testEnrollToken {
				t.Errorf("enroll = %q, want the file's token without its newline", c.Enroll)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			c, err := ParseFlags(tc.args, env(tc.env), &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
	if _, err := ParseFlags([]string{"-h"}, env(home), &bytes.Buffer{}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

// TestRunServesAndStops runs labd in-process: health and reflection answer,
// the API works, and cancelling the context shuts down cleanly.
func TestRunServesAndStops(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	cfg := Config{Control: true, Name: "t1", DataDir: t.TempDir(), API: addr, Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(adminTokenIn(t, cfg.DataDir))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	hc := healthpb.NewHealthClient(conn)
	resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}
	rc, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(cctx)
	if err != nil {
		t.Fatal(err)
	}
	rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	rr, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	rc.CloseSend()
	var services []string
	for _, s := range rr.GetListServicesResponse().GetService() {
		services = append(services, s.Name)
	}
	for _, want := range []string{"lab.v1.LabService", "lab.v1.LiveService", "lab.v1.NodeService", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(services, " "), want) {
			t.Errorf("reflection lacks %s: %v", want, services)
		}
	}
	nodes, err := labv1.NewNodeServiceClient(conn).ListNodes(cctx, &labv1.ListNodesRequest{})
	if err != nil || len(nodes.Nodes) != 1 || nodes.Nodes[0].Name != "nodes/t1" || nodes.Nodes[0].ApiAddress != addr {
		t.Fatalf("ListNodes: %v %v", nodes, err)
	}
	// A ping that would run forever must not hold up the shutdown.
	_, err = labv1.NewLabServiceClient(conn).Apply(cctx, &labv1.ApplyRequest{Topology: &labv1.Topology{
		Networks: []*labv1.Network{{Name: "lan", Ipv4: "10.0.0.0/24"}},
		Hosts: []*labv1.Host{
			{Name: "a", Interfaces: []*labv1.Interface{{Network: "lan"}}},
			{Name: "b", Interfaces: []*labv1.Interface{{Network: "lan"}}},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var ping grpc.ServerStreamingClient[labv1.PingResponse]
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ping, err = labv1.NewLiveServiceClient(conn).Ping(cctx, &labv1.PingRequest{Host: "labs/default/hosts/a", Destination: "b", Interval: durationpb.New(10 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = ping.Recv(); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	if r, err := ping.Recv(); err != nil || r.GetReply() == nil {
		t.Fatalf("first probe: %v %v", r, err)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		for {
			if _, err := ping.Recv(); err != nil {
				if status.Code(err) != codes.Unavailable {
					t.Errorf("ping ended with %v, want Unavailable", err)
				}
				break
			}
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("shutdown took %v", time.Since(start))
		}
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRunRefusesLockedData(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Config{Control: true, Name: "a", DataDir: dir, API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0"}
	done := make(chan error, 1)
	first := cfg // the goroutine's own copy: cfg changes below
	go func() { done <- Run(ctx, first, slog.New(slog.DiscardHandler)) }()
	time.Sleep(300 * time.Millisecond)
	cfg.Name = "b"
	err := Run(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second labd on the same data: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestMetrics: --metrics serves Prometheus text with the overlay, member
// and interface counters.
func TestMetrics(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	maddr := lis.Addr().String()
	lis.Close()
	cfg := Config{Control: true, Name: "m1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0", Metrics: maddr}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + maddr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never served: %v", err)
		}
	}
	for _, want := range []string{`labnet_cluster_members{state="alive"} 1`, "labnet_overlay_packets_total", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestRunAdvertise: --advertise (a bare IP) is the address the node
// publishes for its gossip, API and overlay, with the bound ports.
func TestRunAdvertise(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	// Bound on 127.0.0.1, advertised as 127.0.0.1 too: what changes is that
	// the address comes from --advertise, on all three ports.
	cfg := Config{Control: true, Name: "adv", DataDir: t.TempDir(), API: addr, Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0", Advertise: "127.0.0.1"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(adminTokenIn(t, cfg.DataDir))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	nodes, err := labv1.NewNodeServiceClient(conn).ListNodes(cctx, &labv1.ListNodesRequest{}, grpc.WaitForReady(true))
	if err != nil {
		select {
		case err := <-done:
			done <- nil
			t.Fatalf("labd with --advertise exited: %v", err)
		default:
		}
		t.Fatal(err)
	}
	if len(nodes.Nodes) != 1 {
		t.Fatalf("nodes: %v", nodes.Nodes)
	}
	n := nodes.Nodes[0]
	for _, a := range []string{n.ApiAddress, n.GossipAddress, n.OverlayAddress} {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host != "127.0.0.1" || port == "0" {
			t.Errorf("advertised address %q, want 127.0.0.1 with the bound port", a)
		}
	}
}

func TestReachable(t *testing.T) {
	private := func() (string, error) { return "192.0.2.7", nil }
	none := func() (string, error) { return "", nil }
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		addr string
		priv func() (string, error)
		want string
	}{
		{"0.0.0.0:7700", private, "192.0.2.7:7700"},
		{"[::]:6081", private, "192.0.2.7:6081"},
		{"127.0.0.1:7700", private, "127.0.0.1:7700"},
		{"10.1.2.3:7700", private, "10.1.2.3:7700"},
		{"0.0.0.0:7700", none, "0.0.0.0:7700"},
	} {
		if got := reachable(tc.addr, tc.priv, log); got != tc.want {
			t.Errorf("reachable(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

// TestAdminTokenFlag: --admin-token-file must hold a labnet token.
func TestAdminTokenFlag(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	tok, _, _ := identity.NewToken()
	os.WriteFile(good, []byte(tok+"\n"), 0o600)
	os.WriteFile(bad, []byte("hunter2\n"), 0o600)
	c, err := ParseFlags([]string{"--admin-token-file", good}, env(map[string]string{"HOME": "/h"}), &bytes.Buffer{})
	if err != nil || c.AdminToken != tok {
		t.Errorf("good token: %v, token %q", err, c.AdminToken)
	}
	if _, err := ParseFlags([]string{"--admin-token-file", bad}, env(map[string]string{"HOME": "/h"}), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--admin-token-file: not a labnet token") {
		t.Errorf("bad token: %v, want an --admin-token-file error", err)
	}
}
