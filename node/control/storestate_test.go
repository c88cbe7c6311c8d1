package control

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/labnet-dev/labnet/node/store"
)

func putTx(key, value string) func(*store.Tx) error {
	return func(tx *store.Tx) error {
		tx.Put(key, []byte(value))
		return nil
	}
}

// TestStoreUpdate runs Update over node/store's Store: revisions, the
// read-modify-write of a caller, the conflict of a batch read before
// another write, and fn's own error.
func TestStoreUpdate(t *testing.T) {
	c := newCluster(t)
	c.real = true
	n := c.add(nil)
	c.leader()
	ctx := context.Background()
	rev1, err := n.c.Update(ctx, putTx("labs/demo/hosts/r1/impair", "delay 100ms"))
	if err != nil {
		t.Fatal(err)
	}
	if rev1 != n.st.Revision() || n.st.AppliedIndex() == 0 {
		t.Fatalf("revision %d, store at %d, applied index %d", rev1, n.st.Revision(), n.st.AppliedIndex())
	}
	// bob's write read the impairment; the teacher's clears it meanwhile.
	stale, err := n.st.Read(func(tx *store.Tx) error {
		v, _ := tx.Get("labs/demo/hosts/r1/impair")
		tx.Put("labs/demo/hosts/r1/impair", append(v, " loss 5%"...))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.c.Update(ctx, putTx("labs/demo/hosts/r1/impair", "clear")); err != nil {
		t.Fatal(err)
	}
	_, err = n.c.update(ctx, func() ([]byte, error) { return store.EncodeBatch(stale), nil })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale batch: %v, want store.ErrConflict", err)
	}
	if r, _ := n.st.Get("labs/demo/hosts/r1/impair"); string(r.Value) != "clear" {
		t.Errorf("impair = %q after the refused write, want clear", r.Value)
	}
	boom := errors.New("boom")
	if _, err := n.c.Update(ctx, func(*store.Tx) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("fn's error: %v", err)
	}
}

// TestStoreRestartAndSnapshot: a control node over node/store restarts
// from its files with every acknowledged write, and a node added after a
// snapshot gets the state through Restore.
func TestStoreRestartAndSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 2-node raft cluster")
	}
	c := newCluster(t)
	c.real = true
	n1 := c.add(nil)
	c.leader()
	want := map[string]string{}
	ctx := context.Background()
	for i := range 60 {
		k, v := fmt.Sprintf("k%02d", i%25), fmt.Sprint(i)
		if _, err := n1.c.Update(ctx, putTx(k, v)); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	c.stop(n1)
	c.start(n1, true)
	c.leader()
	c.converged(want) // the store kept it; raft replays its log meanwhile
	if err := n1.c.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n1.c.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	// A restart after the snapshot: the store, already past it, is kept.
	rev := n1.st.Revision()
	c.stop(n1)
	c.start(n1, false)
	c.leader()
	c.converged(want)
	if n1.st.Revision() != rev {
		t.Errorf("revision %d after a restart, was %d", n1.st.Revision(), rev)
	}
	n2 := c.add(nil)
	c.join(n2)
	if _, err := c.leader().c.Update(ctx, putTx("after", "v")); err != nil {
		t.Fatal(err)
	}
	want["after"] = "v"
	c.converged(want)
	if n2.st.Revision() != n1.st.Revision() {
		t.Errorf("revisions differ: %d and %d", n1.st.Revision(), n2.st.Revision())
	}
}

// TestStateWithoutRaftLog: a state applied from a raft log that was moved
// away is emptied at Open (its indexes mean nothing to the new log) and
// its records offered as Orphaned; new writes apply, none skipped as a
// replay.
func TestStateWithoutRaftLog(t *testing.T) {
	c := newCluster(t)
	c.real = true
	n := c.add(nil)
	c.leader()
	ctx := context.Background()
	for i := range 5 {
		if _, err := n.c.Update(ctx, putTx(fmt.Sprintf("old%d", i), "v")); err != nil {
			t.Fatal(err)
		}
	}
	c.stop(n)
	if err := os.Rename(filepath.Join(n.dir, "raft"), filepath.Join(n.dir, "raft.moved")); err != nil {
		t.Fatal(err)
	}
	c.start(n, true)
	if got := len(n.c.Orphaned()); got != 5 {
		t.Errorf("%d orphaned records, want 5", got)
	}
	c.leader()
	if _, err := n.c.Update(ctx, putTx("new", "v")); err != nil {
		t.Fatal(err)
	}
	c.converged(map[string]string{"new": "v"})
}

// TestLogFullFailsWrites: a raft log that cannot grow (a full disk) fails
// the write, calls OnError and sets Err.
func TestLogFullFailsWrites(t *testing.T) {
	var reported atomic.Bool
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tuning := testTuning
	tuning.LogMaxSize = 1 << 20
	c, err := Open(context.Background(), Config{
		Name: "n1", DataDir: t.TempDir(), Bind: "127.0.0.1:0", State: StoreState(st), Bootstrap: true,
		OnError: func(error) { reported.Store(true) }, Tuning: tuning,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := string(make([]byte, 64<<10))
	var werr error
	for i := 0; i < 100 && werr == nil; i++ {
		_, werr = c.Update(context.Background(), putTx(fmt.Sprintf("k%d", i), big))
	}
	if werr == nil {
		t.Fatal("100 writes of 64 KiB into a 1 MiB raft log all succeeded")
	}
	if c.Err() == nil || !reported.Load() {
		t.Errorf("after %v: Err %v, OnError called %v", werr, c.Err(), reported.Load())
	}
}
