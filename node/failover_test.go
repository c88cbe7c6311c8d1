package node

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/labnet-dev/labnet/node/cluster"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func failoverStore(t *testing.T, hosts ...*labv1.Host) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{Origin: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, err = st.Update(func(tx *store.Tx) error {
		for _, h := range hosts {
			if err := lab.PutHost(tx, h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func testFailover(st *store.Store, after time.Duration, failback bool) *failover {
	return &failover{st: st, self: "a", after: after, failback: failback, log: slog.New(slog.DiscardHandler)}
}

// plan decides on st's hosts as the failover would, and writes the moves.
func (f *failover) plan(t *testing.T, v view) []string {
	t.Helper()
	all, err := lab.ReadAll(f.st)
	if err != nil {
		t.Fatal(err)
	}
	var moved []string
	for _, m := range planMoves(all.Hosts, v, f.failback) {
		if err := f.move(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		moved = append(moved, m.String())
	}
	return moved
}

func placement(t *testing.T, st *store.Store) map[string]string {
	t.Helper()
	all, err := lab.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{}
	for _, h := range all.Hosts {
		nodes[lab.ID(h.Name)] = h.Node
	}
	return nodes
}

// TestReassign: the hosts of a gone node go to the least-loaded live
// nodes, first by name among equals, as apply places new hosts; a host
// that opts out stays.
func TestReassign(t *testing.T) {
	st := failoverStore(t,
		&labv1.Host{Name: lab.HostName("l", "a1"), Node: "a"},
		&labv1.Host{Name: lab.HostName("l", "g1"), Node: "gone"},
		&labv1.Host{Name: lab.HostName("l", "g2"), Node: "gone"},
		&labv1.Host{Name: lab.HostName("l", "g3"), Node: "gone"},
		&labv1.Host{Name: lab.HostName("l", "g4"), Node: "gone", NoFailover: true},
	)
	moved := testFailover(st, time.Minute, true).plan(t, view{alive: []string{"a", "b"}, expired: map[string]bool{"gone": true}})
	want := []string{
		"labs/l/hosts/g1 gone->b", // b holds none, a one
		"labs/l/hosts/g2 gone->a", // a tie: a comes first
		"labs/l/hosts/g3 gone->b",
	}
	if diff := cmp.Diff(want, moved); diff != "" {
		t.Errorf("moves (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"a1": "a", "g1": "b", "g2": "a", "g3": "b", "g4": "gone"}, placement(t, st)); diff != "" {
		t.Errorf("stored placement (-want +got):\n%s", diff)
	}
}

// TestFailoverPinnedAndFailback: a pinned host stays on its gone node; an
// unpinned one moves, and goes back home once its home node has been alive
// for the failover time, unless failback is off.
func TestFailoverPinnedAndFailback(t *testing.T) {
	for _, failback := range []bool{true, false} {
		st := failoverStore(t,
			&labv1.Host{Name: lab.HostName("l", "pin"), Node: "c", HomeNode: "c", Pinned: true},
			&labv1.Host{Name: lab.HostName("l", "free"), Node: "c", HomeNode: "c"},
		)
		f := testFailover(st, time.Minute, failback)
		t0 := time.Unix(1000, 0)
		members := func(c cluster.State) []cluster.Member {
			return []cluster.Member{{Name: "a", State: cluster.StateAlive}, {Name: "b", State: cluster.StateAlive}, {Name: "c", State: c}}
		}
		step := func(at time.Duration, c cluster.State) []string {
			v := f.observe(members(c), t0.Add(at))
			if !f.decides(v) {
				t.Fatalf("node a does not decide at %v", at)
			}
			return f.plan(t, v)
		}
		if got := step(0, cluster.StateDead); got != nil {
			t.Errorf("moves at once: %v, want none before the failover time", got)
		}
		if diff := cmp.Diff([]string{"labs/l/hosts/free c->a"}, step(time.Minute, cluster.StateDead)); diff != "" {
			t.Errorf("failover (-want +got):\n%s", diff)
		}
		if got := step(2*time.Minute, cluster.StateAlive); got != nil {
			t.Errorf("moves as c returns: %v, want none before it settles", got)
		}
		var want []string
		wantFree := "a"
		if failback {
			want = []string{"labs/l/hosts/free a->c"}
			wantFree = "c"
		}
		if diff := cmp.Diff(want, step(3*time.Minute, cluster.StateAlive)); diff != "" {
			t.Errorf("failback=%v: moves once c settled (-want +got):\n%s", failback, diff)
		}
		if diff := cmp.Diff(map[string]string{"pin": "c", "free": wantFree}, placement(t, st)); diff != "" {
			t.Errorf("failback=%v: placement (-want +got):\n%s", failback, diff)
		}
	}
}

// TestFailoverMoveKeepsLaterChanges: a move decided on one read and
// written after the host changed keeps the change (it rewrites only the
// node), and a host that moved meanwhile is left alone.
func TestFailoverMoveKeepsLaterChanges(t *testing.T) {
	h1 := &labv1.Host{Name: lab.HostName("l", "h1"), Node: "c", HomeNode: "c", Interfaces: []*labv1.Interface{{Name: "eth0", Network: "n"}}}
	h2 := &labv1.Host{Name: lab.HostName("l", "h2"), Node: "c", HomeNode: "c"}
	st := failoverStore(t, h1, h2)
	f := testFailover(st, time.Minute, true)
	writes := 0
	f.update = func(_ context.Context, fn func(*store.Tx) error) (uint64, error) {
		writes++
		_, err := st.Update(fn)
		return 0, err
	}
	all, err := lab.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	moves := planMoves(all.Hosts, view{alive: []string{"a"}, expired: map[string]bool{"c": true}}, true)
	if len(moves) != 2 {
		t.Fatalf("moves %v, want h1 and h2", moves)
	}
	// Meanwhile: an impairment on h1, and h2 placed elsewhere.
	impaired := &labv1.Impairment{LossPercent: 50}
	_, err = st.Update(func(tx *store.Tx) error {
		h1.Interfaces[0].Impair = impaired
		h2.Node = "b"
		if err := lab.PutHost(tx, h1); err != nil {
			return err
		}
		return lab.PutHost(tx, h2)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range moves {
		if err := f.move(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if writes != 2 {
		t.Errorf("%d writes through update, want 2 (one per move)", writes)
	}
	got, _, err := lab.GetHost(st, "l", "h1")
	if err != nil {
		t.Fatal(err)
	}
	want := &labv1.Host{Name: h1.Name, Node: "a", HomeNode: "c", Interfaces: []*labv1.Interface{{Name: "eth0", Network: "n", Impair: impaired}}}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("h1 after the move (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"h1": "a", "h2": "b"}, placement(t, st)); diff != "" {
		t.Errorf("placement (-want +got):\n%s", diff)
	}
}

// TestFailoverDecider: with isLeader, the leader decides whatever its name;
// without, the live node first by name.
func TestFailoverDecider(t *testing.T) {
	f := testFailover(nil, time.Minute, true)
	v := f.observe([]cluster.Member{{Name: "b", State: cluster.StateAlive}, {Name: "a", State: cluster.StateAlive}}, time.Unix(0, 0))
	if !f.decides(v) {
		t.Error("a, first by name, does not decide without isLeader")
	}
	f.self = "b"
	if f.decides(v) {
		t.Error("b decides without isLeader")
	}
	leader := false
	f.isLeader = func() bool { return leader }
	if f.decides(v) {
		t.Error("b decides while not the leader")
	}
	leader = true
	if !f.decides(v) {
		t.Error("b, the leader, does not decide")
	}
}

// TestFailoverRemovedNode: the hosts of a removed node (labctl node
// remove) move at once, although gossip still shows it alive, pinned ones
// too (the node can never run them again: issue 14's "fails its hosts
// over"), and none goes back to it.
func TestFailoverRemovedNode(t *testing.T) {
	st := failoverStore(t,
		&labv1.Host{Name: lab.HostName("l", "pin"), Node: "c", HomeNode: "c", Pinned: true},
		&labv1.Host{Name: lab.HostName("l", "free"), Node: "c", HomeNode: "c"},
	)
	if _, err := st.Update(func(tx *store.Tx) error {
		return lab.PutNodeIdentity(tx, lab.NodeIdentity{Name: "c", Kind: "member", Removed: true})
	}); err != nil {
		t.Fatal(err)
	}
	f := testFailover(st, time.Minute, true)
	t0 := time.Unix(1000, 0)
	members := []cluster.Member{{Name: "a", State: cluster.StateAlive}, {Name: "b", State: cluster.StateAlive}, {Name: "c", State: cluster.StateAlive}}
	v := f.observe(members, t0).withoutRemoved(lab.ListNodeIdentities(st))
	if diff := cmp.Diff([]string{"labs/l/hosts/free c->a", "labs/l/hosts/pin c->b"}, f.plan(t, v)); diff != "" {
		t.Errorf("moves off a removed node (-want +got):\n%s", diff)
	}
	v = f.observe(members, t0.Add(3*time.Minute)).withoutRemoved(lab.ListNodeIdentities(st))
	if got := f.plan(t, v); got != nil {
		t.Errorf("moves once the removed node has been alive for long: %v, want none (no failback to it)", got)
	}
	if diff := cmp.Diff(map[string]string{"pin": "b", "free": "a"}, placement(t, st)); diff != "" {
		t.Errorf("placement (-want +got):\n%s", diff)
	}
}

// TestPinnedHostLeavesRemovedNode: a pinned host stays on a node that is
// merely gone, moves off one that was removed (it can never run there
// again), as does one that opts out of failover, and both go back home
// once a node of that name, enrolled again, has settled; a pinned host
// at home on a live node never moves.
func TestPinnedHostLeavesRemovedNode(t *testing.T) {
	pinned := func(name, node, home string) *labv1.Host {
		return &labv1.Host{Name: lab.HostName("l", name), Node: node, HomeNode: home, Pinned: true}
	}
	hosts := []*labv1.Host{pinned("a1", "alice", "alice"), pinned("b1", "bob", "bob"), {Name: lab.HostName("l", "a2"), Node: "alice", HomeNode: "alice", NoFailover: true}}
	if m := planMoves(hosts, view{alive: []string{"bob", "teacher"}, expired: map[string]bool{"alice": true}}, true); len(m) != 0 {
		t.Errorf("moves off a gone node: %v; want none (pinned)", m)
	}
	v := view{alive: []string{"bob", "teacher"}, expired: map[string]bool{}, settled: map[string]bool{}}
	v = v.withoutRemoved([]lab.NodeIdentity{{Name: "alice", Removed: true}, {Name: "bob"}})
	m := planMoves(hosts, v, true)
	if len(m) != 2 || m[0].host != lab.HostName("l", "a1") || m[1].host != lab.HostName("l", "a2") || m[0].from != "alice" || m[0].to == "alice" || m[1].to == "alice" || m[0].back {
		t.Fatalf("moves off a removed node: %v; want a1 and a2 (no_failover) to live nodes", m)
	}
	moved := pinned("a1", m[0].to, "alice")
	optOut := &labv1.Host{Name: lab.HostName("l", "a2"), Node: m[1].to, HomeNode: "alice", NoFailover: true}
	back := planMoves([]*labv1.Host{moved, hosts[1], optOut}, view{alive: []string{"alice", "bob", "teacher"}, expired: map[string]bool{}, settled: map[string]bool{"alice": true, "bob": true}}, true)
	if len(back) != 2 || back[0].to != "alice" || !back[0].back || back[1].to != "alice" {
		t.Errorf("moves once alice is enrolled again and settled: %v; want a1 and a2 back home", back)
	}
}
