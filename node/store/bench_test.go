package store

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// hostBatch is a lab of n hosts as one batch: keys in random order (as a
// map of hosts gives them), values of about 300 bytes.
func hostBatch(n int, fill byte) Batch {
	b := Batch{Ops: make([]Op, n)}
	for i, j := range rand.New(rand.NewPCG(1, 2)).Perm(n) {
		v := make([]byte, 300)
		for k := range v {
			v[k] = fill
		}
		copy(v, fmt.Sprintf("host h%06d", j))
		b.Ops[i] = Op{Key: fmt.Sprintf("labs/big/hosts/h%06d", j), Value: v}
	}
	return b
}

// BenchmarkApply100kHosts applies a batch of 100,000 puts of 300 bytes (a
// 100,000-host lab applied at once): one fsynced bbolt transaction. Every
// iteration writes every host again with another value.
func BenchmarkApply100kHosts(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 100_000
	batches := [2]Batch{hostBatch(n, 'a'), hostBatch(n, 'b')}
	b.SetBytes(n * 300)
	b.ReportAllocs()
	iter := 0
	for b.Loop() {
		rev, err := s.Apply(batches[iter%2])
		iter++
		if err != nil {
			b.Fatal(err)
		}
		if rev != uint64(iter) {
			b.Fatalf("Apply made revision %d, want %d", rev, iter)
		}
	}
}

// BenchmarkApplySmall is one small write (an impairment on one host) to a
// store holding 10,000 hosts: the cost is the fsync.
func BenchmarkApplySmall(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Apply(hostBatch(10_000, 'a')); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	iter := 0
	for b.Loop() {
		iter++
		v := fmt.Appendf(make([]byte, 0, 300), "host h%06d delay %dms", 42, iter)
		if _, err := s.Apply(Batch{Ops: []Op{{Key: "labs/big/hosts/h000042", Value: v}}, Conds: []Cond{{Prefix: "labs/big/hosts/h000042", Rev: s.Revision()}}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen100kHosts opens a store of 100,000 hosts: bbolt's check and
// every record's checksum, the cost of a start-up.
func BenchmarkOpen100kHosts(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Apply(hostBatch(100_000, 'a')); err != nil {
		b.Fatal(err)
	}
	s.Close()
	b.ReportAllocs()
	for b.Loop() {
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(s.recs) != 100_000 {
			b.Fatalf("%d records", len(s.recs))
		}
		s.Close()
	}
}
