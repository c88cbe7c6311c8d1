package raftlog

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// benchEntries returns n log entries from index lo with ~300 bytes of data,
// about the size of one labnet record write.
func benchEntries(lo uint64, n int) []*raft.Log {
	out := make([]*raft.Log, n)
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte(i)
	}
	now := time.Now()
	for i := range out {
		out[i] = &raft.Log{Index: lo + uint64(i), Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: now}
	}
	return out
}

// cpuTime is the process's user+system CPU time: the benchmarks report it
// per op beside wall time, which an fsync dominates.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStoreLogs measures one StoreLogs call (one bbolt transaction,
// fsynced on commit, as raft's leader and followers do per batch).
func BenchmarkStoreLogs(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := openTest(b, Options{})
			next := uint64(1)
			cpu := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				if err := s.StoreLogs(benchEntries(next, batch)); err != nil {
					b.Fatal(err)
				}
				next += uint64(batch)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/entry")
		})
	}
}

// BenchmarkGetLog measures reading one entry back (decode and checksum).
func BenchmarkGetLog(b *testing.B) {
	s := openTest(b, Options{})
	const n = 10_000
	for i := uint64(1); i <= n; i += 500 {
		if err := s.StoreLogs(benchEntries(i, 500)); err != nil {
			b.Fatal(err)
		}
	}
	var l raft.Log
	i := uint64(0)
	for b.Loop() {
		if err := s.GetLog(1+i%n, &l); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkOpenCheck measures Open with Check (bbolt's check and every
// checksum) of a file holding 10,000 entries of ~300 bytes: the start-up
// cost of a control node whose log holds 10,000 entries.
func BenchmarkOpenCheck(b *testing.B) {
	s := openTest(b, Options{})
	for i := uint64(1); i <= 10_000; i += 500 {
		if err := s.StoreLogs(benchEntries(i, 500)); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	for b.Loop() {
		s, err := Open(s.Path(), Options{Check: true})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkFileSize writes 10,000 entries of ~300 bytes in batches of 64,
// then compacts the first 9,000 as raft does after a snapshot, and reports
// the file's size after each step. bbolt never shrinks its file: deleted
// entries' pages go to its freelist and are reused by later writes, so the
// size stays and the free pages say how much of it is reusable.
func BenchmarkFileSize(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		s := openTest(b, Options{})
		b.StartTimer()
		const n, batch = 10_000, 64
		for i := uint64(1); i <= n; i += batch {
			if err := s.StoreLogs(benchEntries(i, min(batch, int(n-i+1)))); err != nil {
				b.Fatal(err)
			}
		}
		full, fullFree, fullUsed := fileSize(b, s), freePages(s), usedBytes(b, s)
		if err := s.DeleteRange(1, 9000); err != nil {
			b.Fatal(err)
		}
		compacted := fileSize(b, s)
		b.ReportMetric(float64(full), "bytes-after-10k")
		b.ReportMetric(float64(compacted), "bytes-after-delete-9k")
		b.ReportMetric(float64(fullUsed), "used-bytes-after-10k")
		b.ReportMetric(float64(usedBytes(b, s)), "used-bytes-after-delete")
		b.ReportMetric(float64(fullFree), "free-pages-after-10k")
		b.ReportMetric(float64(freePages(s)), "free-pages-after-delete")
		b.ReportMetric(float64(s.db.Info().PageSize), "page-bytes")
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

func fileSize(b *testing.B, s *Store) int64 {
	fi, err := os.Stat(s.Path())
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// freePages is what bbolt can reuse without growing the file: pages on its
// freelist and pages freed by the last transaction, free once no reader
// holds them.
func freePages(s *Store) int {
	st := s.db.Stats()
	return st.FreePageN + st.PendingPageN
}

// usedBytes is bbolt's high-water mark (the pages it has ever handed out;
// the file beyond it is preallocated) less its free pages.
func usedBytes(b *testing.B, s *Store) int64 {
	var size int64
	if err := s.db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		b.Fatal(err)
	}
	return size - int64(freePages(s)*s.db.Info().PageSize)
}
