package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Timeouts of the metrics server. A scrape is small; a client that sends
// its headers slower than this is not a Prometheus.
const (
	readHeaderTimeout = 10 * time.Second
	shutdownGrace     = 5 * time.Second
)

// Listen listens on addr (host:port) for Serve. It is separate from Serve
// so that labd fails at startup, with the address named, when the port is
// taken or the address is not this machine's.
func Listen(addr string) (net.Listener, error) {
	return net.Listen("tcp", addr)
}

// Serve serves reg's metrics at /metrics on l until ctx is done, then shuts
// down: it stops accepting, lets scrapes in flight finish for a few
// seconds and returns nil. It closes l. An error serving is returned at
// once.
func Serve(ctx context.Context, l net.Listener, reg *Registry) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: %w", err) // accepting failed; Serve never returns nil
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}
