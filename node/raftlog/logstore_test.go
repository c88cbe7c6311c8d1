package raftlog

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "raft.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testLog(i uint64) *raft.Log {
	return &raft.Log{
		Index:      i,
		Term:       1 + i/10,
		Type:       raft.LogCommand,
		Data:       fmt.Appendf(nil, "entry %d", i),
		AppendedAt: time.Unix(1_764_000_000+int64(i), 0),
	}
}

func logs(lo, hi uint64) []*raft.Log {
	var out []*raft.Log
	for i := lo; i <= hi; i++ {
		out = append(out, testLog(i))
	}
	return out
}

// wantRange checks FirstIndex and LastIndex, and that every index in between
// reads back as written.
func wantRange(t *testing.T, s *Store, first, last uint64) {
	t.Helper()
	if got, err := s.FirstIndex(); err != nil || got != first {
		t.Errorf("FirstIndex = %d, %v; want %d", got, err, first)
	}
	if got, err := s.LastIndex(); err != nil || got != last {
		t.Errorf("LastIndex = %d, %v; want %d", got, err, last)
	}
	for i := first; i <= last && first != 0; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		if diff := cmp.Diff(*testLog(i), l); diff != "" {
			t.Fatalf("GetLog(%d) (-want +got):\n%s", i, diff)
		}
	}
}

func TestEmptyStore(t *testing.T) {
	s := openTest(t, Options{})
	wantRange(t, s, 0, 0)
	var l raft.Log
	if err := s.GetLog(1, &l); err != raft.ErrLogNotFound {
		t.Errorf("GetLog on an empty store = %v, want raft.ErrLogNotFound", err)
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err = %v", err)
	}
}

func TestStoreAndGet(t *testing.T) {
	s := openTest(t, Options{})
	if err := s.StoreLog(testLog(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(logs(2, 100)); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(nil); err != nil {
		t.Fatalf("StoreLogs(nil): %v", err)
	}
	wantRange(t, s, 1, 100)
	var l raft.Log
	for _, i := range []uint64{0, 101, 1 << 63} {
		if err := s.GetLog(i, &l); err != raft.ErrLogNotFound {
			t.Errorf("GetLog(%d) = %v, want raft.ErrLogNotFound", i, err)
		}
	}
	// Indexes past 255 and 65535 check that keys sort as numbers.
	if err := s.StoreLogs(logs(101, 70000)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LastIndex(); got != 70000 {
		t.Errorf("LastIndex = %d, want 70000", got)
	}
	// Replacing an entry (a follower overwriting a conflicting one after
	// truncation) reads back the new one.
	repl := testLog(50)
	repl.Term, repl.Data = 99, []byte("new")
	if err := s.StoreLog(repl); err != nil {
		t.Fatal(err)
	}
	if err := s.GetLog(50, &l); err != nil || l.Term != 99 || string(l.Data) != "new" {
		t.Errorf("GetLog(50) after replace = %+v, %v", l, err)
	}
}

// A gap between batches is allowed: the store is not a
// raft.MonotonicLogStore, and raft relies on gaps after a snapshot restore.
func TestGap(t *testing.T) {
	s := openTest(t, Options{})
	if err := s.StoreLogs(logs(1, 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(logs(10, 12)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LastIndex(); got != 12 {
		t.Errorf("LastIndex = %d, want 12", got)
	}
	var l raft.Log
	if err := s.GetLog(5, &l); err != raft.ErrLogNotFound {
		t.Errorf("GetLog in the gap = %v, want raft.ErrLogNotFound", err)
	}
	if _, ok := any(s).(raft.MonotonicLogStore); ok {
		t.Error("store claims to be monotonic")
	}
}

func TestDeleteRange(t *testing.T) {
	for _, tc := range []struct {
		name        string
		lo, hi      uint64
		first, last uint64
	}{
		{"compact prefix", 1, 900, 901, 1000},
		{"truncate suffix", 950, 1000, 1, 949},
		{"past the end", 990, 5000, 1, 989},
		{"everything", 1, 1000, 0, 0},
		{"nothing (lo > hi)", 10, 9, 1, 1000},
		{"before the start", 0, 0, 1, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, Options{})
			if err := s.StoreLogs(logs(1, 1000)); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRange(tc.lo, tc.hi); err != nil {
				t.Fatal(err)
			}
			wantRange(t, s, tc.first, tc.last)
		})
	}
	t.Run("middle", func(t *testing.T) {
		s := openTest(t, Options{})
		if err := s.StoreLogs(logs(1, 1000)); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRange(300, 700); err != nil {
			t.Fatal(err)
		}
		if first, _ := s.FirstIndex(); first != 1 {
			t.Errorf("FirstIndex = %d, want 1", first)
		}
		if last, _ := s.LastIndex(); last != 1000 {
			t.Errorf("LastIndex = %d, want 1000", last)
		}
		var l raft.Log
		for _, i := range []uint64{300, 500, 700} {
			if err := s.GetLog(i, &l); err != raft.ErrLogNotFound {
				t.Errorf("GetLog(%d) after delete = %v, want raft.ErrLogNotFound", i, err)
			}
		}
		for _, i := range []uint64{1, 299, 701, 1000} {
			if err := s.GetLog(i, &l); err != nil || l.Index != i {
				t.Errorf("GetLog(%d) = index %d, %v", i, l.Index, err)
			}
		}
	})
}

// Entries survive Close and Open (the daemon restarting).
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(logs(1, 50)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{Check: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wantRange(t, s, 1, 50)
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Errorf("GetUint64 after reopen = %d, %v; want 7", v, err)
	}
}

func TestClose(t *testing.T) {
	s := openTest(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	var l raft.Log
	for name, err := range map[string]error{
		"StoreLog":    s.StoreLog(testLog(1)),
		"DeleteRange": s.DeleteRange(1, 2),
		"GetLog":      s.GetLog(1, &l),
		"Set":         s.Set([]byte("k"), []byte("v")),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if _, err := s.LastIndex(); !errors.Is(err, ErrClosed) {
		t.Errorf("LastIndex after Close = %v, want ErrClosed", err)
	}
}

// A write that cannot be persisted (here: the file may not grow, as on a
// full disk) returns its error, is not half-applied, and is remembered by
// Err and reported to OnError.
func TestWriteFailureIsReported(t *testing.T) {
	var reported []error
	s := openTest(t, Options{MaxSize: 1 << 20, OnError: func(err error) { reported = append(reported, err) }})
	if err := s.StoreLogs(logs(1, 10)); err != nil {
		t.Fatal(err)
	}
	big := make([]*raft.Log, 0, 64)
	for i := uint64(11); i < 11+64; i++ {
		l := testLog(i)
		l.Data = make([]byte, 64<<10)
		big = append(big, l)
	}
	err := s.StoreLogs(big)
	if err == nil {
		t.Fatal("StoreLogs past MaxSize succeeded")
	}
	t.Logf("error: %v", err)
	if got, _ := s.LastIndex(); got != 10 {
		t.Errorf("LastIndex after the failed batch = %d, want 10 (all or nothing)", got)
	}
	if s.Err() == nil || s.Err().Error() != err.Error() {
		t.Errorf("Err = %v, want %v", s.Err(), err)
	}
	if len(reported) != 1 {
		t.Errorf("OnError called %d times, want 1", len(reported))
	}
	// Smaller writes still go through (raft decides what to do next); Err
	// keeps the failure.
	if err := s.StoreLog(testLog(11)); err != nil {
		t.Errorf("StoreLog after the failure: %v", err)
	}
	if s.Err() == nil {
		t.Error("Err forgot the failure")
	}
}
