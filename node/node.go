package node

import (
	"context"
	"log/slog"
)

// Run runs labd until ctx is cancelled, then shuts down cleanly: stop
// accepting calls, let calls in flight finish (up to a grace period), stop
// the hosts and close the store. The returned error is nil after a clean
// shutdown.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	d, err := New(cfg, log)
	if err != nil {
		return err
	}
	err = d.Run(ctx)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		log.Info("labd stopped")
	}
	return err
}
