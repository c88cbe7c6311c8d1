package node

import (
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// storeFailed is the store's OnError: a change that could not be persisted
// (a full or failing disk) turns the node's health NOT_SERVING, and the
// first one is logged with its cause. Memory still holds the last state
// that was persisted; the node stays NOT_SERVING until it restarts. It is
// called on the writer's goroutine and does not block.
func (d *Daemon) storeFailed(err error) {
	d.storeFailOnce.Do(func() {
		d.log.Error("state could not be written to disk: health NOT_SERVING until restart", "err", err)
	})
	if h := d.health.Load(); h != nil {
		h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	}
}
