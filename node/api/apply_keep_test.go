package api_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// wantActions checks every change of resp against want (UNCHANGED for the
// names want leaves out).
func wantActions(t *testing.T, resp *labv1.ApplyResponse, want map[string]labv1.ChangeAction) {
	t.Helper()
	for _, c := range resp.Changes {
		w, ok := want[c.Name]
		if !ok {
			w = unchanged
		}
		if c.Action != w {
			t.Errorf("%s: %v, want %v", c.Name, c.Action, w)
		}
	}
}

// TestApplyKeepsImpairmentsSetSince: re-applying a topology that sets no
// impairment on an interface keeps the one `impair` set since, and writes
// nothing.
func TestApplyKeepsImpairmentsSetSince(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	im := &labv1.Impairment{LossPercent: 10, Delay: ms(20)}
	if _, err := e.lab.SetImpairment(context.Background(), &labv1.SetImpairmentRequest{Host: "labs/demo/hosts/r1", Interface: "eth1", Impair: im}); err != nil {
		t.Fatalf("SetImpairment: %v", err)
	}
	before := e.snapshot()
	wantActions(t, e.apply(t, demo()), nil)
	e.unchanged(t, before)
	if got := e.host(t, "labs/demo/hosts/r1").Interfaces[1].Impair; !proto.Equal(got, im) {
		t.Errorf("r1:eth1 impairment after re-apply = %v, want %v", got, im)
	}

	// A change elsewhere in the host keeps it too.
	topo := demo()
	topo.Hosts[0].Routes = []*labv1.Route{{To: "10.9.0.0/16", Via: "10.0.2.9"}}
	wantActions(t, e.apply(t, topo), map[string]labv1.ChangeAction{"labs/demo/hosts/r1": configured})
	if got := e.host(t, "labs/demo/hosts/r1").Interfaces[1].Impair; !proto.Equal(got, im) {
		t.Errorf("r1:eth1 impairment after a changed re-apply = %v, want %v", got, im)
	}
}

// TestApplyFileImpairmentWins: an impairment the topology sets replaces the
// one set since; an empty one (API only: a file cannot say it) clears it.
func TestApplyFileImpairmentWins(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	if _, err := e.lab.SetImpairment(context.Background(), &labv1.SetImpairmentRequest{Host: "labs/demo/hosts/h1", Interface: "eth0", Impair: &labv1.Impairment{LossPercent: 10}}); err != nil {
		t.Fatalf("SetImpairment: %v", err)
	}
	file := &labv1.Impairment{Delay: ms(50)}
	wantActions(t, e.apply(t, withImpair(demo(), 1, 0, file)), map[string]labv1.ChangeAction{"labs/demo/hosts/h1": configured})
	if got := e.host(t, "labs/demo/hosts/h1").Interfaces[0].Impair; !proto.Equal(got, file) {
		t.Errorf("h1:eth0 impairment = %v, want the file's %v", got, file)
	}
	wantActions(t, e.apply(t, withImpair(demo(), 1, 0, &labv1.Impairment{})), map[string]labv1.ChangeAction{"labs/demo/hosts/h1": configured})
	if got := e.host(t, "labs/demo/hosts/h1").Interfaces[0].Impair; got != nil {
		t.Errorf("h1:eth0 impairment = %v, want none after an empty one", got)
	}
}

// TestApplyPlacementHome: a host the topology places is pinned there; one
// it does not is placed and that node is its home.
func TestApplyPlacementHome(t *testing.T) {
	e := newEnv(t, false)
	topo := demo()
	topo.Hosts[0].Node = "n7"
	e.apply(t, topo)
	for name, want := range map[string]*labv1.Host{
		"labs/demo/hosts/r1": {Node: "n7", HomeNode: "n7", Pinned: true},
		"labs/demo/hosts/h1": {Node: testNode, HomeNode: testNode},
	} {
		h := e.host(t, name)
		got := &labv1.Host{Node: h.Node, HomeNode: h.HomeNode, Pinned: h.Pinned}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("%s placement (-want +got):\n%s", name, diff)
		}
	}
}

// TestApplyKeepsFailedOverNode: re-applying keeps the node a host failed
// over to (and its home), unless the topology pins it elsewhere.
func TestApplyKeepsFailedOverNode(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	// Failover moved h1 to n2.
	if _, err := e.store.Update(func(tx *store.Tx) error {
		_, err := lab.MoveHost(tx, "labs/demo/hosts/h1", testNode, "n2")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	before := e.snapshot()
	wantActions(t, e.apply(t, demo()), nil)
	e.unchanged(t, before)
	h1 := e.host(t, "labs/demo/hosts/h1")
	if h1.Node != "n2" || h1.HomeNode != testNode || h1.Pinned {
		t.Errorf("h1 after re-apply: node %q home %q pinned %v; want n2, home %s, not pinned", h1.Node, h1.HomeNode, h1.Pinned, testNode)
	}

	topo := demo()
	topo.Hosts[1].Node = "n3"
	wantActions(t, e.apply(t, topo), map[string]labv1.ChangeAction{"labs/demo/hosts/h1": configured})
	h1 = e.host(t, "labs/demo/hosts/h1")
	if h1.Node != "n3" || h1.HomeNode != "n3" || !h1.Pinned {
		t.Errorf("h1 pinned by the topology: node %q home %q pinned %v; want n3, home n3, pinned", h1.Node, h1.HomeNode, h1.Pinned)
	}
}

// TestUpdateHostNodePins: UpdateHost naming a node pins the host there (so
// failback does not take it back to where apply placed it); naming none
// keeps the placement.
func TestUpdateHostNodePins(t *testing.T) {
	e := newEnv(t, false)
	e.apply(t, demo())
	ctx := context.Background()
	if _, err := e.lab.UpdateHost(ctx, &labv1.UpdateHostRequest{Host: &labv1.Host{Name: "labs/demo/hosts/h1"}, UpdateMask: mask("node")}); err != nil {
		t.Fatalf("UpdateHost: %v", err)
	}
	if h1 := e.host(t, "labs/demo/hosts/h1"); h1.Node != testNode || h1.HomeNode != testNode || h1.Pinned {
		t.Errorf("h1 after UpdateHost without a node: node %q home %q pinned %v; want %s, home %s, not pinned", h1.Node, h1.HomeNode, h1.Pinned, testNode, testNode)
	}
	if _, err := e.lab.UpdateHost(ctx, &labv1.UpdateHostRequest{Host: &labv1.Host{Name: "labs/demo/hosts/h1", Node: "n2"}, UpdateMask: mask("node")}); err != nil {
		t.Fatalf("UpdateHost: %v", err)
	}
	if h1 := e.host(t, "labs/demo/hosts/h1"); h1.Node != "n2" || h1.HomeNode != "n2" || !h1.Pinned {
		t.Errorf("h1 after UpdateHost to n2: node %q home %q pinned %v; want n2, home n2, pinned", h1.Node, h1.HomeNode, h1.Pinned)
	}
}
