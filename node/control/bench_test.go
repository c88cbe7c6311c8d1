package control

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkUpdate measures a write as a client on the leader sees it: the
// read, the raft entry fsynced on a quorum, the apply. It reports p50 and
// p99 besides the mean; state=store runs node/store's Store (its own fsync
// per apply), state=fake an in-memory one.
func BenchmarkUpdate(b *testing.B) {
	for _, real := range []bool{false, true} {
		for _, size := range []int{1, 3} {
			name := fmt.Sprintf("state=fake/nodes=%d", size)
			if real {
				name = fmt.Sprintf("state=store/nodes=%d", size)
			}
			b.Run(name, func(b *testing.B) { benchUpdate(b, size, real) })
		}
	}
}

// BenchmarkUpdateTransport compares raft over plain TCP (node/control's
// tests only) with mutual TLS (labd's): a write on a fake state, three
// nodes, with the process's CPU time per write (all three nodes run in
// it) beside the latency. Run both in one go (-count to interleave).
func BenchmarkUpdateTransport(b *testing.B) {
	for _, transport := range []string{"tcp", "tls"} {
		b.Run("transport="+transport, func(b *testing.B) {
			var tls func(name string) *TLS
			if transport == "tls" {
				ca := newTestCA(b)
				tls = func(name string) *TLS { return controlTLS(b, ca, name, nil) }
			}
			var before, after syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			benchUpdateWith(b, 3, false, tls)
			syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

func benchUpdate(b *testing.B, size int, real bool) { benchUpdateWith(b, size, real, nil) }

// benchUpdateWith runs benchUpdate with each node's TLS from tls (nil:
// plain TCP).
func benchUpdateWith(b *testing.B, size int, real bool, tls func(name string) *TLS) {
	c := newCluster(b)
	c.real = real
	add := func() *node {
		if tls == nil {
			return c.add(nil)
		}
		return c.add(tls(fmt.Sprintf("n%d", len(c.nodes)+1)))
	}
	add()
	c.leader()
	for range size - 1 {
		c.join(add())
	}
	l := c.leader()
	ctx := context.Background()
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		var err error
		if real {
			_, err = l.c.Update(ctx, putTx(fmt.Sprintf("k%d", i%100), "v"))
		} else {
			_, err = l.c.update(ctx, blind(fmt.Sprintf("k%d", i%100), "v"))
		}
		if err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(ds[min(len(ds)-1, len(ds)*99/100)].Microseconds()), "p99-µs")
}
