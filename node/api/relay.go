package api

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/auth"
	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// A member passes a user's call on with the user's own bearer token
// (forwardctx.go). Another member must never get it: whoever has root on
// that laptop could keep the token and act as the user. So a member does
// not call another member for a user: it hands the call to a control
// node, which passes it on naming the user (which members believe only
// from control nodes). The call reaches the control node as not yet
// forwarded, so that it may take the one hop a forwarded call is allowed.
// Writes go to the leader, a control node, already.

// route is the connection a call for a user, to be served by node, goes
// over, the context to send it with, and the node dialled (node, or the
// control node relaying). A connection error is the peer's.
func (s *Server) route(ctx context.Context, node string) (grpc.ClientConnInterface, context.Context, string, error) {
	via := node
	relay := s.cfg.Member != nil && s.cfg.Member() && s.kindOf(node) == auth.KindMember
	if relay {
		if via = s.relayNode(); via == "" {
			return nil, nil, "", status.Errorf(codes.Unavailable, "node %s is another member: this member passes users' calls for it through a control node, and no control node is alive", node)
		}
	}
	conn, err := s.peer(via)
	if err != nil {
		return nil, nil, via, err
	}
	var fctx context.Context
	if relay {
		fctx, err = auth.ForwardBearer(ctx)
	} else {
		fctx, err = s.forwarded(ctx)
	}
	if err != nil {
		return nil, nil, via, err
	}
	return conn, fctx, via, nil
}

// kindOf is node's kind as its identity record says ("" when unknown).
func (s *Server) kindOf(node string) string {
	if s.cfg.Members == nil {
		return ""
	}
	for _, n := range s.cfg.Members.Nodes() {
		if lab.NodeID(n.Name) == node {
			return n.Kind
		}
	}
	return ""
}

// relayNode is the control node a member relays through: the leader when
// it is alive, else the first alive control node by name; "" for none.
func (s *Server) relayNode() string {
	if s.cfg.Members == nil {
		return ""
	}
	best := ""
	for _, n := range s.cfg.Members.Nodes() {
		name := lab.NodeID(n.Name)
		if n.Kind != auth.KindControl || n.Removed || n.State != labv1.NodeState_NODE_STATE_ALIVE || name == s.cfg.Node {
			continue
		}
		if n.Leader {
			return name
		}
		if best == "" || name < best {
			best = name
		}
	}
	return best
}
