package api

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// forwardedKey marks a call one labd passed on to another, so that a stale
// view of the placement can never bounce a call around the cluster.
const forwardedKey = "labnet-forwarded-by"

// forward returns a client of the node that runs host when that is not this
// node (every labd is a front door: DESIGN.md), or nil when the call is
// served here (including when the host does not exist: the local path
// reports that).
func (s *Server) forward(ctx context.Context, host string) (labv1.LiveServiceClient, context.Context, error) {
	conn, fctx, err := s.forwardConn(ctx, host)
	if conn == nil {
		return nil, nil, err
	}
	return labv1.NewLiveServiceClient(conn), fctx, nil
}

// forwardConn is forward's connection to the node that runs host, for a
// client of any service; nil when the call is served here.
func (s *Server) forwardConn(ctx context.Context, host string) (grpc.ClientConnInterface, context.Context, error) {
	if s.cfg.Peer == nil {
		return nil, nil, nil
	}
	lab, id, ok := parseChild(host, "hosts")
	if !ok {
		return nil, nil, nil
	}
	rec, ok := s.cfg.Store.Get(hostName(lab, id))
	if !ok {
		return nil, nil, nil
	}
	spec := &labv1.Host{}
	if proto.Unmarshal(rec.Value, spec) != nil || spec.Node == s.cfg.Node || spec.Node == "" {
		return nil, nil, nil
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(forwardedKey)) > 0 {
		return nil, nil, status.Errorf(codes.Unavailable, "host %s runs on node %s, not here (the call was already forwarded by %s)", id, spec.Node, md.Get(forwardedKey)[0])
	}
	conn, err := s.cfg.Peer(spec.Node)
	if err != nil {
		return nil, nil, status.Errorf(codes.Unavailable, "host %s runs on node %s, which cannot be reached: %v", id, spec.Node, err)
	}
	return conn, metadata.AppendToOutgoingContext(ctx, forwardedKey, s.cfg.Node), nil
}

// forwardStream serves a streaming live call on the node that runs host,
// when that is another node: it reports whether it did, and how the
// forwarded call ended.
func forwardStream[Req, Resp any](s *Server, ctx context.Context, host string, req Req,
	call func(labv1.LiveServiceClient, context.Context, Req, ...grpc.CallOption) (grpc.ServerStreamingClient[Resp], error),
	send func(*Resp) error) (bool, error) {
	c, fctx, err := s.forward(ctx, host)
	if err != nil || c == nil {
		return err != nil, err
	}
	st, err := call(c, fctx, req)
	if err != nil {
		return true, err
	}
	return true, relay(st.Recv, send)
}

// relay copies a forwarded stream back to the caller.
func relay[T any](recv func() (*T, error), send func(*T) error) error {
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := send(m); err != nil {
			return err
		}
	}
}

// Peer dials are made by the daemon; the API only needs a connection.
type peerDialer = func(node string) (grpc.ClientConnInterface, error)
