package follow

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

func TestSnapshotThenChanges(t *testing.T) {
	src := newMemStore(100)
	for i := range 2500 { // three snapshot chunks
		src.put(fmt.Sprintf("k/%05d", i), fmt.Sprint("v", i))
	}
	src.put("empty", "")
	cp := startControl(t, "c1", src, "127.0.0.1:0")
	rep := newMemStore(0)
	f, _ := startFollower(t, rep, fixed(cp.candidate()), newDialer(t), nil)
	waitSame(t, src, rep)
	if got := src.snapshotCount(); got != 1 {
		t.Errorf("snapshots served = %d, want 1", got)
	}

	src.put("k/00001", "changed", "new", "x")
	src.del("k/00002", "k/00003")
	src.write(Op{Key: "k/00004", Value: []byte{}})
	waitSame(t, src, rep)
	if r, _ := rep.get("empty"); r.Value == nil {
		t.Errorf("an empty value arrived as a delete")
	}
	if got := f.Following(); got != "c1" {
		t.Errorf("Following() = %q, want c1", got)
	}
}

func TestResumeAfterDisconnect(t *testing.T) {
	src := newMemStore(100)
	src.put("a", "1")
	cp := startControl(t, "c1", src, "127.0.0.1:0")
	rep := newMemStore(0)
	startFollower(t, rep, fixed(cp.candidate()), newDialer(t), nil)
	waitSame(t, src, rep)

	cp.stop()
	src.put("b", "2")
	src.del("a")
	startControl(t, "c1", src, cp.addr) // the same address: the follower comes back to it
	waitSame(t, src, rep)
	if got := src.snapshotCount(); got != 1 {
		t.Errorf("snapshots served = %d, want 1 (a resume sends the changes since the replica's revision)", got)
	}
}

func TestCompactedHistorySendsSnapshot(t *testing.T) {
	src := newMemStore(3)
	src.put("a", "1")
	cp := startControl(t, "c1", src, "127.0.0.1:0")
	rep := newMemStore(0)
	startFollower(t, rep, fixed(cp.candidate()), newDialer(t), nil)
	waitSame(t, src, rep)

	cp.stop()
	for i := range 10 { // more than the history keeps
		src.put(fmt.Sprint("k", i), "v")
	}
	src.del("a")
	startControl(t, "c1", src, cp.addr) // the same address: the follower comes back to it
	waitSame(t, src, rep)
	if got := src.snapshotCount(); got != 2 {
		t.Errorf("snapshots served = %d, want 2", got)
	}
}

func TestMemberRestartResumes(t *testing.T) {
	src := newMemStore(100)
	src.put("a", "1")
	cp := startControl(t, "c1", src, "127.0.0.1:0")
	rep := newMemStore(0) // the persisted replica, kept across the restart
	cands := fixed(cp.candidate())
	_, stop := startFollower(t, rep, cands, newDialer(t), nil)
	waitSame(t, src, rep)
	stop()

	src.put("b", "2")
	src.put("c", "3")
	startFollower(t, rep, cands, newDialer(t), nil) // the member's labd again
	waitSame(t, src, rep)
	if got := src.snapshotCount(); got != 1 {
		t.Errorf("snapshots served = %d, want 1 (the restarted member resumes)", got)
	}
}

func TestFirstCandidateDown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := Candidate{Name: "down", Addr: lis.Addr().String()}
	lis.Close()
	src := newMemStore(100)
	src.put("a", "1")
	cp := startControl(t, "c2", src, "127.0.0.1:0")
	rep := newMemStore(0)
	f, _ := startFollower(t, rep, fixed(down, cp.candidate()), newDialer(t), nil)
	waitSame(t, src, rep)
	if got := f.Following(); got != "c2" {
		t.Errorf("Following() = %q, want c2", got)
	}
}

func TestStalenessGrowsAndResets(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)}
	src := newMemStore(100)
	src.put("a", "1")
	cp := startControl(t, "c1", src, "127.0.0.1:0")
	rep := newMemStore(0)
	f, _ := startFollower(t, rep, fixed(cp.candidate()), newDialer(t), func(c *Config) { c.Now = clock.Now })
	waitSame(t, src, rep)

	cp.stop()
	waitFor(t, "the follower to notice the control node is gone", func() bool { return f.Following() == "" })
	clock.Add(30 * time.Second)
	age, rev := f.Staleness()
	if age != 30*time.Second || rev != 1 {
		t.Errorf("Staleness() with the control plane away = %v, %d; want 30s, 1", age, rev)
	}
	clock.Add(15 * time.Second)
	if age, _ := f.Staleness(); age != 45*time.Second {
		t.Errorf("Staleness() 15 s later = %v, want 45s", age)
	}

	src.put("b", "2")
	startControl(t, "c1", src, cp.addr) // the same address: the follower comes back to it
	waitFor(t, "staleness to reset", func() bool { age, rev := f.Staleness(); return age == 0 && rev == 2 })
}

func TestMemberRefusesFollow(t *testing.T) {
	st := newMemStore(10)
	n := startService(t, "m1", "127.0.0.1:0", func(g *grpc.Server) *Server {
		fs := NewServer(ServerConfig{Node: "m1", Store: st, IsControl: func() bool { return false }})
		labv1.RegisterControlServiceServer(g, fs)
		return fs
	})
	cc, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	stream, err := labv1.NewControlServiceClient(cc).Follow(context.Background(), &labv1.FollowRequest{Node: "m2"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition || status.Convert(err).Message() != "node m1 is not a control node" {
		t.Errorf("Follow on a member: %v; want FailedPrecondition \"node m1 is not a control node\"", err)
	}
}

// scripted is a ControlService that records the requests and answers each
// with the next script.
type scripted struct {
	labv1.UnimplementedControlServiceServer
	mu      sync.Mutex
	reqs    []uint64 // from_revision of each call
	scripts []func(labv1.ControlService_FollowServer) error
}

func (s *scripted) Follow(req *labv1.FollowRequest, stream labv1.ControlService_FollowServer) error {
	s.mu.Lock()
	n := len(s.reqs)
	s.reqs = append(s.reqs, req.GetFromRevision())
	s.mu.Unlock()
	if n < len(s.scripts) {
		return s.scripts[n](stream)
	}
	<-stream.Context().Done()
	return nil
}

func (s *scripted) requests() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.reqs...)
}

func snapshotOf(rev uint64, kv ...string) *labv1.FollowResponse {
	s := &labv1.StateSnapshot{Revision: rev, Last: true}
	for i := 0; i+1 < len(kv); i += 2 {
		s.Records = append(s.Records, &labv1.StateRecord{Key: kv[i], Value: []byte(kv[i+1]), Revision: rev})
	}
	return &labv1.FollowResponse{Event: &labv1.FollowResponse_Snapshot{Snapshot: s}}
}

func putChange(rev uint64, key, value string) *labv1.FollowResponse {
	return changeMessage(Change{Rev: rev, Ops: []Op{{Key: key, Value: []byte(value)}}})
}

func sendAll(msgs ...*labv1.FollowResponse) func(labv1.ControlService_FollowServer) error {
	return func(stream labv1.ControlService_FollowServer) error {
		for _, m := range msgs {
			if err := stream.Send(m); err != nil {
				return err
			}
		}
		return status.Error(codes.Unavailable, "script done")
	}
}

func TestResyncAfterBadStream(t *testing.T) {
	tests := []struct {
		name  string
		first func(labv1.ControlService_FollowServer) error
	}{
		{"gap", sendAll(putChange(3, "c", "3"))}, // the replica is at 1
		{"change inside a snapshot", sendAll(&labv1.FollowResponse{Event: &labv1.FollowResponse_Snapshot{Snapshot: &labv1.StateSnapshot{Revision: 5}}}, putChange(6, "x", "y"))},
		{"snapshot out of order", sendAll(snapshotOf(5, "b", "1", "a", "2"))},
		{"op without key", sendAll(putChange(2, "", "v"))},
		{"decode error", func(labv1.ControlService_FollowServer) error {
			return status.Error(codes.Internal, "grpc: failed to unmarshal the received message")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := &scripted{scripts: []func(labv1.ControlService_FollowServer) error{
				sendAll(snapshotOf(1, "a", "1")),
				tc.first,
				sendAll(snapshotOf(7, "z", "9")),
			}}
			n := startService(t, "c1", "127.0.0.1:0", func(g *grpc.Server) *Server {
				labv1.RegisterControlServiceServer(g, sc)
				return nil
			})
			rep := newMemStore(0)
			startFollower(t, rep, fixed(n.candidate()), newDialer(t), nil)
			waitFor(t, "the re-sync", func() bool { return rep.Revision() == 7 })
			if got := sc.requests()[:3]; got[0] != 0 || got[1] != 1 || got[2] != 0 {
				t.Errorf("from_revision of the calls = %v, want [0 1 0 ...]", got)
			}
			if _, ok := rep.get("a"); ok {
				t.Errorf("the snapshot did not replace the replica")
			}
		})
	}
}

func TestReplicaFailureStopsAndResyncsAfterReopen(t *testing.T) {
	src := newMemStore(100)
	src.put("a", "1")
	cp := startControl(t, "c1", src, "127.0.0.1:0")
	var mu sync.Mutex
	rep := newMemStore(0)
	current := rep
	failed := make(chan error, 1)
	startFollower(t, nil, fixed(cp.candidate()), newDialer(t), func(c *Config) {
		c.Replica = func() Replica { mu.Lock(); defer mu.Unlock(); return current }
		c.ReplicaFailed = func(err error) { failed <- err }
	})
	waitSame(t, src, rep)

	rep.mu.Lock()
	rep.failNext = true
	rep.mu.Unlock()
	src.put("b", "2")
	select {
	case err := <-failed:
		if err != errDiskFull {
			t.Errorf("ReplicaFailed(%v), want %v", err, errDiskFull)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ReplicaFailed not called")
	}
	src.put("c", "3")
	snaps := src.snapshotCount()

	// The daemon reopens the replica: what is on disk, at revision 1.
	reopened := newMemStore(0)
	reopened.Restore([]Record{{Key: "a", Value: []byte("1"), Rev: 1}}, 1, 0)
	mu.Lock()
	current = reopened
	mu.Unlock()
	waitSame(t, src, reopened)
	if got := src.snapshotCount(); got != snaps+1 {
		t.Errorf("snapshots served = %d, want %d (a reopened replica is re-synced)", got, snaps+1)
	}
}
