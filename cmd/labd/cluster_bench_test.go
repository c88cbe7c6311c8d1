package main_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// BenchmarkClusterPropagation starts 10 labd processes on 127.0.0.1-10 and
// measures how long a write through one node takes to be seen by all of
// them (each node's Watch stream delivers it), reporting p50 and p99.
//
//	go test -run '^$' -bench ClusterPropagation -benchtime 50x ./cmd/labd
func BenchmarkClusterPropagation(b *testing.B) {
	dir := b.TempDir()
	const n = 10
	seed := "127.0.0.1:" + freePort(b, "127.0.0.1")
	var nodes []*labd
	for i := range n {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		gossip := seed
		args := []string{"--name", fmt.Sprintf("n%d", i), "--api", ip + ":0", "--overlay", ip + ":0"}
		if i > 0 {
			gossip = ip + ":" + freePort(b, ip)
			args = append(args, "--join", seed)
		}
		nodes = append(nodes, startLabdArgs(b, filepath.Join(dir, fmt.Sprint(i)), append(args, "--gossip", gossip)...))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan string, 1024)
	var first labv1.LabServiceClient
	for i, d := range nodes {
		conn := d.dialAdmin()
		defer conn.Close()
		c := labv1.NewLabServiceClient(conn)
		if i == 0 {
			first = c
		}
		w, err := c.Watch(ctx, &labv1.WatchRequest{Kinds: []string{"labs"}})
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for {
				r, err := w.Recv()
				if err != nil {
					return
				}
				if r.Type == labv1.WatchEventType_WATCH_EVENT_TYPE_ADDED && r.GetLab() != nil {
					seen <- r.GetLab().Name
				}
			}
		}()
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("p%d", i)
		start := time.Now()
		if _, err := first.CreateLab(ctx, &labv1.CreateLabRequest{LabId: id}); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < n; {
			select {
			case name := <-seen:
				if name == "labs/"+id {
					got++
				}
			case <-time.After(30 * time.Second):
				b.Fatalf("write %s seen by %d of %d nodes", id, got, n)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
}
