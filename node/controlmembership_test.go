package node

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestDemoteAndPromote: labctl node demote removes a control node from the
// voters (asked through the node itself, forwarded to the leader); the
// demoted labd says so (NOT_SERVING) and is not added back while it runs;
// the last voter cannot be demoted; promoting a node that runs as a member
// asks for a restart with --control; after that restart, promote adds it
// back.
func TestDemoteAndPromote(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	a, _ := runDaemon(t, Config{Control: true, Name: "a", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0"}, log)
	waitUntil(t, "a to lead", func() bool { return a.control.ctl.IsLeader() })
	bcfg := Config{
		Control: true, Name: "b", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0",
		Join: []string{a.members.cl.LocalAddr()},
	}
	b, stopB := runDaemon(t, bcfg, log)
	waitUntil(t, "b in the raft configuration", func() bool { return len(a.control.ctl.Servers()) == 2 })

	nodes := func(d *Daemon) labv1.NodeServiceClient { return labv1.NewNodeServiceClient(dialAdmin(t, d, a)) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Through b, which does not lead: the call goes to a.
	if _, err := nodes(b).DemoteNode(ctx, &labv1.DemoteNodeRequest{Name: "nodes/b"}); err != nil {
		t.Fatalf("demote b through b: %v", err)
	}
	if n := len(a.control.ctl.Servers()); n != 1 {
		t.Fatalf("%d servers after the demotion, want 1", n)
	}
	conn, err := grpc.NewClient(b.api.lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitUntil(t, "b to report NOT_SERVING", func() bool {
		r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && r.Status == healthpb.HealthCheckResponse_NOT_SERVING
	})
	time.Sleep(2 * time.Second) // several rounds of the leader's addControlNodes
	if n := len(a.control.ctl.Servers()); n != 1 {
		t.Fatalf("the demoted node was added back: %d servers", n)
	}

	_, err = nodes(a).DemoteNode(ctx, &labv1.DemoteNodeRequest{Name: "nodes/a"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "only control node") {
		t.Errorf("demote the last voter: %v, want FailedPrecondition naming it the only control node", err)
	}
	waitUntil(t, "gossip to show b as a member", func() bool {
		m, ok := a.control.member("b")
		return ok && m.Meta.Role == "member"
	})
	_, err = nodes(a).PromoteNode(ctx, &labv1.PromoteNodeRequest{Name: "nodes/b"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "restart its labd with --control") {
		t.Errorf("promote a node that runs no raft: %v, want FailedPrecondition asking for --control", err)
	}

	// b restarted with --control: still demoted until promoted.
	stopB()
	b, _ = runDaemon(t, bcfg, log)
	waitUntil(t, "b back in gossip as a control node", func() bool {
		m, ok := a.control.member("b")
		return ok && m.Meta.Role == "control" && m.Meta.RaftAddr != ""
	})
	time.Sleep(2 * time.Second)
	if n := len(a.control.ctl.Servers()); n != 1 {
		t.Fatalf("the restarted demoted node was added before a promote: %d servers", n)
	}
	if _, err := nodes(b).PromoteNode(ctx, &labv1.PromoteNodeRequest{Name: "nodes/b"}); err != nil {
		t.Fatalf("promote b: %v", err)
	}
	waitUntil(t, "b a voter again", func() bool { return len(a.control.ctl.Servers()) == 2 })
}
