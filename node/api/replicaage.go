package api

import (
	"context"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// ReplicaAgeHeader is the response header with which a member says how old
// the replica its read was answered from is: seconds since it last heard
// from the control plane, in decimal ("12.5"). Control nodes do not send
// it.
const ReplicaAgeHeader = "labnet-replica-age"

// isReplicaRead reports whether method (a full gRPC method name) reads the
// desired state from the local store: lab and node reads and the lab
// watch. Writes go to the leader and live calls to the host's node, so
// they do not carry the age.
func isReplicaRead(method string) bool {
	svc, name, ok := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	if !ok {
		return false
	}
	switch svc {
	case "lab.v1.LabService", "lab.v1.NodeService":
		return strings.HasPrefix(name, "Get") || strings.HasPrefix(name, "List") || strings.HasPrefix(name, "Watch")
	}
	return false
}

// replicaAge is the header for a read on this node, nil on a control node
// (or a labd without Staleness).
func (s *Server) replicaAge(method string) metadata.MD {
	if s.cfg.Staleness == nil || !isReplicaRead(method) {
		return nil
	}
	age, member := s.cfg.Staleness()
	if !member {
		return nil
	}
	return metadata.Pairs(ReplicaAgeHeader, strconv.FormatFloat(max(age, 0).Seconds(), 'f', 1, 64))
}

// ServerOptions are the options the gRPC server of these services needs:
// the interceptor that forwards writes to the leader (writer.go), and
// interceptors that add the replica age to reads on a member.
func (s *Server) ServerOptions() []grpc.ServerOption {
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if md := s.replicaAge(info.FullMethod); md != nil {
			_ = grpc.SetHeader(ctx, md) // fails only once headers are sent
		}
		return handler(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if md := s.replicaAge(info.FullMethod); md != nil {
			_ = ss.SetHeader(md)
		}
		return handler(srv, ss)
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(s.forwardWrites, unary), grpc.ChainStreamInterceptor(stream)}
}
