package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// filled returns the path of a closed store holding entries 1..n and a term.
func filled(t *testing.T, n uint64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raft.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(logs(1, n)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawUpdate changes the file with bbolt directly, under the store.
func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// wantCorruptEntry checks the store at path: GetLog(index) fails with an
// error naming the index and the remedy while its neighbours read, and Open
// with Check refuses the file with that error.
func wantCorruptEntry(t *testing.T, path string, index uint64) {
	t.Helper()
	wantErr := func(what string, err error) {
		t.Helper()
		var ce *CorruptEntryError
		if !errors.As(err, &ce) || ce.Index != index || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s = %v, want a *CorruptEntryError for index %d", what, err, index)
		}
		t.Logf("%s: %v", what, err)
		for _, want := range []string{path, fmt.Sprintf("log entry %d is corrupt", index), "re-sync from the control plane"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	}
	var reported error
	s, err := Open(path, Options{OnError: func(err error) { reported = err }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var l raft.Log
	wantErr(fmt.Sprintf("GetLog(%d)", index), s.GetLog(index, &l))
	if s.Err() == nil || reported == nil {
		t.Errorf("corruption not reported: Err = %v, OnError got %v", s.Err(), reported)
	}
	for _, i := range []uint64{index - 1, index + 1} {
		if err := s.GetLog(i, &l); err != nil {
			t.Errorf("GetLog(%d) next to the corrupt entry: %v", i, err)
		}
	}
	s.Close()

	s, err = Open(path, Options{Check: true})
	if err == nil {
		s.Close()
	}
	wantErr("Open with Check", err)
}

func TestCorruptEntryFlippedWithBbolt(t *testing.T) {
	path := filled(t, 100)
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLogs)
		v := bytes.Clone(b.Get(indexKey(42)))
		v[len(v)/2] ^= 0x01
		return b.Put(indexKey(42), v)
	})
	wantCorruptEntry(t, path, 42)
}

// A flipped bit in the file itself (bbolt has no checksum over its pages,
// so its check does not see it; ours does).
func TestCorruptEntryFlippedOnDisk(t *testing.T) {
	path := filled(t, 100)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// "entry 42" followed by the zero length of no extensions is unique.
	at := bytes.Index(b, []byte("entry 42\x00\x00\x00\x00"))
	if at < 0 || bytes.Count(b, []byte("entry 42\x00\x00\x00\x00")) != 1 {
		t.Fatal("entry 42 not found once in the file")
	}
	b[at+6] ^= 0x04 // '4' becomes '0'
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	wantCorruptEntry(t, path, 42)
}

// An intact entry under another entry's key is corrupt too.
func TestCorruptEntryMisplaced(t *testing.T) {
	path := filled(t, 100)
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLogs)
		return b.Put(indexKey(42), bytes.Clone(b.Get(indexKey(41))))
	})
	wantCorruptEntry(t, path, 42)
}

func TestCorruptStableValue(t *testing.T) {
	path := filled(t, 1)
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStable)
		v := bytes.Clone(b.Get([]byte("CurrentTerm")))
		v[7] ^= 0x01 // term 3 becomes 2
		return b.Put([]byte("CurrentTerm"), v)
	})
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.GetUint64([]byte("CurrentTerm"))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "re-sync") {
		t.Fatalf("GetUint64 of a flipped term = %d, %v; want a corruption error", n, err)
	}
	t.Logf("GetUint64: %v", err)
	s.Close()
	if _, err := Open(path, Options{Check: true}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `"CurrentTerm"`) {
		t.Errorf("Open with Check = %v, want the corrupt term named", err)
	}
}

// A file that is not a bbolt file, or whose pages are damaged, is refused
// at Open with one error naming the file and what to do.
func TestCorruptFile(t *testing.T) {
	garbage := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "raft.db")
		if err := os.WriteFile(path, bytes.Repeat([]byte("not a bbolt file "), 1000), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// damagedPages zeroes the file after its two meta pages and first
	// pages, where the logs bucket's tree lives.
	damagedPages := func(t *testing.T) string {
		path := filled(t, 2000)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		page := os.Getpagesize()
		for i := 4 * page; i < len(b) && i < 4*page+page/2; i++ {
			b[i] = 0xff
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for name, mk := range map[string]func(*testing.T) string{
		"not bbolt":     garbage,
		"damaged pages": damagedPages,
	} {
		t.Run(name, func(t *testing.T) {
			path := mk(t)
			s, err := Open(path, Options{Check: true})
			if err == nil {
				s.Close()
				t.Fatal("Open of a corrupt file succeeded")
			}
			t.Logf("Open: %v", err)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error is not ErrCorrupt: %v", err)
			}
			for _, want := range []string{path, "move it away", "re-sync from the control plane"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q", want)
				}
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("error is more than one line")
			}
		})
	}
}

// A leaf page damaged after Open's check (here: Open without the check)
// fails the operations that meet it with ErrCorrupt; bbolt's panic does not
// reach raft.
func TestDamagedPageAfterOpen(t *testing.T) {
	path := filled(t, 2000)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite the header (id, flags, count) of the leaf holding 1000.
	at := bytes.Index(b, []byte("entry 1000\x00\x00\x00\x00"))
	if at < 0 {
		t.Fatal("entry 1000 not found in the file")
	}
	page := os.Getpagesize()
	start := at / page * page
	for i := start; i < start+16; i++ {
		b[i] = 0xff
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open without the check: %v", err)
	}
	defer s.Close()
	var l raft.Log
	err = s.GetLog(1000, &l)
	t.Logf("GetLog(1000): %v", err)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "re-sync from the control plane") {
		t.Fatalf("GetLog on a damaged page = %v, want an ErrCorrupt error", err)
	}
	if s.Err() == nil {
		t.Error("Err did not record the damage")
	}
	if err := s.GetLog(1, &l); err != nil {
		t.Errorf("GetLog(1) on an intact page: %v", err)
	}
	s.Close()
	if _, err := Open(path, Options{Check: true}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open with the check = %v, want ErrCorrupt", err)
	}
}
