package raftlog

import (
	"bytes"
	"testing"
)

func TestStableStore(t *testing.T) {
	s := openTest(t, Options{})
	// Missing keys: an empty slice and 0, no error, as the interface says.
	v, err := s.Get([]byte("LastVoteCand"))
	if err != nil || v == nil || len(v) != 0 {
		t.Errorf("Get(missing) = %q (nil %t), %v; want an empty slice", v, v == nil, err)
	}
	n, err := s.GetUint64([]byte("CurrentTerm"))
	if err != nil || n != 0 {
		t.Errorf("GetUint64(missing) = %d, %v; want 0", n, err)
	}

	if err := s.Set([]byte("LastVoteCand"), []byte("node-2")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 1<<40+5); err != nil {
		t.Fatal(err)
	}
	v, err = s.Get([]byte("LastVoteCand"))
	if err != nil || string(v) != "node-2" {
		t.Errorf("Get = %q, %v; want node-2", v, err)
	}
	v[0] = 'X' // the caller owns the copy
	if v, _ := s.Get([]byte("LastVoteCand")); string(v) != "node-2" {
		t.Errorf("Get after changing a returned slice = %q", v)
	}
	if n, err := s.GetUint64([]byte("CurrentTerm")); err != nil || n != 1<<40+5 {
		t.Errorf("GetUint64 = %d, %v", n, err)
	}

	// Overwrite, and an empty value.
	if err := s.SetUint64([]byte("CurrentTerm"), 6); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.GetUint64([]byte("CurrentTerm")); n != 6 {
		t.Errorf("GetUint64 after overwrite = %d, want 6", n)
	}
	if err := s.Set([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get([]byte("empty")); err != nil || !bytes.Equal(v, []byte{}) {
		t.Errorf("Get(empty) = %q, %v", v, err)
	}

	// A value of the wrong length for GetUint64 is an error, not a guess.
	if _, err := s.GetUint64([]byte("LastVoteCand")); err == nil {
		t.Error("GetUint64 of a 6-byte value succeeded")
	}
}
