package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkCrossNodeTCP starts two labd processes, a on 127.0.0.1 and b on
// 127.0.0.2, with one network at the default MTU: s1 and s2 run on a, c1 on
// b. Each iteration runs `labctl bench` for 3s within a (s2 -> s1) and then
// across the overlay (c1 -> s1), and the benchmark reports both throughputs
// and their ratio (the goal is cross/same >= 0.8: the overlay costs at most
// a fifth).
//
//	go test -run '^$' -bench CrossNodeTCP -benchtime 3x ./cmd/labd
func BenchmarkCrossNodeTCP(b *testing.B) {
	dir := b.TempDir()
	a, nb := startTwoNodes(b, dir)
	topo := filepath.Join(dir, "bench.yaml")
	os.WriteFile(topo, []byte(`name: bench
networks:
  - name: lan
    ipv4: 10.9.0.0/24
hosts:
  - name: s1
    node: a
    services: [discard]
    interfaces: [lan]
  - name: s2
    node: a
    interfaces: [lan]
  - name: c1
    node: b
    interfaces: [lan]
`), 0o644)
	a.ok("apply", "-f", topo)
	a.waitPing("bench/s2", "s1")
	nb.waitPing("bench/c1", "s1")

	bench := func(d *labd, host string) float64 {
		out := d.ok("bench", "bench/"+host, "s1", "--time", "3s", "-o", "json")
		var r struct{ Gbps float64 }
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			b.Fatalf("bench %s: %v\n%s", host, err, out)
		}
		return r.Gbps
	}
	var same, cross float64
	b.ResetTimer()
	for range b.N {
		same += bench(a, "s2")
		cross += bench(nb, "c1")
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(same/n, "same-Gbit/s")
	b.ReportMetric(cross/n, "cross-Gbit/s")
	b.ReportMetric(cross/same, "cross/same")
}

// startTwoNodes starts labd a on 127.0.0.1 and b on 127.0.0.2, b joining a,
// and waits until a sees both alive.
func startTwoNodes(t testing.TB, dir string) (a, b *labd) {
	t.Helper()
	seed := "127.0.0.1:" + freePort(t, "127.0.0.1")
	a = startLabdArgs(t, filepath.Join(dir, "a"), "--name", "a", "--api", "127.0.0.1:0", "--overlay", "127.0.0.1:0", "--gossip", seed)
	b = startLabdArgs(t, filepath.Join(dir, "b"), "--name", "b", "--api", "127.0.0.2:0", "--overlay", "127.0.0.2:0",
		"--gossip", "127.0.0.2:"+freePort(t, "127.0.0.2"), "--join", seed)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _, code := a.labctl("get", "nodes")
		if code == 0 && strings.Count(out, "alive") == 2 {
			return a, b
		}
		if time.Now().After(deadline) {
			t.Fatalf("two nodes never alive:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
