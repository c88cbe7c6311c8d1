package api

import (
	"context"
	"errors"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// forwardedKey marks a call one labd passed on to another, so that a stale
// view of the placement can never bounce a call around the cluster.
const forwardedKey = auth.ForwardedByKey

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
	labID, id, ok := lab.ParseHostName(host)
	if !ok {
		return nil, nil, nil
	}
	spec, ok, err := lab.GetHost(s.cfg.Store, labID, id)
	if err != nil || !ok || spec.Node == s.cfg.Node || spec.Node == "" {
		return nil, nil, nil
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(forwardedKey)) > 0 {
		return nil, nil, status.Errorf(codes.Unavailable, "host %s runs on node %s, not here (the call was already forwarded by %s)", id, spec.Node, md.Get(forwardedKey)[0])
	}
	conn, fctx, via, err := s.route(ctx, spec.Node)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, nil, err
		}
		if via != spec.Node {
			return nil, nil, status.Errorf(codes.Unavailable, "host %s runs on node %s; control node %s, which passes calls on to it, cannot be reached: %v", id, spec.Node, via, err)
		}
		return nil, nil, status.Errorf(codes.Unavailable, "host %s runs on node %s, which cannot be reached: %v", id, spec.Node, err)
	}
	return conn, fctx, nil
}

// peer is a connection to another node's API whose connection errors say
// which node could not be reached: passed on as they are, they would read
// as the caller's own failure to reach this labd.
func (s *Server) peer(node string) (grpc.ClientConnInterface, error) {
	conn, err := s.cfg.Peer(node)
	if err != nil {
		return nil, err
	}
	return peerConn{conn, node}, nil
}

type peerConn struct {
	grpc.ClientConnInterface
	node string
}

func (p peerConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return p.wrap(p.ClientConnInterface.Invoke(ctx, method, args, reply, opts...))
}

func (p peerConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := p.ClientConnInterface.NewStream(ctx, desc, method, opts...)
	if err != nil {
		return nil, p.wrap(err)
	}
	return peerStream{cs, p}, nil
}

type peerStream struct {
	grpc.ClientStream
	p peerConn
}

func (s peerStream) SendMsg(m any) error { return s.p.wrap(s.ClientStream.SendMsg(m)) }
func (s peerStream) RecvMsg(m any) error { return s.p.wrap(s.ClientStream.RecvMsg(m)) }

// wrap rewords the client's own connection errors (Unavailable with a
// transport message) as this node's failure to reach the peer.
func (p peerConn) wrap(err error) error {
	st, ok := status.FromError(err)
	if err == nil || !ok || st.Code() != codes.Unavailable {
		return err
	}
	msg := st.Message()
	if !strings.HasPrefix(msg, "connection error") && !strings.Contains(msg, "transport: ") {
		return err // the peer's own answer
	}
	if _, after, ok := strings.Cut(msg, `desc = "`); ok {
		msg = strings.TrimSuffix(after, `"`)
	}
	msg = strings.TrimPrefix(msg, "transport: Error while dialing: ")
	msg = strings.TrimPrefix(msg, "transport: ")
	return status.Errorf(codes.Unavailable, "node %s cannot be reached from here: %s", p.node, msg)
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
