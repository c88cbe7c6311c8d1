package cluster

import (
	"bytes"
	"context"
	"crypto"
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
)

// testNode is one in-process labd's worth of cluster: a data directory
// (for the known nodes' file) and a Cluster on 127.0.0.1 (or another
// loopback address).
type testNode struct {
	t    *testing.T
	name string
	dir  string
	key  []byte
	keys [][]byte // Config.Keys (keyring_test.go)
	c    *Cluster
	addr string // gossip address, fixed after the first start

	role   string                   // NodeMeta.Role
	rejoin time.Duration            // Config.RejoinInterval
	forget time.Duration            // Config.ForgetAfter
	cut    *cutSwitch               // set: gossip goes through a transport the test can cut
	signer crypto.Signer            // Config.Signer's key (identity_test.go)
	ids    Identities               // Config.Identities
	tune   func(*memberlist.Config) // after fastTimers
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// lanTimers (LABNET_LAN_TIMERS=1) runs the tests with labd's own timers
// (memberlist.DefaultLANConfig, as cmd/labd uses), for measurements; the
// waits of eventually are then four times longer.
var lanTimers = os.Getenv("LABNET_LAN_TIMERS") == "1"

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

// start starts the node's cluster, joining join.
func (n *testNode) start(join ...string) error {
	n.t.Helper()
	tune := func(c *memberlist.Config) {
		if !lanTimers {
			fastTimers(c)
		}
		if n.cut != nil {
			n.cut.install(n.t, c)
		}
		if n.tune != nil {
			n.tune(c)
		}
	}
	var signer Signer
	if n.signer != nil {
		signer = func() crypto.Signer { return n.signer }
	}
	c, err := New(Config{
		Signer:    signer,
		Name:      n.name,
		BindAddr:  n.addr,
		Join:      join,
		KnownFile: filepath.Join(n.dir, "known-nodes.json"),
		Meta:      NodeMeta{APIAddr: "127.0.0.1:77" + n.name[len(n.name)-1:], OverlayAddr: "127.0.0.1:60" + n.name[len(n.name)-1:], Version: "test", Role: n.role},
		Key:       n.key,
		Keys:      n.keys,
		Logger:    testLogger().With("node", n.name),
		Local:     !lanTimers,
		Tune:      tune,

		Identities:      n.ids,
		RequireIdentity: true,
		RejoinInterval:  n.rejoin,
		ForgetAfter:     n.forget,
	})
	if err != nil {
		n.t.Fatal(err)
	}
	n.c = c
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

// stop shuts the cluster down without leaving (a kill).
func (n *testNode) stop() {
	if n.c != nil {
		n.c.Shutdown()
	}
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if lanTimers {
		timeout *= 4
	}
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

// cluster3 starts nodes a (a control node), b and c (members), b and c
// joining a, and waits until each sees all three alive.
func cluster3(t *testing.T, key []byte) (a, b, c *testNode) {
	t.Helper()
	a = newTestNode(t, "node-a", key)
	a.role = RoleControl
	a.mustStart()
	b = newTestNode(t, "node-b", key)
	b.role = RoleMember
	b.mustStart(a.addr)
	c = newTestNode(t, "node-c", key)
	c.role = RoleMember
	c.mustStart(a.addr)
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
		{Name: "node-a", State: StateAlive, Addr: a.addr, Meta: NodeMeta{APIAddr: "127.0.0.1:77a", OverlayAddr: "127.0.0.1:60a", Version: "test", Role: RoleControl}},
		{Name: "node-b", State: StateAlive, Addr: b.addr, Meta: NodeMeta{APIAddr: "127.0.0.1:77b", OverlayAddr: "127.0.0.1:60b", Version: "test", Role: RoleMember}},
		{Name: "node-c", State: StateAlive, Addr: c.addr, Meta: NodeMeta{APIAddr: "127.0.0.1:77c", OverlayAddr: "127.0.0.1:60c", Version: "test", Role: RoleMember}},
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

func TestRestartedNodeCatchesUp(t *testing.T) {
	t.Parallel()
	a, b, c := cluster3(t, nil)
	if err := c.c.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.stop()
	eventually(t, 5*time.Second, "c left", wantState(a, "node-c", StateLeft))
	eventually(t, 5*time.Second, "c left", wantState(b, "node-c", StateLeft))

	// Same name, same data directory, same address.
	c.mustStart(b.addr)
	eventually(t, 5*time.Second, "c back", wantState(a, "node-c", StateAlive))
	eventually(t, 5*time.Second, "c back", wantState(b, "node-c", StateAlive))
	eventually(t, 5*time.Second, "a seen by c", wantState(c, "node-a", StateAlive))
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
		err := x.start(a.addr)
		if err == nil {
			t.Errorf("%s joined with key %q", tc.name, tc.key)
			continue
		}
		var km *KeyMismatchError
		if !errors.As(err, &km) {
			t.Errorf("%s: %v, want a KeyMismatchError", tc.name, err)
		}
		if want := "cannot join " + a.addr + ": the cluster key does not match (or one side has none)"; err.Error() != want {
			t.Errorf("%s: error %q, want %q", tc.name, err, want)
		}
	}
	// And a cluster without a key refuses a node with one.
	open := newTestNode(t, "node-o", nil).mustStart()
	z := newTestNode(t, "node-z", []byte("a key"))
	var km *KeyMismatchError
	if err := z.start(open.addr); !errors.As(err, &km) {
		t.Errorf("keyed node joining a keyless one: %v, want a KeyMismatchError", err)
	}
	time.Sleep(time.Second)
	for _, n := range []*testNode{a, b} {
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
	if err := n.c.UpdateMeta(NodeMeta{Leader: true}); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateMeta after Shutdown: %v, want ErrClosed", err)
	}
}

func TestNewRejects(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "known-nodes.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{
		"no name":        {BindAddr: "127.0.0.1:0"},
		"long name":      {Name: strings.Repeat("n", 300), BindAddr: "127.0.0.1:0"},
		"bad address":    {Name: "n", BindAddr: "127.0.0.1"},
		"bad port":       {Name: "n", BindAddr: "127.0.0.1:99999"},
		"big metadata":   {Name: "n", BindAddr: "127.0.0.1:0", Meta: NodeMeta{Version: strings.Repeat("v", 600)}},
		"bad known file": {Name: "n", BindAddr: "127.0.0.1:0", KnownFile: bad},
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
