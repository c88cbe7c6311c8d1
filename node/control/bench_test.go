package control

import (
	"context"
	"fmt"
	"slices"
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

func benchUpdate(b *testing.B, size int, real bool) {
	c := newCluster(b)
	c.real = real
	c.add(nil)
	c.leader()
	for range size - 1 {
		c.join(c.add(nil))
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
