package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/labnet-dev/labnet/node/store"
)

// TestHealthNotServingOnFullDisk: once the store cannot persist a write
// (its file capped as a full disk would), health turns NOT_SERVING and
// the reason is logged at ERROR.
func TestHealthNotServingOnFullDisk(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs syncBuffer
	d := &Daemon{
		store: st, control: &controlPlane{},
		api: &apiServer{health: health.NewServer()},
		log: slog.New(slog.NewTextHandler(&logs, nil)),
	}
	big := make([]byte, 64<<10)
	for i := 0; st.Err() == nil && i < 1000; i++ {
		st.Update(func(tx *store.Tx) error {
			tx.Put(fmt.Sprintf("k%d", i), big)
			return nil
		})
	}
	if st.Err() == nil {
		t.Fatal("the capped store never failed a write")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := d.watchHealth(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := d.api.health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health: %v, %v; want NOT_SERVING", resp, err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "NOT_SERVING") {
		t.Errorf("no ERROR line saying why:\n%s", logs.String())
	}
}
