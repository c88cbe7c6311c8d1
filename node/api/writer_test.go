package api_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/labnet-dev/labnet/node/api"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// notLeaderWriter refuses every write as a control plane follower (or a
// member) does, naming the leader.
type notLeaderWriter struct{ leader string }

type notLeaderErr struct{ leader string }

func (e notLeaderErr) Error() string     { return "not the leader" }
func (e notLeaderErr) NotLeader() string { return e.leader }

func (w notLeaderWriter) Update(context.Context, func(*store.Tx) error) (uint64, error) {
	return 0, notLeaderErr{w.leader}
}

// TestWritesForwardedToLeader: a write refused here because another node
// leads is replayed, whole, on the leader's API; its answer comes back.
func TestWritesForwardedToLeader(t *testing.T) {
	leader := newEnv(t, false)
	peer := func(node string) (grpc.ClientConnInterface, error) {
		if node != "leader" {
			t.Errorf("forwarded to %q, want the leader", node)
		}
		return grpc.NewClient(leader.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	follower := newEnv(t, false, func(c *api.Config) {
		c.Writer = notLeaderWriter{"leader"}
		c.Peer = peer
	})
	resp := follower.apply(t, demo())
	if len(resp.Changes) == 0 {
		t.Fatal("forwarded apply reported no changes")
	}
	if st, err := lab.Load(leader.store, "demo"); err != nil || len(st.Hosts) == 0 {
		t.Fatalf("leader's store after a forwarded apply: %v, %v", st, err)
	}
	if st, _ := lab.Load(follower.store, "demo"); st.Lab != nil {
		t.Error("the follower wrote its own store")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := follower.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "second", Lab: &labv1.Lab{}})
	if err != nil {
		t.Fatalf("forwarded create: %v", err)
	}

	// No leader known: Unavailable, saying so.
	lost := newEnv(t, false, func(c *api.Config) {
		c.Writer = notLeaderWriter{""}
		c.Peer = peer
	})
	_, err = lost.lab.Apply(ctx, &labv1.ApplyRequest{Topology: demo()})
	if s := wantCode(t, err, codes.Unavailable); !strings.Contains(s.Message(), "no leader") {
		t.Errorf("no leader: %v", err)
	}

	// The node a call was forwarded to does not lead either: never a
	// second hop.
	stale := newEnv(t, false, func(c *api.Config) { c.Writer = notLeaderWriter{"other"} })
	bounce := newEnv(t, false, func(c *api.Config) {
		c.Writer = notLeaderWriter{"leader"}
		c.Peer = func(string) (grpc.ClientConnInterface, error) {
			return grpc.NewClient(stale.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		}
	})
	_, err = bounce.lab.Apply(ctx, &labv1.ApplyRequest{Topology: demo()})
	if s := wantCode(t, err, codes.Unavailable); !strings.Contains(s.Message(), "already forwarded") {
		t.Errorf("second hop: %v", err)
	}
}

// conflictWriter refuses every write as a conditional batch that lost
// against another write.
type conflictWriter struct{}

func (conflictWriter) Update(context.Context, func(*store.Tx) error) (uint64, error) {
	return 0, store.ErrConflict
}

func TestConflictIsAborted(t *testing.T) {
	e := newEnv(t, false, func(c *api.Config) { c.Writer = conflictWriter{} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.lab.Apply(ctx, &labv1.ApplyRequest{Topology: demo()})
	if s := wantCode(t, err, codes.Aborted); !strings.Contains(s.Message(), "changed by another write since it was read: try again") {
		t.Errorf("conflict: %v", err)
	}
}

// TestWriteRetriedWhileLeaderUnreachable: for a moment after an election,
// gossip still names the killed leader (or its old address): a write
// forwarded there, which cannot be sent, is tried again and reaches the
// leader gossip names next.
func TestWriteRetriedWhileLeaderUnreachable(t *testing.T) {
	leader := newEnv(t, false)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := l.Addr().String() // nothing listens there any more
	l.Close()
	var mu sync.Mutex
	var asked []string
	follower := newEnv(t, false, func(c *api.Config) {
		c.Writer = notLeaderWriter{"leader"}
		c.Peer = func(string) (grpc.ClientConnInterface, error) {
			mu.Lock()
			defer mu.Unlock()
			addr := leader.addr
			if len(asked) < 3 {
				addr = gone
			}
			asked = append(asked, addr)
			return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := follower.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: "retried", Lab: &labv1.Lab{}}); err != nil {
		t.Fatalf("write while the named leader cannot be reached: %v (tried %v)", err, asked)
	}
	if st, err := lab.Load(leader.store, "retried"); err != nil || st.Lab == nil {
		t.Fatalf("the leader's store lacks the write: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 4 {
		t.Errorf("tried %v, want three unreachable tries and the leader", asked)
	}
}
