package node

import (
	"context"
	"log/slog"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/labnet-dev/labnet/node/store"
)

// TestStoreFailureTurnsHealthNotServing: a change the store cannot persist
// (here: its file closed under it) turns the node's health NOT_SERVING.
func TestStoreFailureTurnsHealthNotServing(t *testing.T) {
	cfg := Config{Name: "t1", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0"}
	d, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	status := func() healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := d.api.health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status
	}
	if got := status(); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health of a new node = %v, want SERVING", got)
	}
	if err := d.store.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.store.Update(func(tx *store.Tx) error { tx.Put("labs/x", []byte("x")); return nil }); err == nil {
		t.Fatal("write to a closed store succeeded")
	}
	if got := status(); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health after a failed write = %v, want NOT_SERVING", got)
	}
}
