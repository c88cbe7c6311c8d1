package follow

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// benchReplica is a replica the benchmark can watch.
type benchReplica interface {
	Replica
	Subscribe() (<-chan struct{}, func())
}

// BenchmarkWriteReaches measures the time from a write on the control
// node's store to its arrival in the replicas of n followers, each with
// its own connection and replica, and reports the median and 99th
// percentile over every (write, follower) pair. The control node's store
// is in memory, so the figure is the stream and the members' replicas.
func BenchmarkWriteReaches(b *testing.B) {
	for _, replica := range []struct {
		name string
		open func(testing.TB) benchReplica
	}{{"mem", newMemReplica}, {"disk", newDiskReplica}} {
		for _, n := range []int{10, 30} {
			b.Run(fmt.Sprintf("replica=%s/followers=%d", replica.name, n), func(b *testing.B) { benchmarkReach(b, n, replica.open) })
		}
	}
}

func benchmarkReach(b *testing.B, n int, newReplica func(testing.TB) benchReplica) {
	src := newMemStore(10000)
	src.put("lab", "x")
	cp := startControl(b, "c1", src, "127.0.0.1:0")
	reps := make([]benchReplica, n)
	signals := make([]<-chan struct{}, n)
	for i := range reps {
		reps[i] = newReplica(b)
		ch, cancel := reps[i].Subscribe()
		b.Cleanup(cancel)
		signals[i] = ch
		startFollower(b, reps[i], fixed(cp.candidate()), newDialer(b), nil)
	}
	for _, r := range reps {
		waitFor(b, "the followers to sync", func() bool { return r.Revision() == src.Revision() })
	}
	lat := make([]time.Duration, 0, b.N*n)
	got := make([]time.Duration, n)
	b.ResetTimer()
	for i := range b.N {
		var wg sync.WaitGroup
		t0 := time.Now()
		rev := src.put(fmt.Sprintf("labs/demo/hosts/h%d", i%100), "a host record of some bytes")
		for j, r := range reps {
			wg.Go(func() {
				for r.Revision() < rev {
					<-signals[j]
				}
				got[j] = time.Since(t0)
			})
		}
		wg.Wait()
		lat = append(lat, got...)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
