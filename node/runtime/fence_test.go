package runtime

import (
	"sync/atomic"
	"testing"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/lab"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// TestReconcileFenced: while the node is fenced (it cannot confirm where
// the leader places its hosts), its movable hosts stop and its pinned and
// no_failover ones keep their stacks; unfenced, the movable ones start
// again if the state still places them here.
func TestReconcileFenced(t *testing.T) {
	st := openStore(t)
	var fenced atomic.Bool
	rt := New(Config{Node: "n1", Store: st, Fabric: fabric.New(), Fenced: fenced.Load})
	defer rt.stopAll()
	movable := lanHost("m", "n1", "10.0.0.1/24")
	pinned := lanHost("p", "n1", "10.0.0.2/24")
	pinned.Pinned = true
	stay := lanHost("s", "n1", "10.0.0.3/24")
	stay.NoFailover = true
	write(t, st, &labv1.Network{Name: lab.NetworkName("l", "lan"), Ipv4: "10.0.0.0/24", Vni: 5}, movable, pinned, stay)
	rt.Reconcile()
	if rt.Count() != 3 {
		t.Fatalf("%d hosts run, want 3", rt.Count())
	}
	p, s := running(t, rt, pinned.Name), running(t, rt, stay.Name)

	fenced.Store(true)
	rt.Reconcile()
	if _, ok := rt.Host(movable.Name); ok {
		t.Error("fenced: the movable host still runs")
	}
	if h := running(t, rt, pinned.Name); h != p {
		t.Error("fenced: the pinned host was restarted")
	}
	if h := running(t, rt, stay.Name); h != s {
		t.Error("fenced: the no_failover host was restarted")
	}

	fenced.Store(false)
	rt.Reconcile()
	running(t, rt, movable.Name)
	if rt.Count() != 3 {
		t.Errorf("unfenced: %d hosts run, want 3", rt.Count())
	}
}

// TestReconcileRemoved: a node an admin removed runs no host at all,
// pinned and no_failover ones included.
func TestReconcileRemoved(t *testing.T) {
	st := openStore(t)
	var removed atomic.Bool
	rt := New(Config{Node: "n1", Store: st, Fabric: fabric.New(), Removed: removed.Load})
	defer rt.stopAll()
	pinned := lanHost("p", "n1", "10.0.0.2/24")
	pinned.Pinned = true
	stay := lanHost("s", "n1", "10.0.0.3/24")
	stay.NoFailover = true
	write(t, st, &labv1.Network{Name: lab.NetworkName("l", "lan"), Ipv4: "10.0.0.0/24", Vni: 5}, lanHost("m", "n1", "10.0.0.1/24"), pinned, stay)
	rt.Reconcile()
	if rt.Count() != 3 {
		t.Fatalf("%d hosts run, want 3", rt.Count())
	}
	removed.Store(true)
	rt.Reconcile()
	if rt.Count() != 0 {
		t.Errorf("removed: %d hosts run, want none", rt.Count())
	}
}
