package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkCrossNodeTCP starts two labd processes, a on 127.0.0.1 and b on
// 127.0.0.2, with one network at the default MTU: s1 and s2 run on a, c1 on
// b. Each iteration runs `labctl bench` for 3s within a (s2 -> s1) and then
// across the overlay (c1 -> s1), and the benchmark reports both throughputs
// and their ratio (the goal is cross/same >= 0.8: the overlay costs at most
// a fifth), and the CPU seconds both labd spend per GB moved, each way and
// as a ratio (issue 11: cross-node at most 1.5x same-node).
//
//	go test -run '^$' -bench CrossNodeTCP -benchtime 3x ./cmd/labd
func BenchmarkCrossNodeTCP(b *testing.B) {
	a, nb := startTwoNodes(b, b.TempDir())
	crossNodeTCP(b, a, nb)
}

// BenchmarkCrossNodeSealing is BenchmarkCrossNodeTCP three ways in one
// run: plain GENEVE (loopback without a key), every packet sealed with the
// cluster key every node shares (--overlay-shared-key-only: the sealing
// before node identities), and sealed per pair of nodes with replay
// windows and the network check (issue 14). Each sub-benchmark checks
// from b's metrics that its packets were sealed the way it names.
//
//	go test -run '^$' -bench CrossNodeSealing -benchtime 3x ./cmd/labd
func BenchmarkCrossNodeSealing(b *testing.B) {
	for _, v := range []struct {
		name string
		args []string
	}{
		{"plain", nil},
		{"cluster-key", []string{"--cluster-key", "bench", "--overlay-shared-key-only"}},
		{"per-pair", []string{"--cluster-key", "bench"}},
	} {
		b.Run(v.name, func(b *testing.B) {
			metrics := "127.0.0.2:" + freePort(b, "127.0.0.2")
			a, nb := startTwoNodesWith(b, b.TempDir(), v.args, []string{"--metrics", metrics})
			crossNodeTCP(b, a, nb)
			paired := scrape(b, metrics, `labnet_overlay_node_packets_total{node="a"}`)
			if (v.name == "per-pair") != (paired > 0) {
				b.Fatalf("%s: b opened %v datagrams from a sealed per pair", v.name, paired)
			}
		})
	}
}

// scrape is the value of the sample line starting with sample at
// http://addr/metrics, 0 when absent.
func scrape(t testing.TB, addr, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// crossNodeTCP runs one network with s1 and s2 on a and c1 on b; each
// iteration runs `labctl bench` for 3s within a (s2 -> s1) and then
// across the overlay (c1 -> s1), and reports both throughputs, their
// ratio, and the CPU seconds both labd spend per GB moved.
func crossNodeTCP(b *testing.B, a, nb *labd) {
	b.Helper()
	topo := filepath.Join(b.TempDir(), "bench.yaml")
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

	// bench runs one transfer and returns its rate and the CPU seconds
	// both labd spent on it, per GB moved.
	bench := func(d *labd, host string) (gbps, cpuPerGB float64) {
		before := cpuSeconds(b, a) + cpuSeconds(b, nb)
		out := d.ok("bench", "bench/"+host, "s1", "--time", "3s", "-o", "json")
		cpu := cpuSeconds(b, a) + cpuSeconds(b, nb) - before
		var r struct {
			Gbps  float64
			Bytes float64
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.Bytes == 0 {
			b.Fatalf("bench %s: %v\n%s", host, err, out)
		}
		return r.Gbps, cpu / (r.Bytes / 1e9)
	}
	var same, cross, sameCPU, crossCPU float64
	b.ResetTimer()
	for range b.N {
		g, c := bench(a, "s2")
		same, sameCPU = same+g, sameCPU+c
		g, c = bench(nb, "c1")
		cross, crossCPU = cross+g, crossCPU+c
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(same/n, "same-Gbit/s")
	b.ReportMetric(cross/n, "cross-Gbit/s")
	b.ReportMetric(cross/same, "cross/same")
	b.ReportMetric(sameCPU/n, "same-cpu-s/GB")
	b.ReportMetric(crossCPU/n, "cross-cpu-s/GB")
	b.ReportMetric(crossCPU/sameCPU, "cross/same-cpu")
}

// cpuSeconds is the user and system CPU time d's process has used so far
// (proc(5): utime and stime, fields 14 and 15 of /proc/PID/stat, in clock
// ticks of 1/100 s on Linux).
func cpuSeconds(t testing.TB, d *labd) float64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("cpu time of labd: %v", err)
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("cpu time of labd: %q", raw)
	}
	return (utime + stime) / 100
}

// startTwoNodes starts labd a on 127.0.0.1 and b on 127.0.0.2, b joining a,
// and waits until a sees both alive.
func startTwoNodes(t testing.TB, dir string) (a, b *labd) {
	t.Helper()
	return startTwoNodesWith(t, dir, nil, nil)
}

// startTwoNodesWith is startTwoNodes with flags for both nodes and for b
// only.
func startTwoNodesWith(t testing.TB, dir string, both, bOnly []string) (a, b *labd) {
	t.Helper()
	seed := "127.0.0.1:" + freePort(t, "127.0.0.1")
	a = startLabdArgs(t, filepath.Join(dir, "a"), append([]string{"--name", "a", "--api", "127.0.0.1:0", "--overlay", "127.0.0.1:0", "--gossip", seed}, both...)...)
	b = startLabdArgs(t, filepath.Join(dir, "b"), append(append([]string{"--name", "b", "--api", "127.0.0.2:0", "--overlay", "127.0.0.2:0",
		"--gossip", "127.0.0.2:" + freePort(t, "127.0.0.2"), "--join", seed}, both...), bOnly...)...)
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
