package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestSingleNode(t *testing.T) {
	c := newCluster(t)
	n := c.add(nil)
	if l := c.leader(); l != n {
		t.Fatalf("leader %s, want %s", l.name, n.name)
	}
	if got := n.c.Leader(); got != n.name {
		t.Errorf("Leader() = %q, want %q", got, n.name)
	}
	want := map[string]string{}
	var last uint64
	for i := range 20 {
		k, v := fmt.Sprintf("k%d", i%7), fmt.Sprintf("v%d", i)
		rev := c.write(k, v)
		if rev <= last {
			t.Fatalf("write %d: revision %d after %d", i, rev, last)
		}
		last = rev
		want[k] = v
	}
	if !equal(n.state.values(), want) {
		t.Fatalf("state %v, want %v", n.state.values(), want)
	}
	if err := n.c.ReadBarrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := n.c.Servers()
	if len(s) != 1 || s[0].Name != n.name || s[0].Addr != n.addr || !s[0].Voter || !s[0].Leader {
		t.Errorf("Servers() = %+v", s)
	}
	if st := n.c.Stats(); st.Writes != 20 || st.P50 <= 0 || st.P99 < st.P50 {
		t.Errorf("Stats() = %+v", st)
	}
}

// TestConflict: a write proposed on a stale read is refused and changes
// nothing; one that read the latest revision applies.
func TestConflict(t *testing.T) {
	c := newCluster(t)
	n := c.add(nil)
	c.leader()
	c.write("impair", "delay 100ms")
	_, readRev := n.state.read("impair") // both writers read this
	if _, err := n.c.update(context.Background(), put("impair", "clear", readRev)); err != nil {
		t.Fatal(err)
	}
	_, err := n.c.update(context.Background(), put("impair", "loss 5%", readRev))
	if !errors.Is(err, errFakeConflict) {
		t.Fatalf("stale write: %v, want the state's conflict", err)
	}
	if v, _ := n.state.read("impair"); v != "clear" {
		t.Errorf("impair = %q after a refused write, want clear", v)
	}
	_, rev := n.state.read("impair")
	if _, err := n.c.update(context.Background(), put("impair", "loss 5%", rev)); err != nil {
		t.Errorf("write on a fresh read: %v", err)
	}
}

func TestUpdateContextDone(t *testing.T) {
	c := newCluster(t)
	n := c.add(nil)
	c.leader()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.c.writeMu.Lock()
	_, err := n.c.update(ctx, blind("a", "b"))
	n.c.writeMu.Unlock()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("update with a done ctx: %v", err)
	}
	c.write("a", "c") // the lock was handed back
}

// TestThreeNodes: followers refuse writes naming the leader; killing the
// leader elects another and writes continue; the old leader restarts from
// its files and catches up; membership changes.
func TestThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node raft cluster")
	}
	c := newCluster(t)
	n1 := c.add(nil)
	c.leader()
	n2, n3 := c.add(nil), c.add(nil)
	// Not in the configuration yet: they know no leader.
	if _, err := n2.c.update(context.Background(), blind("x", "y")); !isNotLeader(err, "") {
		t.Fatalf("write on a node not yet added: %v", err)
	}
	c.join(n2)
	c.join(n3)
	want := map[string]string{}
	for i := range 50 {
		k := fmt.Sprintf("k%d", i)
		c.write(k, "v")
		want[k] = "v"
	}
	c.converged(want)

	l := c.leader()
	for _, n := range c.nodes {
		if n == l {
			continue
		}
		waitFor(t, n.name+" to know the leader", func() bool { return n.c.Leader() == l.name })
		if _, err := n.c.update(context.Background(), blind("x", "y")); !isNotLeader(err, l.name) {
			t.Errorf("%s: write on a follower: %v, want NotLeaderError naming %s", n.name, err, l.name)
		}
		var nl *NotLeaderError
		if _, err := n.c.update(context.Background(), blind("x", "y")); !errors.As(err, &nl) || len(nl.ControlNodes()) != 3 || !slices.IsSorted(nl.ControlNodes()) {
			t.Errorf("%s: a follower's refusal names the control nodes %v, want the three, sorted", n.name, err)
		}
		if err := n.c.ReadBarrier(context.Background()); !isNotLeader(err, l.name) {
			t.Errorf("%s: read barrier on a follower: %v", n.name, err)
		}
	}
	if s := l.c.Servers(); len(s) != 3 {
		t.Fatalf("Servers() = %+v, want 3", s)
	}

	// Kill the leader: the others elect a new one; writes continue.
	changed := n1.c.LeaderChanged()
	c.stop(l)
	nl := c.leader()
	if nl == l {
		t.Fatal("stopped node still leads")
	}
	for i := range 20 {
		k := fmt.Sprintf("after%d", i)
		c.write(k, "v")
		want[k] = "v"
	}
	c.converged(want)
	if l != n1 {
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Error("LeaderChanged not signalled on n1")
		}
	}

	// The old leader restarts from its files (fresh in-memory state, no
	// bootstrap) and gets every acknowledged write back.
	c.start(l, false)
	c.converged(want)

	// Remove a follower; the other two still commit.
	nl = c.leader()
	var gone *node
	for _, n := range c.nodes {
		if n != nl {
			gone = n
			break
		}
	}
	if err := nl.c.RemoveServer(context.Background(), gone.name); err != nil {
		t.Fatal(err)
	}
	c.stop(gone)
	if s := c.leader().c.Servers(); len(s) != 2 {
		t.Errorf("Servers() after removal = %+v", s)
	}
	c.write("last", "v")
	want["last"] = "v"
	c.converged(want)
}

func isNotLeader(err error, leader string) bool {
	var nl *NotLeaderError
	return errors.As(err, &nl) && nl.Leader == leader && nl.NotLeader() == leader
}

// TestRestartKeepsWrites: every acknowledged write is back after a restart
// from disk, with and without a snapshot in between.
func TestRestartKeepsWrites(t *testing.T) {
	c := newCluster(t)
	n := c.add(nil)
	c.leader()
	want := map[string]string{}
	for i := range 100 {
		k := fmt.Sprintf("k%d", i%30)
		v := fmt.Sprintf("v%d", i)
		c.write(k, v)
		want[k] = v
	}
	c.stop(n)
	c.start(n, true) // bootstrap is ignored: state exists
	c.leader()
	c.converged(want)
	if err := n.c.ReadBarrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := n.c.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		k := fmt.Sprintf("post%d", i)
		c.write(k, "v")
		want[k] = "v"
	}
	c.stop(n)
	c.start(n, false)
	c.leader()
	c.converged(want)
	if n.state.AppliedIndex() == 0 {
		t.Error("nothing applied after restart")
	}
}

// TestSnapshotCatchUp: a node added after the leader compacted its log
// gets the state by snapshot (FSM Restore), then the log after it.
func TestSnapshotCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 2-node raft cluster")
	}
	c := newCluster(t)
	n1 := c.add(nil)
	c.leader()
	want := map[string]string{}
	for i := range 100 {
		k := fmt.Sprintf("k%d", i)
		c.write(k, "v")
		want[k] = "v"
	}
	if err := n1.c.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if first, _ := n1.c.logs.FirstIndex(); first <= 1 {
		t.Fatalf("log not compacted: first index %d", first)
	}
	n2 := c.add(nil)
	c.join(n2)
	c.write("after", "v")
	want["after"] = "v"
	c.converged(want)
}

// TestOtherCACannotJoin: a control node whose certificate is of another
// cluster CA is refused; the leader's AddVoter cannot reach it and its
// refused counters count.
func TestOtherCACannotJoin(t *testing.T) {
	c := newCluster(t)
	teacher, other := newTestCA(t), newTestCA(t)
	n1 := c.add(controlTLS(t, teacher, "n1", nil))
	c.leader()
	bad := c.add(controlTLS(t, other, "n2", nil))
	good := c.add(controlTLS(t, teacher, "n3", nil))
	c.join(good)
	c.write("k", "v")
	c.converged(map[string]string{"k": "v"}, n1, good)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// AddVoter commits the configuration (the two good nodes are a
	// quorum); the bad node never hears of it.
	n1.c.AddVoter(ctx, bad.name, bad.addr)
	c.write("k2", "v")
	time.Sleep(500 * time.Millisecond)
	if got := bad.state.values(); len(got) != 0 {
		t.Errorf("node of another CA got state %v", got)
	}
	waitFor(t, "refused connections counted", func() bool {
		return n1.c.RefusedConns() > 0 || bad.c.RefusedConns() > 0
	})
	if _, err := bad.c.update(context.Background(), blind("x", "y")); err == nil {
		t.Error("node of another CA accepted a write")
	}
}

func TestSnapshotEncoding(t *testing.T) {
	s := &snapshot{index: 42, rev: 9, recs: []Record{
		{Key: "a", Value: []byte("1"), Rev: 3},
		{Key: "b/c", Value: nil, Rev: 9},
		{Key: "", Value: bytes.Repeat([]byte{0xff}, 300), Rev: 1},
	}}
	b := encodeSnapshot(s)
	got, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.index != 42 || got.rev != 9 || len(got.recs) != 3 || got.recs[1].Key != "b/c" || len(got.recs[2].Value) != 300 {
		t.Fatalf("round trip: %+v", got)
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x10
		if _, err := decodeSnapshot(c); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("byte %d changed: %v", i, err)
		}
	}
	if _, err := decodeSnapshot(b[:len(b)-1]); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("truncated: %v", err)
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(encodeSnapshot(&snapshot{index: 1, rev: 2, recs: []Record{{Key: "k", Value: []byte("v"), Rev: 2}}}))
	f.Add(encodeSnapshot(&snapshot{}))
	f.Add([]byte{1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeSnapshot(s), b) {
			t.Errorf("decoded snapshot does not re-encode to its input")
		}
	})
}
