package follow

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// HeartbeatEvery is how often Follow tells a member it is there.
const HeartbeatEvery = time.Second

// ServerConfig configures a Server.
type ServerConfig struct {
	Node  string // this node's name, for the refusal on members
	Store Source
	// IsControl reports whether this node is a control node now (it can be
	// promoted or demoted while it runs); members refuse Follow.
	IsControl func() bool
	Now       func() time.Time // time.Now when nil
	Heartbeat time.Duration    // HeartbeatEvery when 0
	Chunk     int              // records per snapshot message; snapshotChunk when 0
	Logger    *slog.Logger
}

// Server serves ControlService.
type Server struct {
	labv1.UnimplementedControlServiceServer
	cfg      ServerConfig
	stopping chan struct{}
	stopOnce sync.Once
}

// NewServer returns a server; register it with
// labv1.RegisterControlServiceServer.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = HeartbeatEvery
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = snapshotChunk
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, stopping: make(chan struct{})}
}

// Stop ends the streams in flight (members reconnect elsewhere), so that a
// graceful shutdown need not wait for them. Idempotent.
func (s *Server) Stop() { s.stopOnce.Do(func() { close(s.stopping) }) }

// Follow serves one member: catch up (snapshot or history), then changes
// as the store signals them and a heartbeat every cfg.Heartbeat. It
// subscribes before it reads, so no change falls between the catch-up and
// the first signal.
func (s *Server) Follow(req *labv1.FollowRequest, stream labv1.ControlService_FollowServer) error {
	if s.cfg.IsControl == nil || !s.cfg.IsControl() {
		return status.Errorf(codes.FailedPrecondition, "node %s is not a control node", s.cfg.Node)
	}
	changed, unsubscribe := s.cfg.Store.Subscribe()
	defer unsubscribe()
	ctx := stream.Context()
	log := s.cfg.Logger.With("member", req.GetNode())

	rev, err := s.catchUp(stream, req.GetFromRevision(), log)
	if err != nil {
		return err
	}
	if err := s.heartbeat(stream); err != nil {
		return err
	}
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.stopping:
			return status.Error(codes.Unavailable, "labd is shutting down")
		case <-tick.C:
			if err := s.heartbeat(stream); err != nil {
				return err
			}
		case <-changed:
			if rev, err = s.catchUp(stream, rev, log); err != nil {
				return err
			}
		}
	}
}

// catchUp sends what happened after rev: the changes from the store's
// history, or a snapshot when rev is 0, no longer in the history, or ahead
// of the store (a replica from another cluster, or from before a restore).
// It returns the revision the member is now at.
func (s *Server) catchUp(stream labv1.ControlService_FollowServer, rev uint64, log *slog.Logger) (uint64, error) {
	if rev != 0 && rev <= s.cfg.Store.Revision() {
		changes, err := s.cfg.Store.Since(rev)
		switch {
		case err == nil:
			for _, c := range changes {
				if err := stream.Send(changeMessage(c)); err != nil {
					return rev, err
				}
				rev = c.Rev
			}
			return rev, nil
		case !errors.Is(err, ErrCompacted):
			return rev, status.Errorf(codes.Internal, "store: changes since %d: %v", rev, err)
		}
		log.Debug("history compacted: sending a snapshot", "from", rev)
	}
	recs, at := s.cfg.Store.Snapshot()
	for _, m := range snapshotMessages(recs, at, s.cfg.Chunk) {
		if err := stream.Send(m); err != nil {
			return rev, err
		}
	}
	return at, nil
}

func (s *Server) heartbeat(stream labv1.ControlService_FollowServer) error {
	hb := &labv1.Heartbeat{Revision: s.cfg.Store.Revision(), Time: timestamppb.New(s.cfg.Now())}
	return stream.Send(&labv1.FollowResponse{Event: &labv1.FollowResponse_Heartbeat{Heartbeat: hb}})
}
