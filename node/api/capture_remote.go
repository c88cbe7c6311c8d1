package api

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// captureStartTimeout is how long a peer may take to start its part of a
// capture (to answer with its started message) before it counts as
// unreachable.
const captureStartTimeout = 5 * time.Second

// remoteCapture is one peer's part of a capture: its stream, started, or
// why it could not be.
type remoteCapture struct {
	node string
	list []captureIface
	rs   labv1.CaptureService_CaptureClient
	err  error  // status error: the peer could not be reached or refused
	away string // the node is known gone (membership): why, without dialing
}

// explicit reports whether the caller named one of the interfaces (a host
// or host:iface target) rather than only a network: then a failure to
// reach the node fails the capture, as for any live call.
func (r *remoteCapture) explicit() bool {
	for _, ci := range r.list {
		if !ci.viaNet {
			return true
		}
	}
	return false
}

// startRemotes starts the peers' parts of a capture at once, each up to
// its started message, and returns them in byNode's node order.
func (s *Server) startRemotes(ctx context.Context, req *labv1.CaptureRequest, byNode map[string][]captureIface) []*remoteCapture {
	gone := s.awayNodes()
	var out []*remoteCapture
	for _, node := range lab.SortedKeys(byNode) {
		if node == s.cfg.Node {
			continue
		}
		r := &remoteCapture{node: node, list: byNode[node]}
		if why, ok := gone[node]; ok && !r.explicit() {
			r.away = why
		}
		out = append(out, r)
	}
	var wg sync.WaitGroup
	for _, r := range out {
		if r.away != "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.rs, r.err = s.startRemote(ctx, req, r.node, r.list)
		}()
	}
	wg.Wait()
	return out
}

// startRemote opens node's capture of list and waits for its started
// message (at most captureStartTimeout).
func (s *Server) startRemote(ctx context.Context, req *labv1.CaptureRequest, node string, list []captureIface) (labv1.CaptureService_CaptureClient, error) {
	conn, fctx, via, err := s.route(ctx, node)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		if via != node {
			return nil, status.Errorf(codes.Unavailable, "node %s runs %s; control node %s, which passes calls on to it, cannot be reached: %v", node, list[0].host, via, err)
		}
		return nil, status.Errorf(codes.Unavailable, "node %s, which runs %s, cannot be reached: %v", node, list[0].host, err)
	}
	sub := &labv1.CaptureRequest{Lab: req.Lab, Protocol: req.Protocol, Port: req.Port, Address: req.Address, Snaplen: req.Snaplen}
	for _, ci := range list {
		sub.Targets = append(sub.Targets, ci.host+":"+ci.nic)
	}
	// The stream lives as long as ctx; cancel ends it early when the peer
	// does not start in time.
	sctx, cancel := context.WithCancel(fctx)
	rs, err := labv1.NewCaptureServiceClient(conn).Capture(sctx, sub)
	if err != nil {
		cancel()
		return nil, err
	}
	first := make(chan error, 1)
	go func() {
		_, err := rs.Recv() // the peer's started message
		first <- err
	}()
	t := time.NewTimer(captureStartTimeout)
	defer t.Stop()
	select {
	case err = <-first:
	case <-t.C:
		cancel()
		<-first
		return nil, status.Errorf(codes.Unavailable, "node %s cannot be reached from here: no answer within %v", node, captureStartTimeout)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	context.AfterFunc(ctx, cancel) // ctx's end ends the stream; cancel frees sctx
	return rs, nil
}

// awayNodes are the nodes membership reports dead or left, with that
// state as the reason.
func (s *Server) awayNodes() map[string]string {
	out := map[string]string{}
	if s.cfg.Members == nil {
		return out
	}
	for _, n := range s.cfg.Members.Nodes() {
		switch n.State {
		case labv1.NodeState_NODE_STATE_DEAD:
			out[lab.NodeID(n.Name)] = "node " + lab.NodeID(n.Name) + " is away (dead)"
		case labv1.NodeState_NODE_STATE_LEFT:
			out[lab.NodeID(n.Name)] = "node " + lab.NodeID(n.Name) + " is away (left the cluster)"
		}
	}
	return out
}

// unreachable lists r's interfaces as not captured, with the reason.
func (r *remoteCapture) unreachable() []*labv1.UnreachableInterface {
	reason := r.away
	if reason == "" {
		msg := status.Convert(r.err).Message()
		if strings.HasPrefix(msg, "node "+r.node) {
			_, msg, _ = strings.Cut(msg, "cannot be reached") // said below
			msg = strings.TrimPrefix(strings.TrimPrefix(msg, " from here"), ": ")
		}
		reason = fmt.Sprintf("node %s unreachable: %s", r.node, msg)
	}
	var out []*labv1.UnreachableInterface
	for _, ci := range r.list {
		out = append(out, &labv1.UnreachableInterface{Name: ci.info.Name, Node: r.node, Reason: reason})
	}
	return out
}

// describeUnreachable is "h3:eth0 (node c unreachable: ...), ...".
func describeUnreachable(us []*labv1.UnreachableInterface) string {
	parts := make([]string, len(us))
	for i, u := range us {
		parts[i] = u.Name + " (" + u.Reason + ")"
	}
	return strings.Join(parts, ", ")
}
