package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/store"
)

// testTuning is raft's timing for tests on loopback: short, so elections
// take tens of milliseconds.
var testTuning = Tuning{
	HeartbeatTimeout:   150 * time.Millisecond,
	ElectionTimeout:    150 * time.Millisecond,
	LeaderLeaseTimeout: 75 * time.Millisecond,
	CommitTimeout:      5 * time.Millisecond,
	SnapshotInterval:   time.Hour,
	SnapshotThreshold:  1 << 20,
	TrailingLogs:       20,
}

// testLog writes slog records to the test log until the test ends.
type testLog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

type node struct {
	name  string
	dir   string
	addr  string
	tls   *TLS         // nil: plain TCP
	state *fakeState   // the fake state machine, unless the cluster is real
	st    *store.Store // node/store's Store, in a real cluster
	c     *Control
}

// values is n's state as key -> value.
func (n *node) values() map[string]string {
	if n.st == nil {
		return n.state.values()
	}
	out := map[string]string{}
	for _, r := range n.st.List("") {
		out[r.Key] = string(r.Value)
	}
	return out
}

type cluster struct {
	real  bool // nodes run node/store's Store, kept across restarts
	t     testing.TB
	log   *slog.Logger
	nodes []*node
}

func newCluster(t testing.TB) *cluster {
	w := &testLog{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	c := &cluster{t: t, log: slog.New(slog.NewTextHandler(w, nil))}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			c.stop(n)
		}
	})
	return c
}

// add starts a new node, over TLS with t when it is set; the first one
// bootstraps.
func (c *cluster) add(t *TLS) *node {
	c.t.Helper()
	n := &node{name: fmt.Sprintf("n%d", len(c.nodes)+1), dir: c.t.TempDir(), tls: t}
	c.nodes = append(c.nodes, n)
	c.start(n, len(c.nodes) == 1)
	return n
}

// start opens n on its files with a fresh in-memory state (the state is
// rebuilt from raft's snapshot and log, as after a crash that lost it).
func (c *cluster) start(n *node, bootstrap bool) {
	c.t.Helper()
	bind := n.addr
	if bind == "" {
		bind = "127.0.0.1:0"
	}
	var state State
	if c.real {
		var err error
		if n.st, err = store.Open(filepath.Join(n.dir, "state.db"), store.Options{}); err != nil {
			c.t.Fatal(err)
		}
		state = StoreState(n.st)
	} else {
		n.state = newFakeState()
		state = n.state
	}
	var err error
	n.c, err = Open(context.Background(), Config{
		Name: n.name, DataDir: n.dir, Bind: bind, State: state,
		Bootstrap: bootstrap, TLS: n.tls, Logger: c.log.With("node", n.name), Tuning: testTuning,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	n.addr = n.c.Addr()
}

func (c *cluster) stop(n *node) {
	c.t.Helper()
	if n.c == nil {
		return
	}
	if err := n.c.Close(); err != nil {
		c.t.Errorf("%s: %v", n.name, err)
	}
	if err := n.c.Err(); err != nil {
		c.t.Errorf("%s: persistence error: %v", n.name, err)
	}
	n.c = nil
	if n.st != nil {
		if err := n.st.Err(); err != nil {
			c.t.Errorf("%s: store: %v", n.name, err)
		}
		n.st.Close()
		n.st = nil
	}
}

// join adds n to the cluster through the leader.
func (c *cluster) join(n *node) {
	c.t.Helper()
	l := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.c.AddVoter(ctx, n.name, n.addr); err != nil {
		c.t.Fatal(err)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// leader waits for a running node to lead.
func (c *cluster) leader() *node {
	c.t.Helper()
	var l *node
	waitFor(c.t, "a leader", func() bool {
		for _, n := range c.nodes {
			if n.c != nil && n.c.IsLeader() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

// write puts key=value through the leader, retrying while leadership moves.
func (c *cluster) write(key, value string) uint64 {
	c.t.Helper()
	for {
		l := c.leader()
		rev, err := l.c.update(context.Background(), blind(key, value))
		var nl *NotLeaderError
		if errors.As(err, &nl) {
			continue
		}
		if err != nil {
			c.t.Fatalf("write %s: %v", key, err)
		}
		return rev
	}
}

// converged waits until every running node (or the ones given) holds want.
func (c *cluster) converged(want map[string]string, nodes ...*node) {
	c.t.Helper()
	if nodes == nil {
		nodes = c.nodes
	}
	for _, n := range nodes {
		if n.c == nil {
			continue
		}
		waitFor(c.t, n.name+" to converge", func() bool { return equal(n.values(), want) })
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
