package raftlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

func TestEntryRoundTrip(t *testing.T) {
	for _, l := range []raft.Log{
		{},
		{Index: 1, Term: 1, Type: raft.LogNoop},
		{Index: 7, Term: 3, Type: raft.LogCommand, Data: []byte("set a=1"), Extensions: []byte{0xff}},
		{Index: 1<<64 - 1, Term: 1<<64 - 1, Type: raft.LogConfiguration, Data: bytes.Repeat([]byte{0}, 300)},
		{Index: 9, Term: 2, Type: raft.LogBarrier, AppendedAt: time.Unix(1_764_000_000, 123_456_789)},
		{Index: 10, Term: 2, AppendedAt: time.Unix(-5, 1)}, // before the epoch
	} {
		b, err := encodeEntry(nil, &l)
		if err != nil {
			t.Fatalf("encode %+v: %v", l, err)
		}
		var got raft.Log
		if err := decodeEntry(b, &got); err != nil {
			t.Fatalf("decode %+v: %v", l, err)
		}
		if diff := cmp.Diff(l, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestEntryDecodeRejects(t *testing.T) {
	good, err := encodeEntry(nil, &raft.Log{Index: 5, Term: 2, Data: []byte("hello"), Extensions: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	// reseal recomputes the checksum, so the check behind it is reached.
	reseal := func(b []byte) []byte {
		body := b[:len(b)-crcLen]
		return binary.BigEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli))
	}
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"short":          good[:entryFixedLen-1],
		"flipped data":   mutate(func(b []byte) { b[35] ^= 1 }),
		"flipped crc":    mutate(func(b []byte) { b[len(b)-1] ^= 1 }),
		"version":        reseal(mutate(func(b []byte) { b[0] = 2 })),
		"nanoseconds":    reseal(mutate(func(b []byte) { binary.BigEndian.PutUint32(b[26:], 1e9) })),
		"data too long":  reseal(mutate(func(b []byte) { binary.BigEndian.PutUint32(b[30:], 1000) })),
		"ext too long":   reseal(mutate(func(b []byte) { binary.BigEndian.PutUint32(b[39:], 2) })),
		"trailing bytes": reseal(append(append([]byte(nil), good[:len(good)-crcLen]...), 0, 0, 0, 0, 0)),
	} {
		var l raft.Log
		err := decodeEntry(b, &l)
		if !errors.Is(err, errEntry) {
			t.Errorf("%s: decode = %v, want a malformed-entry error", name, err)
		}
	}
}

// FuzzDecodeEntry feeds untrusted bytes (what a damaged disk returns) to the
// decoder: it must never panic, and what it accepts must encode back to the
// same bytes. With seal set the fuzzer's bytes get a correct checksum
// appended, so the checks behind the checksum are reached too.
func FuzzDecodeEntry(f *testing.F) {
	for _, l := range []raft.Log{
		{},
		{Index: 7, Term: 3, Data: []byte("set a=1"), Extensions: []byte{0xff}},
		{Index: 9, Term: 2, Type: raft.LogBarrier, AppendedAt: time.Unix(1_764_000_000, 5)},
	} {
		b, err := encodeEntry(nil, &l)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b[:len(b)-crcLen], true)
	}
	f.Add([]byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, b []byte, seal bool) {
		if seal {
			b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
		}
		var l raft.Log
		if err := decodeEntry(b, &l); err != nil {
			if !errors.Is(err, errEntry) {
				t.Fatalf("decode error %v is not a malformed-entry error", err)
			}
			return
		}
		again, err := encodeEntry(nil, &l)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, decoded from %x", again, b)
		}
	})
}
