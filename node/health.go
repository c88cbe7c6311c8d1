package node

import (
	"context"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// healthEvery is how often the daemon checks that its writes persist.
const healthEvery = time.Second

// watchHealth turns the API's health NOT_SERVING, and says why once at
// ERROR, when a write could not be persisted: the store's (a full or
// failing disk under the state) or the raft log's. A node whose disk
// fails must not go on answering from a state it cannot keep. It ends
// with ctx.
func (d *Daemon) watchHealth(ctx context.Context) error {
	t := time.NewTicker(healthEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := d.store.Err()
		what := "state"
		if err == nil {
			err, what = d.control.Err(), "raft log"
		}
		if err != nil {
			d.log.Error("a write could not be persisted: health is NOT_SERVING until labd restarts on a working disk", "part", what, "err", err)
			d.api.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
			return nil
		}
	}
}
