package api

import (
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// WatchNodes streams the nodes: the current ones as ADDED, then SYNCED,
// then what changes, as Watch does for labs. It listens to the membership
// (a node joins, fails, leaves, is forgotten, changes role or leadership)
// and to the store (a node's host count), subscribing before the first
// read so that no change falls between the initial state and the first
// signal; each signal is answered by diffing a fresh list against what was
// last sent.
func (s *Server) WatchNodes(req *labv1.WatchNodesRequest, stream labv1.NodeService_WatchNodesServer) error {
	members, unwatch := s.cfg.Members.Watch()
	defer unwatch()
	stored, unsubscribe := s.cfg.Store.Subscribe()
	defer unsubscribe()
	ctx := stream.Context()

	sent := map[string]*labv1.Node{}
	for _, n := range s.cfg.Members.Nodes() {
		if err := stream.Send(&labv1.WatchNodesResponse{Type: labv1.WatchEventType_WATCH_EVENT_TYPE_ADDED, Name: n.GetName(), Node: n}); err != nil {
			return err
		}
		sent[n.GetName()] = n
	}
	if err := stream.Send(&labv1.WatchNodesResponse{Type: labv1.WatchEventType_WATCH_EVENT_TYPE_SYNCED}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.stopping:
			return status.Error(codes.Unavailable, "labd is shutting down")
		case _, ok := <-members:
			if !ok {
				return status.Error(codes.Unavailable, "labd is shutting down")
			}
		case <-stored:
		}
		cur := map[string]*labv1.Node{}
		var names []string
		for _, n := range s.cfg.Members.Nodes() {
			cur[n.GetName()] = n
			names = append(names, n.GetName())
		}
		for name := range sent {
			if _, ok := cur[name]; !ok {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			before, had := sent[name]
			after, has := cur[name]
			var resp *labv1.WatchNodesResponse
			switch {
			case !had:
				resp = &labv1.WatchNodesResponse{Type: labv1.WatchEventType_WATCH_EVENT_TYPE_ADDED, Name: name, Node: after}
			case !has:
				resp = &labv1.WatchNodesResponse{Type: labv1.WatchEventType_WATCH_EVENT_TYPE_DELETED, Name: name, Node: before}
			case !proto.Equal(before, after):
				resp = &labv1.WatchNodesResponse{Type: labv1.WatchEventType_WATCH_EVENT_TYPE_MODIFIED, Name: name, Node: after}
			default:
				continue
			}
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
		sent = cur
	}
}
