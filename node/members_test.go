package node

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/cluster"
)

// freeGossip returns a loopback host:port free for TCP (and, in practice,
// UDP).
func freeGossip(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestRunRefusesTakenNameAndWrongKey: a labd whose name a live node has,
// or whose cluster key the cluster does not share, stops at start with one
// line, instead of running.
func TestRunRefusesTakenNameAndWrongKey(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	key := []byte("correct horse battery staple")
	seed := freeGossip(t, "127.0.0.1")
	cfg := Config{Name: "teacher", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: seed, Overlay: "127.0.0.1:0", Key: key}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, log) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("teacher: %v", err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", seed)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("teacher's gossip port never answered")
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, tc := range []struct {
		name, gossip string
		key          []byte
		want         string
		as           func(error) bool
	}{
		{"teacher", freeGossip(t, "127.0.0.2"), key,
			"node name teacher is taken by a live node at " + seed + ": choose another --name",
			func(err error) bool { var e *cluster.NameTakenError; return errors.As(err, &e) }},
		{"alice", freeGossip(t, "127.0.0.1"), []byte("wrong"),
			"cannot join " + seed + ": the cluster key does not match (or one side has none)",
			func(err error) bool { var e *cluster.KeyMismatchError; return errors.As(err, &e) }},
	} {
		c := Config{Name: tc.name, DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: tc.gossip, Overlay: "127.0.0.1:0", Key: tc.key, Join: []string{seed}}
		rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := Run(rctx, c, log)
		rcancel()
		if err == nil || !tc.as(err) || err.Error() != tc.want {
			t.Errorf("%s: Run = %v, want %q", tc.name, err, tc.want)
		}
	}
}
