package api

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// PromoteNode makes a member a control node through Config.Membership.
func (s *Server) PromoteNode(ctx context.Context, req *labv1.PromoteNodeRequest) (*labv1.PromoteNodeResponse, error) {
	n, err := s.changeRole(ctx, req.GetName(), "promote", Membership.Promote)
	if err != nil {
		return nil, err
	}
	return &labv1.PromoteNodeResponse{Node: n}, nil
}

// DemoteNode makes a control node a member through Config.Membership.
func (s *Server) DemoteNode(ctx context.Context, req *labv1.DemoteNodeRequest) (*labv1.DemoteNodeResponse, error) {
	n, err := s.changeRole(ctx, req.GetName(), "demote", Membership.Demote)
	if err != nil {
		return nil, err
	}
	return &labv1.DemoteNodeResponse{Node: n}, nil
}

// changeRole checks that name is a known node and asks Membership to
// change it; it returns the node as listed afterwards (its role in gossip
// follows a moment later).
func (s *Server) changeRole(ctx context.Context, name, verb string, change func(Membership, context.Context, string) error) (*labv1.Node, error) {
	if s.cfg.Membership == nil {
		return nil, status.Error(codes.Unimplemented, "this node cannot change the control plane")
	}
	if name == "" {
		return nil, invalid("name", "required: nodes/{node}")
	}
	if _, ok := s.findNode(name); !ok {
		return nil, notFound("node %q not found", name)
	}
	if err := change(s.cfg.Membership, ctx, lab.NodeID(name)); err != nil {
		var nl notLeaderer
		if errors.As(err, &nl) {
			return nil, &errNotLeader{leader: nl.NotLeader()} // the interceptor forwards the call to the leader
		}
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, status.FromContextError(ctxErr).Err()
		}
		return nil, status.Error(codes.FailedPrecondition, fmt.Sprintf("%s %s: %v", verb, name, err))
	}
	n, _ := s.findNode(name)
	return n, nil
}

// findNode is the node called name ("nodes/{node}", or the bare node name).
func (s *Server) findNode(name string) (*labv1.Node, bool) {
	full := lab.NodeName(lab.NodeID(name))
	for _, n := range s.cfg.Members.Nodes() {
		if n.GetName() == full {
			return n, true
		}
	}
	return nil, false
}
