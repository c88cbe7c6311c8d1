package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// BenchmarkClassEnrol30 is a class arriving: a teacher's labd invites 30
// members (labctl node invite, through the API) and 30 labd processes on
// 127.0.0.101-130 start at once with their invite lines. It reports the
// time until every member's labd is ready (enrolled over TLS pinned to the
// CA, its identity recorded, following the control plane) and until the
// teacher sees all 31 nodes alive.
//
//	go test -run '^$' -bench ClassEnrol30 -benchtime 1x ./cmd/labd
func BenchmarkClassEnrol30(b *testing.B) {
	const n = 30
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		seed := "127.0.0.100:" + freePort(b, "127.0.0.100")
		teacher := &authNode{name: "teacher", d: startLabdArgs(b, filepath.Join(dir, "teacher"), "--name", "teacher", "--tls",
			"--api", "127.0.0.100:0", "--overlay", "127.0.0.100:0", "--gossip", seed)}
		teacher.ca = teacher.d.clientTLS().RootCAs
		tok, err := os.ReadFile(filepath.Join(dir, "teacher", "admin.token"))
		if err != nil {
			b.Fatal(err)
		}
		admin := strings.TrimSpace(string(tok))
		nc := labv1.NewNodeServiceClient(teacher.conn(b, admin))
		var invites []string
		for i := range n {
			inv, err := nc.CreateNodeInvite(context.Background(), &labv1.CreateNodeInviteRequest{NodeId: fmt.Sprintf("laptop-%02d", i)})
			if err != nil {
				b.Fatal(err)
			}
			invites = append(invites, inv.Token)
		}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var slowest time.Duration
		for i := range n {
			ip := fmt.Sprintf("127.0.0.%d", 101+i)
			wg.Go(func() {
				t0 := time.Now()
				startLabdArgs(b, filepath.Join(dir, fmt.Sprint(i)), "--name", fmt.Sprintf("laptop-%02d", i), "--tls",
					"--api", ip+":0", "--overlay", ip+":0", "--gossip", ip+":0", "--join", seed, "--enroll", invites[i])
				mu.Lock()
				slowest = max(slowest, time.Since(t0))
				mu.Unlock()
			})
		}
		wg.Wait()
		ready := time.Since(start)
		for {
			resp, err := nc.ListNodes(context.Background(), &labv1.ListNodesRequest{})
			alive := 0
			if err == nil {
				for _, m := range resp.Nodes {
					if m.State == labv1.NodeState_NODE_STATE_ALIVE && m.Kind != "" {
						alive++
					}
				}
			}
			if alive == n+1 {
				break
			}
			if time.Since(start) > 2*time.Minute {
				b.Fatalf("%d of %d nodes alive with identities after 2 minutes: %v", alive, n+1, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.ReportMetric(ready.Seconds(), "all-ready-s")
		b.ReportMetric(slowest.Seconds(), "slowest-member-s")
		b.ReportMetric(time.Since(start).Seconds(), "all-alive-s")
	}
}
