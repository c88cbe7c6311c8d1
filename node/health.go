package node

import (
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// raftFailed is the raft log's OnError, as storeFailed is the store's: a
// write the raft log cannot persist (a full or failing disk) turns the
// node's health NOT_SERVING, and the first one is logged with its cause.
// It is called on raft's goroutines and does not block.
func (d *Daemon) raftFailed(err error) {
	d.raftFailOnce.Do(func() {
		d.log.Error("the raft log could not be written to disk: health NOT_SERVING until restart", "err", err)
	})
	if h := d.health.Load(); h != nil {
		h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	}
}

// notServing turns health NOT_SERVING for a reason its caller logged.
func (d *Daemon) notServing() {
	if h := d.health.Load(); h != nil {
		h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	}
}
