package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/runtime"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
	"github.com/labnet-dev/labnet/stack"
)

// Tombstones of deleted resources are kept this long so that a node that
// was away can still learn of the delete.
const (
	tombstoneHorizon = 7 * 24 * time.Hour
	shutdownGrace    = 10 * time.Second
)

// Run runs labd until ctx is cancelled, then shuts down cleanly: stop
// accepting calls, let calls in flight finish (up to a grace period), stop
// the hosts and close the store. The returned error is nil after a clean
// shutdown.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "state.db"), store.Options{Origin: cfg.Name})
	if err != nil {
		return err
	}
	defer st.Close()

	lis, err := net.Listen("tcp", cfg.API)
	if err != nil {
		return fmt.Errorf("--api %s: %w", cfg.API, err)
	}
	started := time.Now()
	fab := fabric.New(fabric.WithClock(stack.SystemClock{}))
	rt := runtime.New(runtime.Config{Node: cfg.Name, Store: st, Fabric: fab, Clock: stack.SystemClock{}, Logger: log.With("component", "runtime")})
	self := &singleNode{cfg: cfg, started: started, rt: rt, apiAddr: lis.Addr().String()}
	srv := api.New(api.Config{Node: cfg.Name, Store: st, Hosts: hostsOf{rt}, Members: self, Logger: log.With("component", "api")})

	g := grpc.NewServer()
	srv.Register(g)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return rt.Run(ctx) })
	eg.Go(func() error {
		if err := g.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("api: %w", err)
		}
		return nil
	})
	eg.Go(func() error {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case now := <-t.C:
				if n, err := st.CollectTombstones(now, tombstoneHorizon); err != nil {
					log.Warn("tombstone collection failed", "err", err)
				} else if n > 0 {
					log.Debug("tombstones collected", "count", n)
				}
			}
		}
	})
	eg.Go(func() error {
		<-ctx.Done()
		hs.Shutdown()
		srv.Stop()
		log.Info("shutting down: finishing calls in flight")
		done := make(chan struct{})
		go func() { g.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(shutdownGrace):
			log.Warn("calls still running after the grace period: stopping them", "grace", shutdownGrace)
			g.Stop()
		}
		return nil
	})
	log.Info("labd ready", "name", cfg.Name, "api", lis.Addr().String(), "data", cfg.DataDir, "version", Version)
	err = eg.Wait()
	if cerr := st.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err == nil {
		log.Info("labd stopped")
	}
	return err
}

// hostsOf adapts the runtime to api.Hosts.
type hostsOf struct{ rt *runtime.Runtime }

func (h hostsOf) Host(name string) (api.LiveHost, bool) {
	host, ok := h.rt.Host(name)
	if !ok {
		return nil, false
	}
	return host, true
}

func (h hostsOf) Count() int { return h.rt.Count() }

// singleNode is the membership of a labd that has no cluster: itself.
type singleNode struct {
	cfg     Config
	started time.Time
	rt      *runtime.Runtime
	apiAddr string
}

func (s *singleNode) Nodes() []*labv1.Node {
	return []*labv1.Node{{
		Name:           "nodes/" + s.cfg.Name,
		State:          labv1.NodeState_NODE_STATE_ALIVE,
		ApiAddress:     s.apiAddr,
		GossipAddress:  s.cfg.Gossip,
		OverlayAddress: s.cfg.Overlay,
		Version:        Version,
		HostCount:      int32(s.rt.Count()),
		StartTime:      timestamppb.New(s.started),
	}}
}
