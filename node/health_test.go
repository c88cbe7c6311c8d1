package node

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestRaftFailureTurnsHealthNotServing: the raft log's OnError turns a
// control node's health NOT_SERVING, said once at ERROR.
func TestRaftFailureTurnsHealthNotServing(t *testing.T) {
	var logs syncBuffer
	cfg := Config{Control: true, Name: "t1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0"}
	d, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.raftFailed(errors.New("disk full"))
	d.raftFailed(errors.New("disk full again"))
	resp, err := d.api.health.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health: %v, %v; want NOT_SERVING", resp, err)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "disk full") {
		t.Errorf("%d ERROR lines, want 1 naming the cause:\n%s", n, logs.String())
	}
}
