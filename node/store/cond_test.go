package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadRecordsConds(t *testing.T) {
	s := openStore(t, dbPath(t))
	rev := put(t, s, "labs/a", "1", "labs/a/hosts/h1", "x", "nets/n", "y")
	b, err := s.Read(func(tx *Tx) error {
		if tx.Revision() != rev {
			t.Errorf("tx.Revision = %d, want %d", tx.Revision(), rev)
		}
		tx.Get("labs/a")
		tx.Get("labs/a") // once
		tx.List("labs/a/hosts/")
		tx.Get("missing")
		tx.Put("labs/b", []byte("2"))
		tx.Delete("nets/n")
		tx.Put("k", nil)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Batch{
		Ops:   []Op{{Key: "labs/b", Value: []byte("2")}, {Key: "nets/n"}, {Key: "k", Value: []byte{}}},
		Conds: []Cond{{"labs/a", rev}, {"labs/a/hosts/", rev}, {"missing", rev}},
	}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("Read (-want +got):\n%s", diff)
	}
	if got := s.Revision(); got != rev {
		t.Errorf("Read applied something: revision %d, want %d", got, rev)
	}
	if _, ok := s.Get("labs/b"); ok {
		t.Error("Read applied its put")
	}
	errBoom := errors.New("boom")
	if _, err := s.Read(func(tx *Tx) error { return errBoom }); err != errBoom {
		t.Errorf("Read error = %v, want fn's error as is", err)
	}
}

// TestCondConflicts: a batch whose reads changed since (a put, a delete,
// anything under a listed prefix) is refused whole; one whose reads hold
// applies.
func TestCondConflicts(t *testing.T) {
	tests := []struct {
		name     string
		cond     Cond
		between  func(t *testing.T, s *Store) // another writer, after the read
		conflict bool
	}{
		{"key unchanged", Cond{Prefix: "a/1"}, func(t *testing.T, s *Store) { put(t, s, "a/2", "x") }, false},
		{"key put", Cond{Prefix: "a/1"}, func(t *testing.T, s *Store) { put(t, s, "a/1", "new") }, true},
		{"key deleted", Cond{Prefix: "a/1"}, func(t *testing.T, s *Store) { del(t, s, "a/1") }, true},
		{"missing key created", Cond{Prefix: "a/9"}, func(t *testing.T, s *Store) { put(t, s, "a/9", "x") }, true},
		{"key put to same value", Cond{Prefix: "a/1"}, func(t *testing.T, s *Store) { put(t, s, "a/1", "one") }, false},
		{"prefix: put under it", Cond{Prefix: "a/"}, func(t *testing.T, s *Store) { put(t, s, "a/3", "x") }, true},
		{"prefix: delete under it", Cond{Prefix: "a/"}, func(t *testing.T, s *Store) { del(t, s, "a/2") }, true},
		{"prefix: key equal to it", Cond{Prefix: "a/"}, func(t *testing.T, s *Store) { put(t, s, "a/", "x") }, true},
		{"prefix: write elsewhere", Cond{Prefix: "a/"}, func(t *testing.T, s *Store) { put(t, s, "b/1", "x"); del(t, s, "b/0") }, false},
		{"prefix: delete then put back", Cond{Prefix: "a/"}, func(t *testing.T, s *Store) { del(t, s, "a/2"); put(t, s, "a/2", "two") }, true},
		{"nothing in between", Cond{Prefix: ""}, func(t *testing.T, s *Store) {}, false},
		{"everything", Cond{Prefix: ""}, func(t *testing.T, s *Store) { put(t, s, "z", "x") }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, dbPath(t))
			rev := put(t, s, "a/1", "one", "a/2", "two", "b/0", "zero")
			tc.cond.Rev = rev
			tc.between(t, s)
			before, beforeRev := all(s), s.Revision()
			got, err := s.Apply(Batch{Ops: []Op{{Key: "out", Value: []byte("w")}}, Conds: []Cond{{Prefix: "b/", Rev: s.Revision()}, tc.cond}})
			if tc.conflict {
				if !errors.Is(err, ErrConflict) {
					t.Fatalf("Apply = %d, %v; want ErrConflict", got, err)
				}
				if diff := cmp.Diff(before, all(s)); diff != "" || s.Revision() != beforeRev {
					t.Errorf("a conflicting batch changed the store (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil || got != beforeRev+1 {
				t.Fatalf("Apply = %d, %v; want %d, nil", got, err, beforeRev+1)
			}
			if r, ok := s.Get("out"); !ok || r.Rev != got {
				t.Errorf("Get(out) = %+v, %v", r, ok)
			}
		})
	}
}

// TestLostUpdate is issue 12's lost update on one store: two writers read
// the same state, the second one to apply is refused.
func TestLostUpdate(t *testing.T) {
	s := openStore(t, dbPath(t))
	put(t, s, "hosts/r", "delay=0")
	read := func(v string) Batch {
		b, err := s.Read(func(tx *Tx) error {
			old, _ := tx.Get("hosts/r")
			tx.Put("hosts/r", append(old, ","+v...))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bob, teacher := read("delay=100ms"), read("clear")
	if _, err := s.Apply(bob); err != nil {
		t.Fatalf("first writer: %v", err)
	}
	if _, err := s.Apply(teacher); !errors.Is(err, ErrConflict) {
		t.Fatalf("second writer on stale state: %v, want ErrConflict", err)
	}
	if r, _ := s.Get("hosts/r"); string(r.Value) != "delay=0,delay=100ms" {
		t.Errorf("hosts/r = %q", r.Value)
	}
}

// TestCondOlderThanHistory: a condition older than the history's start
// cannot be checked (a delete may be forgotten) and fails; after a reopen
// the history starts at the revision on disk.
func TestCondOlderThanHistory(t *testing.T) {
	path := dbPath(t)
	s, err := Open(path, Options{History: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	old := put(t, s, "a", "1")
	for _, v := range []string{"1", "2", "3", "4"} {
		put(t, s, "other", v)
	}
	if _, err := s.Apply(Batch{Ops: []Op{{Key: "x", Value: []byte("x")}}, Conds: []Cond{{Prefix: "a", Rev: old}}}); !errors.Is(err, ErrConflict) {
		t.Errorf("cond older than the history: %v, want ErrConflict", err)
	}
	cur := s.Revision()
	if _, err := s.Apply(Batch{Ops: []Op{{Key: "x", Value: []byte("x")}}, Conds: []Cond{{Prefix: "a", Rev: cur - 2}}}); err != nil {
		t.Errorf("cond within the history: %v", err)
	}
	s.Close()
	if s, err = Open(path, Options{History: 3}); err != nil {
		t.Fatal(err)
	}
	cur = s.Revision()
	if _, err := s.Apply(Batch{Ops: []Op{{Key: "y", Value: []byte("y")}}, Conds: []Cond{{Prefix: "a", Rev: cur - 1}}}); !errors.Is(err, ErrConflict) {
		t.Errorf("cond from before the reopen: %v, want ErrConflict", err)
	}
	if _, err := s.Apply(Batch{Ops: []Op{{Key: "y", Value: []byte("y")}}, Conds: []Cond{{Prefix: "a", Rev: cur}}}); err != nil {
		t.Errorf("cond at the reopened revision: %v", err)
	}
}

func TestApplyEmptyAndNoop(t *testing.T) {
	s := openStore(t, dbPath(t))
	rev := put(t, s, "k", "v")
	for _, b := range []Batch{{}, {Conds: []Cond{{Prefix: "k", Rev: rev}}}, {Ops: []Op{{Key: "k", Value: []byte("v")}, {Key: "gone"}}}} {
		if got, err := s.Apply(b); err != nil || got != rev {
			t.Errorf("Apply(%+v) = %d, %v; want %d, nil (no new revision)", b, got, err, rev)
		}
	}
	if _, err := s.Apply(Batch{Conds: []Cond{{Prefix: "k", Rev: rev - 1}}}); !errors.Is(err, ErrConflict) {
		t.Errorf("empty batch with a false cond: %v, want ErrConflict", err)
	}
}

// TestCondsManyKeys: many conditions (one per host read) against a change
// of many keys: exact, whichever key of the change falls under one.
func TestCondsManyKeys(t *testing.T) {
	s := openStore(t, dbPath(t))
	host := func(i int) string { return fmt.Sprintf("labs/l/hosts/h%04d", i) }
	mustUpdate(t, s, func(tx *Tx) error {
		for i := range 1000 {
			tx.Put(host(i), []byte("v"))
		}
		return nil
	})
	read := func() Batch {
		b, err := s.Read(func(tx *Tx) error {
			for i := 0; i < 1000; i += 2 { // the even hosts
				tx.Get(host(i))
			}
			tx.Put("labs/l/note", []byte(fmt.Sprint(s.Revision())))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := read()
	mustUpdate(t, s, func(tx *Tx) error { // every odd host, and others
		for i := 1; i < 1000; i += 2 {
			tx.Put(host(i), []byte("w"))
		}
		tx.Put("labs/m/hosts/h0000", []byte("w"))
		return nil
	})
	if _, err := s.Apply(b); err != nil {
		t.Fatalf("conds on untouched keys: %v", err)
	}
	b = read()
	put(t, s, host(998), "changed")
	if _, err := s.Apply(b); !errors.Is(err, ErrConflict) {
		t.Fatalf("cond on a changed key: %v, want ErrConflict", err)
	}
	// A condition on h001 covers h0010, which it prefixes (a condition is
	// on a prefix; a key's condition is conservative so).
	b = Batch{Ops: []Op{{Key: "x", Value: []byte("x")}}, Conds: []Cond{{Prefix: "labs/l/hosts/h001", Rev: s.Revision()}}}
	put(t, s, "labs/l/hosts/h0010", "changed")
	if _, err := s.Apply(b); !errors.Is(err, ErrConflict) {
		t.Fatalf("cond on a prefix of a changed key: %v, want ErrConflict", err)
	}
	if _, err := s.Apply(Batch{Ops: []Op{{Key: "", Value: []byte("x")}}}); err == nil {
		t.Error("Apply of an empty key: nil error")
	}
}
