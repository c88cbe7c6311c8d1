package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSince(t *testing.T) {
	s, err := Open(dbPath(t), Options{History: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Since(0); err != nil || len(got) != 0 {
		t.Errorf("Since(0) of an empty store = %v, %v", got, err)
	}
	var want []Change
	for i := 1; i <= 6; i++ {
		k := fmt.Sprintf("k%d", i)
		rev := put(t, s, k, "v")
		want = append(want, Change{Rev: rev, Ops: []Op{{Key: k, Value: []byte("v")}}})
	}
	// History 4 keeps revisions 3..6.
	for rev := uint64(2); rev <= 6; rev++ {
		got, err := s.Since(rev)
		if err != nil {
			t.Fatalf("Since(%d): %v", rev, err)
		}
		if diff := cmp.Diff(want[rev:], got, cmp.Comparer(func(a, b []Op) bool { return cmp.Equal(a, b) })); diff != "" {
			t.Errorf("Since(%d) (-want +got):\n%s", rev, diff)
		}
	}
	for _, rev := range []uint64{0, 1} {
		if _, err := s.Since(rev); !errors.Is(err, ErrCompacted) {
			t.Errorf("Since(%d) = %v, want ErrCompacted", rev, err)
		}
	}
	if _, err := s.Since(7); !errors.Is(err, ErrCompacted) {
		t.Errorf("Since(7), ahead of the store: %v, want ErrCompacted", err)
	}
	// A delete is in the history as an op without value; a no-op is not.
	del(t, s, "k1")
	del(t, s, "k1")
	got, err := s.Since(6)
	if err != nil || len(got) != 1 || !cmp.Equal(got[0], Change{Rev: 7, Ops: []Op{{Key: "k1"}}}) {
		t.Errorf("Since(6) after a delete = %+v, %v", got, err)
	}
}

// TestFollowerReplica feeds one store's changes into another, as a member
// follows the control plane: the replica ends identical.
func TestFollowerReplica(t *testing.T) {
	leader, member := openStore(t, dbPath(t)), openStore(t, dbPath(t))
	put(t, leader, "a", "1", "b", "2")
	recs, rev := leader.Snapshot()
	if err := member.Restore(recs, rev, 0); err != nil {
		t.Fatal(err)
	}
	put(t, leader, "c", "3")
	del(t, leader, "a")
	put(t, leader, "b", "")
	changes, err := leader.Since(rev)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if err := member.ApplyChange(c); err != nil {
			t.Fatalf("ApplyChange(%d): %v", c.Rev, err)
		}
	}
	// A change again (a resumed stream) is skipped.
	if err := member.ApplyChange(changes[0]); err != nil {
		t.Errorf("ApplyChange of an old change: %v", err)
	}
	if diff := cmp.Diff(all(leader), all(member)); diff != "" || member.Revision() != leader.Revision() {
		t.Errorf("replica differs (-leader +member):\n%s", diff)
	}
	member = reopen(t, member)
	if diff := cmp.Diff(all(leader), all(member)); diff != "" || member.Revision() != leader.Revision() {
		t.Errorf("replica differs after reopen (-leader +member):\n%s", diff)
	}
	// A gap is an error and changes nothing.
	if err := member.ApplyChange(Change{Rev: member.Revision() + 2, Ops: []Op{{Key: "z", Value: []byte("z")}}}); err == nil {
		t.Error("ApplyChange with a gap: nil error")
	}
	if _, ok := member.Get("z"); ok {
		t.Error("a change after a gap was applied")
	}
	if err := member.ApplyChange(Change{Rev: member.Revision() + 1, Ops: []Op{{Key: ""}}}); err == nil {
		t.Error("ApplyChange with an empty key: nil error")
	}
}

func TestSnapshotRestore(t *testing.T) {
	path := dbPath(t)
	s := openStore(t, path)
	put(t, s, "old/1", "x", "keep", "v")
	recs := []Record{{Key: "keep", Value: []byte("new"), Rev: 40}, {Key: "n/1", Value: []byte{}, Rev: 42}, {Key: "n/2", Value: []byte("2"), Rev: 3}}
	if err := s.Restore(recs, 42, 100); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		t.Helper()
		got, rev := s.Snapshot()
		want := []Record{recs[0], recs[1], recs[2]}
		sortRecords(want)
		if diff := cmp.Diff(want, got); diff != "" || rev != 42 || s.AppliedIndex() != 100 {
			t.Errorf("after Restore: rev %d index %d (-want +got):\n%s", rev, s.AppliedIndex(), diff)
		}
	}
	check(s)
	if _, err := s.Since(41); !errors.Is(err, ErrCompacted) {
		t.Errorf("Since(41) after Restore at 42: %v, want ErrCompacted", err)
	}
	if got, err := s.Since(42); err != nil || len(got) != 0 {
		t.Errorf("Since(42) after Restore = %v, %v", got, err)
	}
	s = reopen(t, s)
	check(s)
	if rev := put(t, s, "after", "x"); rev != 43 {
		t.Errorf("first write after Restore made revision %d, want 43", rev)
	}
	if err := s.Restore([]Record{{Key: "x", Value: []byte("x"), Rev: 50}}, 49, 1); err == nil {
		t.Error("Restore of a record newer than the snapshot: nil error")
	}
	if err := s.Restore([]Record{{Key: "", Value: []byte("x")}}, 49, 1); err == nil {
		t.Error("Restore of an empty key: nil error")
	}
	if r, ok := s.Get("after"); !ok || r.Rev != 43 {
		t.Errorf("a refused Restore changed the store: %+v, %v", r, ok)
	}
}

func TestApplyIndexed(t *testing.T) {
	path := dbPath(t)
	s := openStore(t, path)
	b := func(k, v string) Batch { return Batch{Ops: []Op{{Key: k, Value: []byte(v)}}} }
	if rev, err := s.ApplyIndexed(5, b("a", "1")); err != nil || rev != 1 || s.AppliedIndex() != 5 {
		t.Fatalf("ApplyIndexed(5) = %d, %v; index %d", rev, err, s.AppliedIndex())
	}
	// A conflict and a no-op still advance the applied index.
	if _, err := s.ApplyIndexed(6, Batch{Ops: b("x", "x").Ops, Conds: []Cond{{Prefix: "a", Rev: 0}}}); !errors.Is(err, ErrConflict) {
		t.Errorf("conflicting ApplyIndexed: %v", err)
	}
	if rev, err := s.ApplyIndexed(7, b("a", "1")); err != nil || rev != 1 {
		t.Errorf("no-op ApplyIndexed = %d, %v", rev, err)
	}
	if s.AppliedIndex() != 7 {
		t.Errorf("AppliedIndex = %d, want 7", s.AppliedIndex())
	}
	s = reopen(t, s)
	if s.AppliedIndex() != 7 || s.Revision() != 1 {
		t.Errorf("after reopen: index %d revision %d, want 7 and 1", s.AppliedIndex(), s.Revision())
	}
	// Replay after a restart: entries up to the applied index are skipped.
	for i := uint64(1); i <= 7; i++ {
		if rev, err := s.ApplyIndexed(i, b("a", fmt.Sprint("replayed", i))); err != nil || rev != 1 {
			t.Errorf("replayed ApplyIndexed(%d) = %d, %v; want 1, nil", i, rev, err)
		}
	}
	if r, _ := s.Get("a"); string(r.Value) != "1" {
		t.Errorf("a replayed entry was applied: a = %q", r.Value)
	}
	if rev, err := s.ApplyIndexed(8, b("a", "2")); err != nil || rev != 2 || s.AppliedIndex() != 8 {
		t.Errorf("ApplyIndexed(8) = %d, %v; index %d", rev, err, s.AppliedIndex())
	}
	// Apply keeps the applied index.
	put(t, s, "b", "1")
	if s.AppliedIndex() != 8 {
		t.Errorf("Apply moved the applied index to %d", s.AppliedIndex())
	}
}
