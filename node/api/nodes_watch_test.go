package api_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/api"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// fakeMembers is a membership the test changes, with watchers signalled.
type fakeMembers struct {
	mu       sync.Mutex
	nodes    []*labv1.Node
	watchers map[chan struct{}]bool
}

func newFakeMembers(nodes ...*labv1.Node) *fakeMembers {
	return &fakeMembers{nodes: nodes, watchers: map[chan struct{}]bool{}}
}

func (f *fakeMembers) Nodes() []*labv1.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*labv1.Node, len(f.nodes))
	for i, n := range f.nodes {
		out[i] = proto.Clone(n).(*labv1.Node)
	}
	return out
}

func (f *fakeMembers) Watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watchers[ch] = true
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.watchers, ch)
	}
}

// set replaces the nodes and signals the watchers.
func (f *fakeMembers) set(nodes ...*labv1.Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes = nodes
	for ch := range f.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// close ends every watch, as a shutdown does.
func (f *fakeMembers) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.watchers {
		delete(f.watchers, ch)
		close(ch)
	}
}

func node(name string, state labv1.NodeState, role labv1.NodeRole, leader bool) *labv1.Node {
	return &labv1.Node{Name: "nodes/" + name, State: state, Role: role, Leader: leader}
}

const (
	alive   = labv1.NodeState_NODE_STATE_ALIVE
	dead    = labv1.NodeState_NODE_STATE_DEAD
	control = labv1.NodeRole_NODE_ROLE_CONTROL
	member  = labv1.NodeRole_NODE_ROLE_MEMBER
)

func nodeEvent(r *labv1.WatchNodesResponse) string {
	return strings.TrimPrefix(r.GetType().String(), "WATCH_EVENT_TYPE_") + " " + r.GetName()
}

func recvNodes(t *testing.T, stream labv1.NodeService_WatchNodesClient, n int) []*labv1.WatchNodesResponse {
	t.Helper()
	var out []*labv1.WatchNodesResponse
	for range n {
		r, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv after %d events: %v", len(out), err)
		}
		out = append(out, r)
	}
	return out
}

func wantNodeEvents(t *testing.T, got []*labv1.WatchNodesResponse, want ...string) {
	t.Helper()
	var ev []string
	for _, r := range got {
		ev = append(ev, nodeEvent(r))
	}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

func TestWatchNodes(t *testing.T) {
	fm := newFakeMembers(node("b", alive, member, false), node("a", alive, control, true))
	e := newEnv(t, false, func(c *api.Config) { c.Members = fm })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := e.nodes.WatchNodes(ctx, &labv1.WatchNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := recvNodes(t, stream, 3)
	wantNodeEvents(t, got, "ADDED nodes/b", "ADDED nodes/a", "SYNCED ")
	if !got[1].GetNode().GetLeader() || got[1].GetNode().GetRole() != control {
		t.Errorf("node a: %v", got[1].GetNode())
	}

	// b dies, c arrives, a is unchanged: one event each for b and c.
	fm.set(node("a", alive, control, true), node("b", dead, member, false), node("c", alive, member, false))
	got = recvNodes(t, stream, 2)
	wantNodeEvents(t, got, "MODIFIED nodes/b", "ADDED nodes/c")
	if got[0].GetNode().GetState() != dead {
		t.Errorf("b: %v", got[0].GetNode())
	}
	// Leadership moves to c (promoted), and b is forgotten.
	fm.set(node("a", alive, control, false), node("c", alive, control, true))
	got = recvNodes(t, stream, 3)
	wantNodeEvents(t, got, "MODIFIED nodes/a", "DELETED nodes/b", "MODIFIED nodes/c")
	if got[1].GetNode().GetState() != dead {
		t.Errorf("DELETED carries the last state sent: %v", got[1].GetNode())
	}
	if !got[2].GetNode().GetLeader() {
		t.Errorf("c: %v", got[2].GetNode())
	}

	// Shutdown ends the stream with UNAVAILABLE.
	fm.close()
	_, err = stream.Recv()
	if status.Code(err) != codes.Unavailable {
		t.Errorf("after shutdown: %v, want Unavailable", err)
	}
}

// TestWatchNodesHostCount: a store change (which moves host counts) makes
// the nodes be read again, without a membership signal.
func TestWatchNodesHostCount(t *testing.T) {
	fm := newFakeMembers(node(testNode, alive, control, true))
	e := newEnv(t, false, func(c *api.Config) { c.Members = fm })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := e.nodes.WatchNodes(ctx, &labv1.WatchNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantNodeEvents(t, recvNodes(t, stream, 2), "ADDED nodes/"+testNode, "SYNCED ")
	counted := node(testNode, alive, control, true)
	counted.HostCount = 3
	fm.mu.Lock()
	fm.nodes = []*labv1.Node{counted}
	fm.mu.Unlock()
	e.apply(t, demo())
	got := recvNodes(t, stream, 1)
	wantNodeEvents(t, got, "MODIFIED nodes/"+testNode)
	if got[0].GetNode().GetHostCount() != 3 {
		t.Errorf("node: %v", got[0].GetNode())
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Errorf("after cancel: %v, want Canceled", err)
	}
}

// fakeMembership records the calls.
type fakeMembership struct {
	calls []string
	err   error
}

func (f *fakeMembership) Promote(ctx context.Context, node string) error {
	f.calls = append(f.calls, "promote "+node)
	return f.err
}

func (f *fakeMembership) Demote(ctx context.Context, node string) error {
	f.calls = append(f.calls, "demote "+node)
	return f.err
}

func TestPromoteDemote(t *testing.T) {
	fm := newFakeMembers(node("a", alive, control, true), node("b", alive, member, false))
	ms := &fakeMembership{}
	e := newEnv(t, false, func(c *api.Config) { c.Members = fm; c.Membership = ms })
	ctx := t.Context()
	resp, err := e.nodes.PromoteNode(ctx, &labv1.PromoteNodeRequest{Name: "nodes/b"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetNode().GetName() != "nodes/b" {
		t.Errorf("PromoteNode: %v", resp)
	}
	if _, err := e.nodes.DemoteNode(ctx, &labv1.DemoteNodeRequest{Name: "nodes/a"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"promote b", "demote a"}, ms.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		name string
		err  error
		want codes.Code
	}{
		{"nodes/zz", nil, codes.NotFound},
		{"", nil, codes.InvalidArgument},
		{"nodes/b", errors.New("no quorum"), codes.FailedPrecondition},
		{"nodes/b", status.Error(codes.Unavailable, "no leader"), codes.Unavailable},
	} {
		ms.err = tc.err
		_, err := e.nodes.PromoteNode(ctx, &labv1.PromoteNodeRequest{Name: tc.name})
		if status.Code(err) != tc.want {
			t.Errorf("PromoteNode(%q) with %v: %v, want %v", tc.name, tc.err, err, tc.want)
		}
	}
}

func TestPromoteUnimplemented(t *testing.T) {
	e := newEnv(t, false)
	_, err := e.nodes.PromoteNode(t.Context(), &labv1.PromoteNodeRequest{Name: "nodes/" + testNode})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "this node cannot change the control plane") {
		t.Errorf("PromoteNode without Membership: %v", err)
	}
	_, err = e.nodes.DemoteNode(t.Context(), &labv1.DemoteNodeRequest{Name: "nodes/" + testNode})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("DemoteNode without Membership: %v", err)
	}
}
