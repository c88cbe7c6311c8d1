package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/memberlist"

	"github.com/labnet-dev/labnet/node/store"
)

// testNode is one in-process labd's worth of cluster: a store in its own
// directory and a Cluster on 127.0.0.1.
type testNode struct {
	t    *testing.T
	name string
	dir  string
	key  []byte
	st   *store.Store
	c    *Cluster
	addr string // gossip address, fixed after the first start

	rejoin time.Duration // Config.RejoinInterval
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fastTimers makes failure detection and gossip quick on loopback.
func fastTimers(c *memberlist.Config) {
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.GossipInterval = 50 * time.Millisecond
	c.SuspicionMult = 2
	c.PushPullInterval = 2 * time.Second
	c.TCPTimeout = 500 * time.Millisecond
}

func newTestNode(t *testing.T, name string, key []byte) *testNode {
	t.Helper()
	return &testNode{t: t, name: name, dir: t.TempDir(), key: key, addr: "127.0.0.1:0"}
}

// start opens the node's store and starts its cluster, joining join.
func (n *testNode) start(join ...string) error {
	n.t.Helper()
	st, err := store.Open(filepath.Join(n.dir, "state.db"), store.Options{Origin: n.name})
	if err != nil {
		n.t.Fatal(err)
	}
	c, err := New(Config{
		Name:     n.name,
		BindAddr: n.addr,
		Join:     join,
		Store:    st,
		Meta:     NodeMeta{APIAddr: "127.0.0.1:77" + n.name[len(n.name)-1:], OverlayAddr: "127.0.0.1:60" + n.name[len(n.name)-1:], Version: "test"},
		Key:      n.key,
		Logger:   testLogger().With("node", n.name),
		Local:    true,
		Tune:     fastTimers,

		RejoinInterval: n.rejoin,
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.st, n.c = st, c
	n.t.Cleanup(n.stop)
	err = c.Start(context.Background())
	n.addr = c.LocalAddr()
	return err
}

func (n *testNode) mustStart(join ...string) *testNode {
	n.t.Helper()
	if err := n.start(join...); err != nil {
		n.t.Fatalf("%s: %v", n.name, err)
	}
	return n
}

// stop shuts the cluster down without leaving (a kill) and closes the store.
func (n *testNode) stop() {
	if n.c != nil {
		n.c.Shutdown()
	}
	if n.st != nil {
		n.st.Close()
	}
}

func (n *testNode) put(key, value string) {
	n.t.Helper()
	if _, err := n.st.Update(func(tx *store.Tx) error { tx.Put(key, []byte(value)); return nil }); err != nil {
		n.t.Fatal(err)
	}
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasValue(n *testNode, key, want string) error {
	r, ok := n.st.Get(key)
	if !ok {
		return fmt.Errorf("%s: %q missing", n.name, key)
	}
	if string(r.Value) != want {
		return fmt.Errorf("%s: %q = %q, want %q", n.name, key, r.Value, want)
	}
	return nil
}

func memberState(n *testNode, name string) (State, bool) {
	for _, m := range n.c.Members() {
		if m.Name == name {
			return m.State, true
		}
	}
	return 0, false
}

func wantState(n *testNode, name string, want State) func() error {
	return func() error {
		got, ok := memberState(n, name)
		if !ok {
			return fmt.Errorf("%s does not know %s", n.name, name)
		}
		if got != want {
			return fmt.Errorf("%s sees %s %v, want %v", n.name, name, got, want)
		}
		return nil
	}
}

// cluster3 starts nodes a, b and c, b and c joining a, and waits until each
// sees all three alive.
func cluster3(t *testing.T, key []byte) (a, b, c *testNode) {
	t.Helper()
	a = newTestNode(t, "node-a", key).mustStart()
	b = newTestNode(t, "node-b", key).mustStart(a.addr)
	c = newTestNode(t, "node-c", key).mustStart(a.addr)
	for _, n := range []*testNode{a, b, c} {
		for _, m := range []string{"node-a", "node-b", "node-c"} {
			eventually(t, 5*time.Second, "membership", wantState(n, m, StateAlive))
		}
	}
	return a, b, c
}

func TestMembersAndMeta(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	watch, unwatch := c.c.WatchMembers()
	defer unwatch()
	want := []Member{
		{Name: "node-a", State: StateAlive, Addr: a.addr, Meta: NodeMeta{APIAddr: "127.0.0.1:77a", OverlayAddr: "127.0.0.1:60a", Version: "test"}},
		{Name: "node-b", State: StateAlive, Addr: b.addr, Meta: NodeMeta{APIAddr: "127.0.0.1:77b", OverlayAddr: "127.0.0.1:60b", Version: "test"}},
		{Name: "node-c", State: StateAlive, Addr: c.addr, Meta: NodeMeta{APIAddr: "127.0.0.1:77c", OverlayAddr: "127.0.0.1:60c", Version: "test"}},
	}
	for _, n := range []*testNode{a, b, c} {
		if diff := cmp.Diff(want, n.c.Members()); diff != "" {
			t.Errorf("%s: Members() (-want +got):\n%s", n.name, diff)
		}
	}
	// A fourth node's arrival is signalled to watchers.
	newTestNode(t, "node-d", nil).mustStart(b.addr)
	select {
	case <-watch:
	case <-time.After(5 * time.Second):
		t.Fatal("no membership signal after node-d joined")
	}
	eventually(t, 5*time.Second, "node-d seen by c", wantState(c, "node-d", StateAlive))
}

func TestReplicatesWritesAndDeletes(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	a.put("labs/demo", "v1")
	for _, n := range []*testNode{b, c} {
		eventually(t, 5*time.Second, "write replicated", func() error { return hasValue(n, "labs/demo", "v1") })
	}
	// An update from another node, then a delete from a third.
	b.put("labs/demo", "v2")
	eventually(t, 5*time.Second, "update replicated", func() error { return hasValue(c, "labs/demo", "v2") })
	eventually(t, 5*time.Second, "update replicated", func() error { return hasValue(a, "labs/demo", "v2") })
	if _, err := c.st.Update(func(tx *store.Tx) error { tx.Delete("labs/demo"); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{a, b} {
		eventually(t, 5*time.Second, "tombstone replicated", func() error {
			if _, ok := n.st.Get("labs/demo"); ok {
				return fmt.Errorf("%s still has labs/demo", n.name)
			}
			return nil
		})
	}
	// The tombstone itself, with the same stamp, is in every replica.
	want := c.st.All()
	for _, n := range []*testNode{a, b} {
		if diff := cmp.Diff(want, n.st.All()); diff != "" {
			t.Errorf("%s replica (-want +got):\n%s", n.name, diff)
		}
	}
}

func TestLargeRecordReplicates(t *testing.T) {
	t.Parallel()
	a, _, c := cluster3(t, nil)
	big := strings.Repeat("x", 64<<10) // too big for a UDP broadcast
	a.put("labs/big", big)
	eventually(t, 5*time.Second, "large write replicated", func() error { return hasValue(c, "labs/big", big) })
}

func TestConcurrentWritesConverge(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	done := make(chan struct{})
	go func() { defer close(done); a.put("labs/race", "from-a") }()
	b.put("labs/race", "from-b")
	<-done
	ra, _ := a.st.Get("labs/race")
	rb, _ := b.st.Get("labs/race")
	winner := ra
	if rb.Stamp.After(ra.Stamp) {
		winner = rb
	}
	for _, n := range []*testNode{a, b, c} {
		eventually(t, 5*time.Second, "concurrent writes converge", func() error {
			got, ok := n.st.Get("labs/race")
			if !ok {
				return fmt.Errorf("%s: missing", n.name)
			}
			if diff := cmp.Diff(winner, got); diff != "" {
				return fmt.Errorf("%s (-want +got):\n%s", n.name, diff)
			}
			return nil
		})
	}
}

func TestRestartedNodeCatchesUp(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	a.put("labs/before", "1")
	eventually(t, 5*time.Second, "write before restart", func() error { return hasValue(c, "labs/before", "1") })

	if err := c.c.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.stop()
	eventually(t, 5*time.Second, "c left", wantState(a, "node-c", StateLeft))
	eventually(t, 5*time.Second, "c left", wantState(b, "node-c", StateLeft))

	// Written while c is away: no broadcast reaches it.
	a.put("labs/while-away", "2")
	if _, err := b.st.Update(func(tx *store.Tx) error { tx.Delete("labs/before"); return nil }); err != nil {
		t.Fatal(err)
	}

	// Same name, same data directory, same address.
	c.mustStart(b.addr)
	eventually(t, 5*time.Second, "write while away", func() error { return hasValue(c, "labs/while-away", "2") })
	eventually(t, 5*time.Second, "delete while away", func() error {
		if _, ok := c.st.Get("labs/before"); ok {
			return errors.New("labs/before still there")
		}
		return nil
	})
	eventually(t, 5*time.Second, "c back", wantState(a, "node-c", StateAlive))
	// And the restarted node's own writes flow again.
	c.put("labs/after", "3")
	eventually(t, 5*time.Second, "write after restart", func() error { return hasValue(a, "labs/after", "3") })
}

func TestKilledNodeIsDead(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	c.stop() // Shutdown without Leave
	eventually(t, 10*time.Second, "c dead", wantState(a, "node-c", StateDead))
	eventually(t, 10*time.Second, "c dead", wantState(b, "node-c", StateDead))
}

func TestWrongKeyCannotJoin(t *testing.T) {
	t.Parallel()
	a, b, _ := cluster3(t, []byte("correct horse battery staple"))
	for _, tc := range []struct {
		name string
		key  []byte
	}{
		{"node-x", []byte("wrong passphrase")},
		{"node-y", nil},
	} {
		x := newTestNode(t, tc.name, tc.key)
		if err := x.start(a.addr); err == nil {
			t.Errorf("%s joined with key %q", tc.name, tc.key)
		}
		x.put("labs/intruder", tc.name)
	}
	a.put("labs/legit", "ok")
	eventually(t, 5*time.Second, "legit write", func() error { return hasValue(b, "labs/legit", "ok") })
	time.Sleep(time.Second)
	for _, n := range []*testNode{a, b} {
		if _, ok := n.st.Get("labs/intruder"); ok {
			t.Errorf("%s accepted a write from a node with the wrong key", n.name)
		}
		for _, m := range []string{"node-x", "node-y"} {
			if _, ok := memberState(n, m); ok {
				t.Errorf("%s lists %s", n.name, m)
			}
		}
	}
}

func TestShutdownIdempotent(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "node-a", nil).mustStart()
	watch, _ := n.c.WatchMembers()
	for range 2 {
		if err := n.c.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := <-watch; ok {
		t.Error("watch channel still open after Shutdown")
	}
	if err := n.c.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Shutdown: %v, want ErrClosed", err)
	}
}

func TestNewRejects(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{Origin: "n"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name, cfg := range map[string]Config{
		"no name":      {BindAddr: "127.0.0.1:0", Store: st},
		"no store":     {Name: "n", BindAddr: "127.0.0.1:0"},
		"bad address":  {Name: "n", BindAddr: "127.0.0.1", Store: st},
		"bad port":     {Name: "n", BindAddr: "127.0.0.1:99999", Store: st},
		"big metadata": {Name: "n", BindAddr: "127.0.0.1:0", Store: st, Meta: NodeMeta{Version: strings.Repeat("v", 600)}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestGossipKey(t *testing.T) {
	k16 := bytes.Repeat([]byte{1}, 16)
	if got := gossipKey(k16); !bytes.Equal(got, k16) {
		t.Errorf("16-byte key changed: %x", got)
	}
	if got := gossipKey([]byte("passphrase")); len(got) != 32 {
		t.Errorf("passphrase key has %d bytes, want 32", len(got))
	}
}

// TestPushPullRepairs checks the safety net: a record that is never
// broadcast (here merged into a's replica from elsewhere; the cluster only
// broadcasts a node's own writes) still reaches every node by push/pull.
func TestPushPullRepairs(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	rec := store.Record{Key: "labs/ghost", Value: []byte("boo"), Stamp: store.Stamp{Time: 1 << 40, Origin: "node-gone"}}
	if _, err := a.st.Merge([]store.Record{rec}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{b, c} {
		eventually(t, 10*time.Second, "push/pull", func() error { return hasValue(n, "labs/ghost", "boo") })
	}
}

// TestJoinRetries: a node started before the node it joins keeps trying,
// and joins once that node is up.
func TestJoinRetries(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seed := l.Addr().String()
	l.Close()
	b := newTestNode(t, "node-b", nil)
	b.rejoin = 50 * time.Millisecond
	if err := b.start(seed); err == nil {
		t.Fatal("joined a node that is not running")
	}
	a := newTestNode(t, "node-a", nil)
	a.addr = seed
	a.mustStart()
	eventually(t, 10*time.Second, "b joined a", wantState(a, "node-b", StateAlive))
	eventually(t, 10*time.Second, "a seen by b", wantState(b, "node-a", StateAlive))
}
