package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// identityMembers is the membership of fakeMembers with each node's
// identity record from the store laid over it (kind, owner, removed), as
// the daemon's clusterNodes reports the nodes.
type identityMembers struct {
	*fakeMembers
	st *store.Store
}

func (m identityMembers) Nodes() []*labv1.Node {
	ids := map[string]lab.NodeIdentity{}
	for _, id := range lab.ListNodeIdentities(m.st) {
		ids[id.Name] = id
	}
	nodes := m.fakeMembers.Nodes()
	for _, n := range nodes {
		if id, ok := ids[lab.NodeID(n.GetName())]; ok {
			n.Kind, n.Owner, n.Removed = id.Kind, id.Owner, id.Removed
		}
	}
	return nodes
}

// TestWatchNodesIdentity: get nodes --watch shows an enrolment (a new
// identity record: KIND and OWNER) and a removal (labctl node remove:
// STATE removed) as they are written, though gossip signals nothing: the
// identity records are in the store the watch follows.
func TestWatchNodesIdentity(t *testing.T) {
	fm := newFakeMembers(node(testNode, alive, control, true), node("alice-laptop", alive, member, false))
	e := newEnv(t, false, func(c *api.Config) { c.Members = identityMembers{fm, c.Store} })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := e.nodes.WatchNodes(ctx, &labv1.WatchNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantNodeEvents(t, recvNodes(t, stream, 3), "ADDED nodes/"+testNode, "ADDED nodes/alice-laptop", "SYNCED ")

	// Enrolment writes the node's identity record.
	if _, err := e.store.Update(func(tx *store.Tx) error {
		return lab.PutNodeIdentity(tx, lab.NodeIdentity{Name: "alice-laptop", Kind: "member", Owner: "alice"})
	}); err != nil {
		t.Fatal(err)
	}
	got := recvNodes(t, stream, 1)
	wantNodeEvents(t, got, "MODIFIED nodes/alice-laptop")
	if n := got[0].GetNode(); n.GetKind() != "member" || n.GetOwner() != "alice" || n.GetRemoved() {
		t.Errorf("after enrolment: %v", n)
	}

	// labctl node remove alice-laptop.
	if _, err := e.nodes.RemoveNode(ctx, &labv1.RemoveNodeRequest{Name: "nodes/alice-laptop"}); err != nil {
		t.Fatal(err)
	}
	got = recvNodes(t, stream, 1)
	wantNodeEvents(t, got, "MODIFIED nodes/alice-laptop")
	if n := got[0].GetNode(); !n.GetRemoved() || n.GetKind() != "member" || n.GetOwner() != "alice" || n.GetState() != alive {
		t.Errorf("after removal: %v", n)
	}

	// Gossip then takes it out: one more event, still removed.
	fm.set(node(testNode, alive, control, true), node("alice-laptop", dead, member, false))
	got = recvNodes(t, stream, 1)
	wantNodeEvents(t, got, "MODIFIED nodes/alice-laptop")
	if n := got[0].GetNode(); !n.GetRemoved() || n.GetState() != dead {
		t.Errorf("after gossip took it out: %v", n)
	}
}
