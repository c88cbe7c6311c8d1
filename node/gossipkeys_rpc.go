package node

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// GossipKeys returns the gossip keys, primary first, to a node (the
// interceptor admits node certificates only, and refuses a removed
// node's): a node whose keys went stale while it was off asks for them.
func (s *controlServer) GossipKeys(ctx context.Context, _ *labv1.GossipKeysRequest) (*labv1.GossipKeysResponse, error) {
	if s.keys == nil {
		return nil, status.Error(codes.Unavailable, "gossip keys: not ready")
	}
	return &labv1.GossipKeysResponse{Keys: s.keys.current()}, nil
}

// enrollGossipKeys are the keys Enroll hands the node it enrols (none:
// gossip is not encrypted).
func (s *controlServer) enrollGossipKeys() [][]byte { return s.keys.current() }

// Follow serves a member's Follow, ended as soon as the member's identity
// is removed: the interceptor refuses a removed node's new calls, and a
// stream it opened before must not go on carrying the state to it (the
// gossip keys that replace the ones it knew are in the state).
func (s *controlServer) Follow(req *labv1.FollowRequest, stream labv1.ControlService_FollowServer) error {
	p, ok := auth.FromContext(stream.Context())
	if !ok || p.Node == "" || s.store == nil {
		return s.Server.Follow(req, stream)
	}
	return s.Server.Follow(req, &unlessRemoved{ControlService_FollowServer: stream, node: p.Node, get: lab.StoreGetter{St: s.store}})
}

// unlessRemoved is a Follow stream that sends nothing once its node's
// identity is removed. The record is read before each message: the state
// a message carries is no newer than the store, so a removal is seen
// before anything written after it is sent.
type unlessRemoved struct {
	labv1.ControlService_FollowServer
	node string
	get  lab.Getter
}

func (u *unlessRemoved) Send(m *labv1.FollowResponse) error {
	if id, ok := lab.GetNodeIdentity(u.get, u.node); ok && id.Removed {
		return status.Errorf(codes.PermissionDenied, "node %s was removed (labctl node remove): its certificate is refused", u.node)
	}
	return u.ControlService_FollowServer.Send(m)
}
