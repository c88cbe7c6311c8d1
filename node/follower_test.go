package node

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/api"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// gossipPort is a port free for both TCP and UDP on 127.0.0.1.
func gossipPort(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// runDaemonConn runs a labd until the test ends and returns a client of
// its API with the admin's token of boot, the node that formed the control
// plane (nil: this one).
func runDaemonConn(t *testing.T, cfg Config, boot *Daemon) (*Daemon, *grpc.ClientConn) {
	t.Helper()
	d, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New %s: %v", cfg.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run %s: %v", cfg.Name, err)
		}
		d.Close()
	})
	if boot == nil {
		boot = d
	}
	return d, dialAdmin(t, d, boot)
}

// TestMemberFollowsControlNode: a labd started with --join is a member: it
// follows the control node into its replica, answers reads from it with
// the replica's age, and refuses Follow itself.
func TestMemberFollowsControlNode(t *testing.T) {
	seed := gossipPort(t)
	c1, c1conn := runDaemonConn(t, Config{Name: "c1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Control: true}, nil)
	m1, m1conn := runDaemonConn(t, Config{Name: "m1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0", Join: []string{seed}}, c1)
	if c1.follower != nil || m1.follower == nil {
		t.Fatalf("followers: control node %v, member %v; want none and one", c1.follower, m1.follower)
	}
	ctx := t.Context()
	if _, err := labv1.NewLabServiceClient(c1conn).CreateLab(ctx, &labv1.CreateLabRequest{LabId: "demo", Lab: &labv1.Lab{Description: "followed"}}); err != nil {
		t.Fatalf("CreateLab on c1: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	var md metadata.MD
	for {
		resp, err := labv1.NewLabServiceClient(m1conn).GetLab(ctx, &labv1.GetLabRequest{Name: "labs/demo"}, grpc.Header(&md))
		if err == nil && resp.GetLab().GetDescription() == "followed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lab did not reach the member: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if age := md.Get(api.ReplicaAgeHeader); len(age) != 1 {
		t.Errorf("member's read: %s = %q, want one value", api.ReplicaAgeHeader, age)
	} else if _, err := strconv.ParseFloat(age[0], 64); err != nil {
		t.Errorf("member's read: %s = %q: %v", api.ReplicaAgeHeader, age[0], err)
	}
	md = nil
	if _, err := labv1.NewLabServiceClient(c1conn).GetLab(ctx, &labv1.GetLabRequest{Name: "labs/demo"}, grpc.Header(&md)); err != nil {
		t.Fatal(err)
	} else if age := md.Get(api.ReplicaAgeHeader); len(age) != 0 {
		t.Errorf("control node's read: %s = %q, want none", api.ReplicaAgeHeader, age)
	}

	// Follow is a node's call: made with c1's certificate.
	creds, err := c1.pki.clientCreds()
	if err != nil {
		t.Fatal(err)
	}
	asNode, err := grpc.NewClient(m1.api.lis.Addr().String(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer asNode.Close()
	stream, err := labv1.NewControlServiceClient(asNode).Follow(ctx, &labv1.FollowRequest{Node: "x"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Follow on the member: %v, want FailedPrecondition", err)
	}
}
