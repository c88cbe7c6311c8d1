package follow

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/store"
)

// The same scenarios over node/store itself: a control node's store and
// members' persisted replicas in temporary directories.

func openStore(t testing.TB, path string, history int) *store.Store {
	t.Helper()
	s, err := store.Open(path, store.Options{History: history})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func storePut(t testing.TB, s *store.Store, kv ...string) {
	t.Helper()
	if _, err := s.Update(func(tx *store.Tx) error {
		for i := 0; i+1 < len(kv); i += 2 {
			tx.Put(kv[i], []byte(kv[i+1]))
		}
		return nil
	}); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func storeDel(t testing.TB, s *store.Store, keys ...string) {
	t.Helper()
	if _, err := s.Update(func(tx *store.Tx) error {
		for _, k := range keys {
			tx.Delete(k)
		}
		return nil
	}); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func storeDump(s *store.Store) string {
	recs, rev := s.Snapshot()
	var b strings.Builder
	fmt.Fprintf(&b, "revision %d\n", rev)
	for _, r := range recs {
		fmt.Fprintf(&b, "%s=%s@%d\n", r.Key, r.Value, r.Rev)
	}
	return b.String()
}

func waitSameStore(t testing.TB, src, rep *store.Store) {
	t.Helper()
	var want, got string
	deadline := time.Now().Add(20 * time.Second)
	for {
		want, got = storeDump(src), storeDump(rep)
		if want == got {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica did not converge:\nwant:\n%s\ngot:\n%s", want, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestStoreFollowAndRestart(t *testing.T) {
	dir := t.TempDir()
	src := openStore(t, filepath.Join(dir, "control.db"), 5)
	for i := range 1500 {
		if i%500 == 0 {
			storePut(t, src, fmt.Sprintf("k/%04d", i), "v", "empty", "")
		} else {
			storePut(t, src, fmt.Sprintf("k/%04d", i), "v")
		}
	}
	cp := startControl(t, "c1", src, "127.0.0.1:0")
	cands := fixed(cp.candidate())
	path := filepath.Join(dir, "member.db")
	rep := openStore(t, path, 0)
	_, stop := startFollower(t, rep, cands, newDialer(t), nil)
	waitSameStore(t, src, rep)
	storePut(t, src, "k/0001", "changed")
	storeDel(t, src, "k/0002")
	waitSameStore(t, src, rep)

	// The member's labd stops and starts again: its replica is on disk.
	stop()
	if err := rep.Close(); err != nil {
		t.Fatal(err)
	}
	storePut(t, src, "after", "restart")
	rep = openStore(t, path, 0)
	if got := rep.Revision(); got != src.Revision()-1 {
		t.Fatalf("reopened replica at revision %d, want %d", got, src.Revision()-1)
	}
	startFollower(t, rep, cands, newDialer(t), nil)
	waitSameStore(t, src, rep)

	// The control node goes away; more writes than its history keeps.
	cp.stop()
	for i := range 10 {
		storePut(t, src, fmt.Sprint("late/", i), "v")
	}
	storeDel(t, src, "k/0003")
	startControl(t, "c1", src, cp.addr)
	waitSameStore(t, src, rep)
}

// TestStoreReplicaDiskFull: a replica whose file cannot grow stops taking
// changes (ReplicaFailed, once) and a reopened one is re-synced.
func TestStoreReplicaDiskFull(t *testing.T) {
	dir := t.TempDir()
	src := openStore(t, filepath.Join(dir, "control.db"), 100)
	storePut(t, src, "a", "1")
	cp := startControl(t, "c1", src, "127.0.0.1:0")
	full, err := store.Open(filepath.Join(dir, "full.db"), store.Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { full.Close() })
	var current atomic.Pointer[store.Store]
	current.Store(full)
	failed := make(chan error, 10)
	startFollower(t, nil, fixed(cp.candidate()), newDialer(t), func(c *Config) {
		c.Replica = func() Replica { return current.Load() }
		c.ReplicaFailed = func(err error) { failed <- err }
	})
	waitSameStore(t, src, full)

	big := strings.Repeat("x", 256<<10)
	for i := range 8 { // 2 MiB in all: more than the replica's file may hold
		storePut(t, src, fmt.Sprint("big/", i), big)
	}
	select {
	case err := <-failed:
		if full.Err() == nil {
			t.Errorf("ReplicaFailed(%v) with a healthy replica", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("ReplicaFailed not called")
	}
	stuck := full.Revision()
	storePut(t, src, "after", "full")
	time.Sleep(50 * time.Millisecond)
	if got := full.Revision(); got != stuck {
		t.Errorf("the failed replica moved from revision %d to %d", stuck, got)
	}
	select {
	case err := <-failed:
		t.Errorf("ReplicaFailed called again: %v", err)
	default:
	}

	// The daemon reopens the replica (here: on a disk with room).
	current.Store(openStore(t, filepath.Join(dir, "roomy.db"), 0))
	waitSameStore(t, src, current.Load())
}
