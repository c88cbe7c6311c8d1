package node

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// syncBuffer is a log output several goroutines write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runDaemon starts a labd of cfg in-process until stop or the end of the
// test.
func runDaemon(t *testing.T, cfg Config, log *slog.Logger) (d *Daemon, stop func()) {
	t.Helper()
	d, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", cfg.Name, err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("%s: Close: %v", cfg.Name, err)
		}
	}
	t.Cleanup(stop)
	return d, stop
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestControlNodeImportsV1: a control node with a state file of the old
// format moves it to state.v1.db, proposes its records through raft once
// it leads, says so once, and does not import again after a restart.
func TestControlNodeImportsV1(t *testing.T) {
	dir := t.TempDir()
	want := map[string]string{"old/a": "1", "old/b": "2"}
	writeV1(t, filepath.Join(dir, "state.db"), want, "old/gone")
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := Config{Control: true, Name: "teacher", DataDir: dir, API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0"}
	d, stop := runDaemon(t, cfg, log)
	waitUntil(t, "the import", func() bool { return len(d.store.List("old/")) == 2 })
	if d.store.AppliedIndex() == 0 {
		t.Error("records imported outside raft")
	}
	waitUntil(t, "the import's log line", func() bool {
		return strings.Contains(logs.String(), "imported 2 records from the old state format")
	})
	stop()

	logs = syncBuffer{}
	log = slog.New(slog.NewTextHandler(&logs, nil))
	d, _ = runDaemon(t, cfg, log)
	waitUntil(t, "leadership", func() bool { return d.control.ctl.IsLeader() })
	if got := len(d.store.List("old/")); got != 2 {
		t.Errorf("%d records after the restart, want 2", got)
	}
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(logs.String(), "imported") {
		t.Errorf("imported again after a restart:\n%s", logs.String())
	}
}

// TestSecondControlNode: a labd started with --control --join is added to
// raft by the leader, gets the state through raft, and a write through its
// API is forwarded to the leader.
func TestSecondControlNode(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	a, _ := runDaemon(t, Config{Control: true, Name: "a", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0"}, log)
	waitUntil(t, "a to lead", func() bool { return a.control.ctl.IsLeader() })
	b, _ := runDaemon(t, Config{
		Control: true, Name: "b", DataDir: t.TempDir(), API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0",
		Join: []string{a.members.cl.LocalAddr()},
	}, log)
	waitUntil(t, "b in the raft configuration", func() bool { return len(a.control.ctl.Servers()) == 2 })
	if b.control.ctl.IsLeader() {
		t.Fatal("b leads")
	}

	conn := dialAdmin(t, b, a)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := labv1.NewLabServiceClient(conn).CreateLab(ctx, &labv1.CreateLabRequest{LabId: "class", Lab: &labv1.Lab{}})
	if err != nil {
		t.Fatalf("write through a follower: %v", err)
	}
	for _, d := range []*Daemon{a, b} {
		waitUntil(t, d.cfg.Name+" to hold the lab", func() bool { return len(d.store.List("labs/class")) > 0 })
	}
}

// TestRaftLogMovedAway: a control node whose raft files were moved away
// (as the message about corrupt raft data advises) starts a new log and
// proposes the records its state held through it.
func TestRaftLogMovedAway(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	cfg := Config{Control: true, Name: "teacher", DataDir: dir, API: "127.0.0.1:0", Gossip: "127.0.0.1:0", Overlay: "127.0.0.1:0"}
	d, stop := runDaemon(t, cfg, log)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, k := range []string{"kept/a", "kept/b"} {
		if _, err := d.control.Update(ctx, func(tx *store.Tx) error { tx.Put(k, []byte("v")); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	if err := os.Rename(filepath.Join(dir, "raft"), filepath.Join(dir, "raft.corrupt")); err != nil {
		t.Fatal(err)
	}
	d, _ = runDaemon(t, cfg, log)
	waitUntil(t, "the records proposed again", func() bool { return len(d.store.List("kept/")) == 2 && d.store.AppliedIndex() > 0 })
	if _, err := d.control.Update(ctx, func(tx *store.Tx) error { tx.Put("new", []byte("v")); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.store.Get("new"); !ok {
		t.Error("a write after the restart was not applied")
	}
}
