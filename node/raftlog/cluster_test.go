package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// setFSM is a trivial state machine: the set of uint64 values applied.
// Applying a value twice is harmless, so a client may retry an Apply whose
// outcome it did not learn (leadership lost mid-way) without skewing counts.
type setFSM struct {
	mu  sync.Mutex
	set map[uint64]bool
}

func newSetFSM() *setFSM { return &setFSM{set: map[uint64]bool{}} }

func (f *setFSM) Apply(l *raft.Log) any {
	if len(l.Data) != 8 {
		return fmt.Errorf("entry %d: %d bytes", l.Index, len(l.Data))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set[binary.BigEndian.Uint64(l.Data)] = true
	return nil
}

// has reports whether every value in [0, n) was applied.
func (f *setFSM) has(n uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for v := range n {
		if !f.set[v] {
			return false
		}
	}
	return true
}

func (f *setFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vals := make([]uint64, 0, len(f.set))
	for v := range f.set {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	return setSnapshot(vals), nil
}

func (f *setFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	if len(b)%8 != 0 {
		return fmt.Errorf("snapshot of %d bytes", len(b))
	}
	set := map[uint64]bool{}
	for ; len(b) > 0; b = b[8:] {
		set[binary.BigEndian.Uint64(b)] = true
	}
	f.mu.Lock()
	f.set = set
	f.mu.Unlock()
	return nil
}

type setSnapshot []uint64

func (s setSnapshot) Persist(sink raft.SnapshotSink) error {
	var b []byte
	for _, v := range s {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	if _, err := sink.Write(b); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (setSnapshot) Release() {}

// testWriter sends raft's log lines to the test log until the test ends;
// raft's goroutines may still log during shutdown.
type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// raftNode is one control node: its files live in dir and survive restarts.
type raftNode struct {
	id    raft.ServerID
	dir   string
	addr  string // "127.0.0.1:port", kept across restarts
	store *Store
	fsm   *setFSM
	trans *raft.NetworkTransport
	raft  *raft.Raft
}

type cluster struct {
	t     *testing.T
	log   *testWriter
	nodes []*raftNode
}

func (c *cluster) config(id raft.ServerID) *raft.Config {
	conf := raft.DefaultConfig()
	conf.LocalID = id
	conf.HeartbeatTimeout = 200 * time.Millisecond
	conf.ElectionTimeout = 200 * time.Millisecond
	conf.LeaderLeaseTimeout = 100 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	// Snapshots only when the test asks; keep few entries after one so
	// compaction is visible and a node far behind needs the snapshot.
	conf.SnapshotInterval = time.Hour
	conf.SnapshotThreshold = 1 << 20
	conf.TrailingLogs = 50
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: string(id), Level: hclog.Warn, Output: c.log})
	return conf
}

// start opens n's files and starts raft on them; bootstrap is for the
// first start of a new cluster.
func (c *cluster) start(n *raftNode, bootstrap []raft.Server) {
	t := c.t
	t.Helper()
	conf := c.config(n.id)
	var err error
	n.store, err = Open(filepath.Join(n.dir, "raft.db"), Options{Check: true})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(n.dir, 2, conf.Logger)
	if err != nil {
		t.Fatal(err)
	}
	if n.trans == nil {
		c.listen(n, conf.Logger)
	}
	if bootstrap != nil {
		err := raft.BootstrapCluster(conf, n.store, n.store, snaps, n.trans, raft.Configuration{Servers: bootstrap})
		if err != nil {
			t.Fatal(err)
		}
	}
	n.fsm = newSetFSM()
	n.raft, err = raft.NewRaft(conf, n.fsm, n.store, n.store, snaps, n.trans)
	if err != nil {
		t.Fatal(err)
	}
}

// listen binds n's transport on loopback: on n.addr after a restart, on a
// free port the first time.
func (c *cluster) listen(n *raftNode, logger hclog.Logger) {
	c.t.Helper()
	bind := n.addr
	if bind == "" {
		bind = "127.0.0.1:0"
	}
	var err error
	n.trans, err = raft.NewTCPTransportWithLogger(bind, nil, 3, 2*time.Second, logger)
	if err != nil {
		c.t.Fatal(err)
	}
	n.addr = string(n.trans.LocalAddr())
}

// stop shuts n down as a crash would leave its files (raft does not write
// anything on Shutdown that it has not already fsynced).
func (c *cluster) stop(n *raftNode) {
	c.t.Helper()
	if n.raft == nil {
		return
	}
	if err := n.raft.Shutdown().Error(); err != nil {
		c.t.Errorf("%s: shutdown: %v", n.id, err)
	}
	n.trans.Close()
	if err := n.store.Err(); err != nil {
		c.t.Errorf("%s: persistence error: %v", n.id, err)
	}
	n.store.Close()
	n.raft, n.trans = nil, nil
}

func newCluster(t *testing.T, size int) *cluster {
	c := &cluster{t: t, log: &testWriter{t: t}}
	t.Cleanup(func() {
		c.log.mu.Lock()
		c.log.done = true
		c.log.mu.Unlock()
	})
	for i := range size {
		c.nodes = append(c.nodes, &raftNode{id: raft.ServerID(fmt.Sprintf("n%d", i+1)), dir: t.TempDir()})
	}
	// Bind first, so every node knows every address before bootstrapping.
	var servers []raft.Server
	for _, n := range c.nodes {
		c.listen(n, c.config(n.id).Logger)
		servers = append(servers, raft.Server{ID: n.id, Address: raft.ServerAddress(n.addr)})
	}
	for _, n := range c.nodes {
		c.start(n, servers)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			c.stop(n)
		}
	})
	return c
}

// waitFor polls cond until it holds; the deadline is a hang guard, not a
// performance check.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leader waits for one running node to lead and returns it.
func (c *cluster) leader() *raftNode {
	c.t.Helper()
	var l *raftNode
	waitFor(c.t, "a leader", func() bool {
		for _, n := range c.nodes {
			if n.raft != nil && n.raft.State() == raft.Leader {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

// apply applies the values [lo, hi) through the current leader, retrying a
// value whose leader was lost (the FSM is a set, so a retry that also
// committed the first time is harmless).
func (c *cluster) apply(lo, hi uint64) {
	c.t.Helper()
	for lo < hi {
		l := c.leader()
		var futures []raft.ApplyFuture
		for v := lo; v < hi; v++ {
			futures = append(futures, l.raft.Apply(binary.BigEndian.AppendUint64(nil, v), 5*time.Second))
		}
		done := lo
		for i, f := range futures {
			err := f.Error()
			if err == nil && f.Response() != nil {
				err = f.Response().(error)
			}
			if errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrNotLeader) {
				break
			}
			if err != nil {
				c.t.Fatalf("apply %d: %v", lo+uint64(i), err)
			}
			done = lo + uint64(i) + 1
		}
		lo = done
	}
}

// caughtUp waits until every running node (or the ones given) applied [0, n).
func (c *cluster) caughtUp(n uint64, nodes ...*raftNode) {
	c.t.Helper()
	if nodes == nil {
		nodes = c.nodes
	}
	for _, node := range nodes {
		if node.raft == nil {
			continue
		}
		waitFor(c.t, fmt.Sprintf("%s to apply %d values", node.id, n), func() bool { return node.fsm.has(n) })
	}
}

func first(t *testing.T, n *raftNode) uint64 {
	t.Helper()
	i, err := n.store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// TestCluster runs three hashicorp/raft nodes on loopback with raftlog as
// their log and stable store: election, replication, leader loss, restart
// from the files, snapshot, compaction and catching up from a snapshot.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node raft cluster")
	}
	c := newCluster(t, 3)

	c.apply(0, 1000)
	c.caughtUp(1000)

	// Kill the leader: the others elect a new one and keep every entry.
	old := c.leader()
	c.stop(old)
	newLeader := c.leader()
	if newLeader == old {
		t.Fatal("the stopped node is still leader")
	}
	t.Logf("leader %s stopped, %s leads", old.id, newLeader.id)
	c.caughtUp(1000)
	c.apply(1000, 1100)
	c.caughtUp(1100)

	// The old leader restarts from its files alone (the same address, no
	// bootstrap) and catches up through the log.
	c.start(old, nil)
	c.caughtUp(1100, old)
	if got, _ := old.store.LastIndex(); got < 1100 {
		t.Errorf("%s: LastIndex %d after catching up, want at least 1100", old.id, got)
	}

	// A follower goes away; the leader snapshots and compacts its log past
	// the follower's last entry.
	l := c.leader()
	var follower *raftNode
	for _, n := range c.nodes {
		if n != l {
			follower = n
			break
		}
	}
	c.stop(follower)
	c.apply(1100, 1300)
	before := first(t, l)
	if err := l.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	after := first(t, l)
	last, _ := l.store.LastIndex()
	t.Logf("leader %s: FirstIndex %d -> %d after the snapshot, LastIndex %d", l.id, before, after, last)
	if after <= before || last-after+1 > 50 {
		t.Errorf("log not compacted: FirstIndex %d -> %d, LastIndex %d, TrailingLogs 50", before, after, last)
	}

	// The follower restarts behind the leader's first entry: the leader's
	// GetLog says raft.ErrLogNotFound and it sends the snapshot instead.
	c.start(follower, nil)
	c.caughtUp(1300)
	c.apply(1300, 1310)
	c.caughtUp(1310)
	for _, n := range c.nodes {
		if err := n.store.Err(); err != nil {
			t.Errorf("%s: %v", n.id, err)
		}
	}
}
