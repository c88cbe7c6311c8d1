package follow

import (
	"fmt"
	"path/filepath"
	"strings"
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
