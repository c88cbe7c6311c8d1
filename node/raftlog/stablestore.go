package raftlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

var _ raft.StableStore = (*Store)(nil)

// Values of the stable bucket are the value followed by a CRC-32C of key
// and value, so a changed byte in the current term or the last vote (what
// raft must never forget: "Persistent state on all servers", figure 2 of the
// Raft paper) is reported, not believed, and a value moved under another key
// fails too.
func stableSum(key, val []byte) uint32 {
	return crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, val)
}

// Set implements raft.StableStore, in one fsynced transaction.
func (s *Store) Set(key, val []byte) error {
	v := make([]byte, 0, len(val)+crcLen)
	v = append(v, val...)
	v = binary.BigEndian.AppendUint32(v, stableSum(key, val))
	err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStable).Put(key, v)
	})
	if err != nil {
		return s.fail(fmt.Errorf("raftlog: set %q in %s: %w", key, s.path, err))
	}
	return nil
}

// Get implements raft.StableStore: "Get returns the value for key, or an
// empty byte slice if key was not found." (raft v1.6.0 also accepts an error
// whose text is "not found", as raft-boltdb returns; we follow the interface
// doc.) The value returned is a copy.
func (s *Store) Get(key []byte) ([]byte, error) {
	var out []byte
	var corrupt error
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketStable).Get(key)
		if v == nil {
			return nil
		}
		val, err := stableValue(key, v)
		if err != nil {
			corrupt = err
			return nil
		}
		out = append([]byte{}, val...)
		return nil
	})
	switch {
	case err != nil:
		return nil, s.fail(fmt.Errorf("raftlog: get %q in %s: %w", key, s.path, err))
	case corrupt != nil:
		return nil, s.fail(s.corruptStable(key, corrupt))
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// SetUint64 implements raft.StableStore; the value is 8 bytes, big-endian.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore: "GetUint64 returns the uint64 value
// for key, or 0 if key was not found."
func (s *Store) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	switch {
	case err != nil:
		return 0, err
	case len(v) == 0:
		return 0, nil
	case len(v) != 8:
		return 0, s.fail(s.corruptStable(key, fmt.Errorf("%d bytes, want 8", len(v))))
	}
	return binary.BigEndian.Uint64(v), nil
}

// stableValue checks a stored value v of key and returns the value in it
// (a slice of v).
func stableValue(key, v []byte) ([]byte, error) {
	if len(v) < crcLen {
		return nil, fmt.Errorf("%d bytes, shorter than its checksum", len(v))
	}
	val, sum := v[:len(v)-crcLen], binary.BigEndian.Uint32(v[len(v)-crcLen:])
	if got := stableSum(key, val); got != sum {
		return nil, fmt.Errorf("checksum %08x, stored %08x", got, sum)
	}
	return val, nil
}

func (s *Store) corruptStable(key []byte, cause error) error {
	return fmt.Errorf("raftlog: %s: %w (stable value %q: %v); %s", s.path, ErrCorrupt, key, cause, remedy)
}
