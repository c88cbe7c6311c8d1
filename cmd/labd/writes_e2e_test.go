package main_test

// Writes through the Raft control plane, with real labd processes on
// loopback: two writers racing through different nodes never lose an
// update, and a write acknowledged by a node killed at once survives.

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// wnode is a labd of a writes test with a gRPC client of its API.
type wnode struct {
	*labd
	name string
	conn *grpc.ClientConn
	labs labv1.LabServiceClient
}

// wcluster starts the labd processes of a writes test: the first is the
// seed (a control node that bootstraps), the others join it.
type wcluster struct {
	t     testing.TB
	dir   string
	seed  string // gossip address of the first node
	nodes []*wnode
}

func newWCluster(t testing.TB) *wcluster {
	return &wcluster{t: t, dir: t.TempDir()}
}

// start starts node name on ip: a control node (with its own raft port)
// or a member.
func (w *wcluster) start(name, ip string, control bool) *wnode {
	w.t.Helper()
	gossip := ip + ":" + freePort(w.t, ip)
	args := []string{"--name", name, "--api", ip + ":0", "--overlay", ip + ":0", "--gossip", gossip}
	if control {
		args = append(args, "--raft", ip+":"+freePort(w.t, ip))
	}
	if w.seed == "" {
		w.seed = gossip
	} else {
		args = append(args, "--join", w.seed)
		if control {
			args = append(args, "--control")
		}
	}
	n := &wnode{name: name, labd: startLabdArgs(w.t, filepath.Join(w.dir, name), args...)}
	n.connect(w.t)
	w.nodes = append(w.nodes, n)
	return n
}

func (n *wnode) connect(t testing.TB) {
	t.Helper()
	conn := n.dialAdmin()
	t.Cleanup(func() { conn.Close() })
	n.conn, n.labs = conn, labv1.NewLabServiceClient(conn)
}

// kill kills the node (kill -9) and waits for the process to end.
func (n *wnode) kill() {
	n.cmd.Process.Kill()
	<-n.done
}

// restart starts a killed node again with the same flags (and data).
func (n *wnode) restart(t testing.TB) {
	t.Helper()
	n.labd = startLabdArgs(t, n.data, n.args...)
	n.connect(t)
}

// synced reads a node's replica as its Watch reports it: the resources
// under parent (by name) and the store revision they reflect.
func synced(ctx context.Context, c labv1.LabServiceClient, parent string, kinds ...string) (uint64, map[string]*labv1.WatchResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := c.Watch(ctx, &labv1.WatchRequest{Parent: parent, Kinds: kinds})
	if err != nil {
		return 0, nil, err
	}
	items := map[string]*labv1.WatchResponse{}
	for {
		r, err := w.Recv()
		if err != nil {
			return 0, nil, err
		}
		if r.Type == labv1.WatchEventType_WATCH_EVENT_TYPE_SYNCED {
			return r.Revision, items, nil
		}
		items[r.Name] = r
	}
}

// waitSynced is synced once the node's replica has reached rev.
func (n *wnode) waitSynced(t testing.TB, rev uint64, parent string, kinds ...string) (uint64, map[string]*labv1.WatchResponse) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, items, err := synced(ctx, n.labs, parent, kinds...)
		cancel()
		if err == nil && got >= rev {
			return got, items
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: replica at revision %d (err %v), not %d, after 30s", n.name, got, err, rev)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eth1Impair is the impairment of r1's eth1 in a host record, never nil.
func eth1Impair(h *labv1.Host) *labv1.Impairment {
	for _, ifc := range h.GetInterfaces() {
		if ifc.GetName() == "eth1" && ifc.GetImpair() != nil {
			return ifc.GetImpair()
		}
	}
	return &labv1.Impairment{}
}

// commit is one committed change of r1's eth1 impairment, as a control
// node's Follow stream reports it.
type commit struct {
	rev    uint64
	impair *labv1.Impairment
}

// commitLog follows a control node and records, in commit order, every
// change of host key's eth1 impairment.
type commitLog struct {
	mu      sync.Mutex
	at      uint64 // the last revision heard of
	commits []commit
	err     error
}

func followCommits(ctx context.Context, conn *grpc.ClientConn, from uint64, key string) *commitLog {
	l := &commitLog{at: from}
	s, err := labv1.NewControlServiceClient(conn).Follow(ctx, &labv1.FollowRequest{Node: "writes-test", FromRevision: from})
	if err != nil {
		l.err = err
		return l
	}
	go func() { // owned by the test: ends with ctx
		var last *labv1.Impairment
		for {
			r, err := s.Recv()
			l.mu.Lock()
			if err != nil {
				l.err = err
				l.mu.Unlock()
				return
			}
			switch ev := r.Event.(type) {
			case *labv1.FollowResponse_Snapshot:
				l.err = fmt.Errorf("a snapshot at revision %d mid-stream", ev.Snapshot.GetRevision())
			case *labv1.FollowResponse_Heartbeat:
				l.at = max(l.at, ev.Heartbeat.GetRevision())
			case *labv1.FollowResponse_Change:
				for _, op := range ev.Change.GetOps() {
					if op.GetKey() != key || op.GetDelete() {
						continue
					}
					h := &labv1.Host{}
					if err := proto.Unmarshal(op.GetValue(), h); err != nil {
						l.err = err
						continue
					}
					if im := eth1Impair(h); last == nil || !proto.Equal(im, last) {
						l.commits = append(l.commits, commit{ev.Change.GetRevision(), im})
						last = im
					}
				}
				l.at = max(l.at, ev.Change.GetRevision())
			}
			l.mu.Unlock()
		}
	}()
	return l
}

// since waits until the log has heard of rev and returns the commits after
// from.
func (l *commitLog) since(t testing.TB, from, rev uint64) []commit {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l.mu.Lock()
		at, err := l.at, l.err
		var out []commit
		for _, c := range l.commits {
			if c.rev > from && c.rev <= rev {
				out = append(out, c)
			}
		}
		l.mu.Unlock()
		if err != nil {
			t.Fatalf("follow: %v", err)
		}
		if at >= rev {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("follow: at revision %d, not %d, after 30s", at, rev)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func impairText(im *labv1.Impairment) string {
	if proto.Equal(im, &labv1.Impairment{}) {
		return "cleared"
	}
	return fmt.Sprint(im)
}

// TestLostUpdate is the lost update: bob's labd (a member) sets a
// delay on r1:eth1 while the teacher's (the control node) clears it, both
// released at once, 50 times. Each time, either both are committed and
// every node shows the one committed last (in the commit order the control
// node's Follow stream reports), or one is refused as conflicting
// (Aborted) and every node shows the other. Anything else is a lost update.
func TestLostUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three labd processes")
	}
	w := newWCluster(t)
	teacher := w.start("teacher", "127.0.0.61", true)
	bob := w.start("bob", "127.0.0.62", false)
	alice := w.start("alice", "127.0.0.63", false)
	teacher.ok("apply", "-f", examples(t, "two-lans.yaml"))

	const host = "labs/demo/hosts/r1"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := &labv1.Impairment{LossPercent: 5}
	delay := &labv1.Impairment{Delay: durationpb.New(100 * time.Millisecond)}
	set := func(n *wnode, im *labv1.Impairment) error {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := n.labs.SetImpairment(wctx, &labv1.SetImpairmentRequest{Host: host, Interface: "eth1", Impair: im})
		return err
	}
	if err := set(teacher, base); err != nil {
		t.Fatal(err)
	}
	rev, _ := teacher.waitSynced(t, 0, "labs/demo", "hosts")
	for _, n := range []*wnode{bob, alice} {
		n.waitSynced(t, rev, "labs/demo", "hosts") // the members follow
	}
	// Follow is a node's call: made with the teacher's own certificate.
	commits := followCommits(ctx, teacher.dialAsNode(), rev, host)

	const runs = 50
	var bothDelayLast, bothClearLast, abortedDelay, abortedClear int
	for i := range runs {
		if err := set(teacher, base); err != nil {
			t.Fatalf("run %d: reset: %v", i, err)
		}
		before, _ := teacher.waitSynced(t, 0, "labs/demo", "hosts")
		start := make(chan struct{})
		var wg sync.WaitGroup
		var bobErr, teacherErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			bobErr = set(bob, delay)
		}()
		go func() {
			defer wg.Done()
			<-start
			teacherErr = set(teacher, &labv1.Impairment{})
		}()
		close(start)
		wg.Wait()
		for who, err := range map[string]error{"bob's delay": bobErr, "the teacher's clear": teacherErr} {
			if err != nil && status.Code(err) != codes.Aborted {
				t.Fatalf("run %d: %s: %v", i, who, err)
			}
		}
		if bobErr != nil && teacherErr != nil {
			t.Fatalf("run %d: both writes refused: %v; %v", i, bobErr, teacherErr)
		}

		leaderRev, _ := teacher.waitSynced(t, 0, "labs/demo", "hosts")
		order := commits.since(t, before, leaderRev)
		var want *labv1.Impairment
		switch {
		case bobErr != nil, teacherErr != nil:
			want = delay
			if bobErr != nil {
				want = &labv1.Impairment{}
			}
			if len(order) != 1 || !proto.Equal(order[0].impair, want) {
				t.Fatalf("run %d: one write refused, the other (%s) acknowledged; commits: %v", i, impairText(want), order)
			}
		default:
			if len(order) != 2 || proto.Equal(order[0].impair, order[1].impair) {
				t.Fatalf("run %d: both writes acknowledged, but the commits are %v", i, order)
			}
			want = order[1].impair
		}
		for _, n := range []*wnode{teacher, bob, alice} {
			_, items := n.waitSynced(t, leaderRev, "labs/demo", "hosts")
			got := eth1Impair(items[host].GetHost())
			if !proto.Equal(got, want) {
				t.Fatalf("run %d: lost update: node %s shows r1:eth1 %s, but the write committed last is %s (bob: %v, teacher: %v)",
					i, n.name, impairText(got), impairText(want), bobErr, teacherErr)
			}
		}
		switch {
		case bobErr != nil:
			abortedDelay++
		case teacherErr != nil:
			abortedClear++
		case proto.Equal(want, delay):
			bothDelayLast++
		default:
			bothClearLast++
		}
	}
	t.Logf("%d runs: both committed, delay last %d, clear last %d; delay refused (Aborted) %d, clear refused %d; lost updates 0",
		runs, bothDelayLast, bothClearLast, abortedDelay, abortedClear)
}

// TestAckedThenKilled: with 3 control nodes (a bootstraps, b and c join
// as control nodes) and a member, a write is made through one node and
// that node is killed (kill -9) right after the acknowledgement, 20 times:
// the write is then on every live node, and on the killed node once it is
// restarted.
func TestAckedThenKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four labd processes")
	}
	w := newWCluster(t)
	a := w.start("a", "127.0.0.64", true)
	w.start("b", "127.0.0.65", true)
	w.start("c", "127.0.0.66", true)
	w.start("m", "127.0.0.67", false)

	// Every control node has joined raft once its own store has the
	// control plane's writes (a control node's store is fed by raft only).
	ctx := context.Background()
	create := func(n *wnode, id string) error {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := n.labs.CreateLab(wctx, &labv1.CreateLabRequest{LabId: id})
		return err
	}
	if err := create(a, "ready"); err != nil {
		t.Fatal(err)
	}
	rev, _ := a.waitSynced(t, 0, "labs/-", "labs")
	for _, n := range w.nodes {
		n.waitSynced(t, rev, "labs/-", "labs")
	}

	const runs = 20
	var maxKillDelay, maxSeen time.Duration
	retried := 0
	for i := range runs {
		n := w.nodes[i%len(w.nodes)]
		id := fmt.Sprintf("ack-%d", i)
		var killDelay time.Duration
		for attempt := 0; ; attempt++ {
			err := create(n, id)
			// A retried write whose first attempt committed after all.
			if err == nil || (attempt > 0 && status.Code(err) == codes.AlreadyExists) {
				acked := time.Now()
				n.cmd.Process.Kill()
				killDelay = time.Since(acked)
				break
			}
			// Right after the last kill an election may still be going on.
			if status.Code(err) != codes.Unavailable || attempt == 10 {
				t.Fatalf("run %d: write through %s: %v", i, n.name, err)
			}
			retried++
			t.Logf("run %d: write through %s, attempt %d: %v", i, n.name, attempt+1, err)
			time.Sleep(500 * time.Millisecond)
		}
		<-n.done
		maxKillDelay = max(maxKillDelay, killDelay)

		start := time.Now()
		for _, o := range w.nodes {
			if o == n {
				continue
			}
			o.waitLab(t, "labs/"+id)
		}
		maxSeen = max(maxSeen, time.Since(start))
		n.restart(t)
		n.waitLab(t, "labs/"+id)
	}
	// Every acknowledged write, identical on every node.
	var want string
	for _, n := range w.nodes {
		_, items := n.waitSynced(t, 0, "labs/-", "labs")
		got := ""
		for i := range runs {
			name := fmt.Sprintf("labs/ack-%d", i)
			if items[name] == nil {
				t.Errorf("node %s lacks %s", n.name, name)
			}
			got += items[name].GetLab().String() + "\n"
		}
		if want == "" {
			want = got
		} else if got != want {
			t.Errorf("node %s differs:\n%s\nfrom:\n%s", n.name, got, want)
		}
	}
	t.Logf("%d writes acknowledged and their node killed (at most %v after the ack): %d on every live node (the last within %v of the kill) and on the restarted node; %d writes retried during elections",
		runs, maxKillDelay, runs, maxSeen.Round(time.Millisecond), retried)
}

// waitLab waits until the node's replica has lab name.
func (n *wnode) waitLab(t testing.TB, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := n.labs.GetLab(ctx, &labv1.GetLabRequest{Name: name})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: %s not there 30s after the kill: %v", n.name, name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkWriteLatency measures the control plane for the note,
// once per run (b.N is ignored):
//
//   - write latency (SetImpairment on one host, 200 writes, p50 and p99)
//     with 1 control node, and with 3 through the leader and through a
//     follower (which forwards the call);
//   - the leader failover gap: a writer writes every 10 ms through a
//     follower, another through a member, the leader is killed (kill -9);
//     the longest time between two acknowledged writes of each;
//   - the size of DATA/raft (raft.db and snapshots) after 10,000 writes
//     and after the snapshot they trigger (threshold 8192 entries, checked
//     every 120 to 240 s: raft's snapshot interval), and of the data dir.
//
// Run it with:
//
//	go test -run '^$' -bench WriteLatency -benchtime 1x -timeout 20m ./cmd/labd
func BenchmarkWriteLatency(b *testing.B) {
	const host = "labs/demo/hosts/r1"
	ctx := context.Background()
	write := func(n *wnode, i int) error {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		im := &labv1.Impairment{Delay: durationpb.New(time.Duration(i%100000+1) * time.Microsecond)}
		_, err := n.labs.SetImpairment(wctx, &labv1.SetImpairmentRequest{Host: host, Interface: "eth1", Impair: im})
		return err
	}
	latency := func(n *wnode, what string) {
		var lat []time.Duration
		for i := range 200 {
			start := time.Now()
			if err := write(n, i); err != nil {
				b.Fatalf("%s: write %d: %v", what, i, err)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		b.ReportMetric(ms(lat[len(lat)/2]), what+"-p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), what+"-p99-ms")
	}

	// One control node.
	one := newWCluster(b)
	solo := one.start("solo", "127.0.0.71", true)
	solo.ok("apply", "-f", examples(b, "two-lans.yaml"))
	latency(solo, "1ctl")

	// Three control nodes and the failover gap.
	three := newWCluster(b)
	for i, name := range []string{"a", "b", "c"} {
		three.start(name, fmt.Sprintf("127.0.0.%d", 72+i), true)
	}
	three.nodes[0].ok("apply", "-f", examples(b, "two-lans.yaml"))
	rev, _ := three.nodes[0].waitSynced(b, 0, "labs/-", "labs")
	for _, n := range three.nodes {
		n.waitSynced(b, rev, "labs/-", "labs")
	}
	leader := three.leader(b)
	var follower *wnode
	for _, n := range three.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	latency(leader, "3ctl-leader")
	latency(follower, "3ctl-follower")

	// A writer through the follower and one through a member, each every
	// 10 ms; the leader killed after a second.
	member := three.start("m", "127.0.0.75", false)
	member.waitSynced(b, rev, "labs/-", "labs")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	writer := func(n *wnode) *[]time.Time {
		acks := &[]time.Time{}
		wg.Add(1)
		go func() { // owned by the benchmark: ends when stop is closed
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if write(n, i) == nil {
					*acks = append(*acks, time.Now())
				}
			}
		}()
		return acks
	}
	viaFollower, viaMember := writer(follower), writer(member)
	time.Sleep(time.Second)
	killed := time.Now()
	leader.kill()
	time.Sleep(10 * time.Second)
	close(stop)
	wg.Wait()
	for _, w := range []struct {
		name string
		acks []time.Time
	}{{"failover", *viaFollower}, {"failover-member", *viaMember}} {
		var gap, firstAfter time.Duration
		for i := 1; i < len(w.acks); i++ {
			gap = max(gap, w.acks[i].Sub(w.acks[i-1]))
		}
		for _, a := range w.acks {
			if a.After(killed) {
				firstAfter = a.Sub(killed)
				break
			}
		}
		b.ReportMetric(ms(gap), w.name+"-gap-ms")
		b.ReportMetric(ms(firstAfter), w.name+"-first-ack-ms")
	}

	// The raft data of the single control node after 10,000 writes, and
	// after the snapshot they trigger.
	start := time.Now()
	for i := range 10000 - 200 {
		if err := write(solo, 200+i); err != nil {
			b.Fatalf("write %d: %v", 200+i, err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/1000, "10k-writes-s")
	raftDir := filepath.Join(solo.data, "raft")
	b.ReportMetric(mib(dirSize(b, raftDir)), "raft-10k-MiB")
	b.ReportMetric(mib(dirSize(b, solo.data)), "data-10k-MiB")
	waited := time.Now()
	for !hasSnapshot(filepath.Join(raftDir, "snapshots")) {
		if time.Since(waited) > 5*time.Minute {
			b.Fatalf("no snapshot 5 min after 10,000 writes")
		}
		time.Sleep(time.Second)
	}
	time.Sleep(2 * time.Second) // the log compaction after it
	b.ReportMetric(time.Since(waited).Seconds(), "snapshot-wait-s")
	b.ReportMetric(mib(dirSize(b, raftDir)), "raft-snap-MiB")
	b.ReportMetric(mib(dirSize(b, filepath.Join(raftDir, "snapshots"))), "snapshots-MiB")
	b.ReportMetric(mib(dirSize(b, solo.data)), "data-snap-MiB")
}

// leader is the node gossip names as the control plane's leader.
func (w *wcluster) leader(t testing.TB) *wnode {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := labv1.NewNodeServiceClient(w.nodes[0].conn).ListNodes(ctx, &labv1.ListNodesRequest{})
		cancel()
		if err == nil {
			for _, nd := range resp.GetNodes() {
				for _, n := range w.nodes {
					if nd.GetLeader() && nd.GetName() == "nodes/"+n.name {
						return n
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// dirSize is the bytes the files under dir take on disk, as du counts.
func dirSize(t testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else if !d.IsDir() {
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// hasSnapshot reports whether raft's file snapshot store in dir holds a
// complete snapshot (a directory with its meta.json).
func hasSnapshot(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*", "meta.json"))
	for _, f := range m {
		if !strings.HasSuffix(filepath.Dir(f), ".tmp") {
			return true
		}
	}
	return false
}
