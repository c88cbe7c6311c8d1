package main_test

import (
	"context"
	"crypto/sha256"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePort returns a port free on ip for both TCP and UDP (memberlist
// needs both), to give a seed node a known gossip address.
func freePort(t testing.TB, ip string) string {
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return ""
}

// TestCluster runs three labd processes on 127.0.0.1, .2 and .3: h1 on
// node a and h2 on node b talk through router r1 on node c, across the
// GENEVE overlay. A write through one node is visible through the others.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three labd processes")
	}
	dir := t.TempDir()
	seed := "127.0.0.1:" + freePort(t, "127.0.0.1")
	nodes := map[string]*labd{}
	for i, name := range []string{"a", "b", "c"} {
		ip := "127.0.0." + string(rune('1'+i))
		gossip := seed
		args := []string{"--name", name, "--api", ip + ":0", "--overlay", ip + ":0", "--failover-after", "1s"}
		if i > 0 {
			gossip = ip + ":" + freePort(t, ip)
			args = append(args, "--join", seed)
		}
		nodes[name] = startLabdArgs(t, filepath.Join(dir, name), append(args, "--gossip", gossip)...)
	}
	a, b, c := nodes["a"], nodes["b"], nodes["c"]
	waitOut := func(d *labd, what string, cond func(string) bool, args ...string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			out, _, code := d.labctl(args...)
			if code == 0 && cond(out) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: never true; last output:\n%s\nlabd a:\n%s", what, out, a.log)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitOut(a, "three nodes alive", func(out string) bool { return strings.Count(out, "alive") == 3 }, "get", "nodes")

	topo, err := os.ReadFile(examples(t, "two-lans.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pinned := strings.NewReplacer(
		"  - name: r1\n", "  - name: r1\n    node: c\n",
		"  - name: h1\n", "  - name: h1\n    node: a\n",
		"  - name: h2\n", "  - name: h2\n    node: b\n",
	).Replace(string(topo)) + "  - name: h4\n    node: b\n    interfaces: [lan2]\n"
	f := filepath.Join(dir, "cluster.yaml")
	os.WriteFile(f, []byte(pinned), 0o644)
	b.ok("apply", "-f", f)
	waitOut(c, "the lab replicated to c", func(out string) bool {
		return strings.Contains(out, "h1") && strings.Contains(out, "h2") && strings.Contains(out, "r1")
	}, "get", "hosts")
	waitOut(a, "each host on its node", func(out string) bool {
		return strings.Count(out, `"hostCount": 1`) == 2 && strings.Count(out, `"hostCount": 2`) == 1 // a: h1, b: h2 h4, c: r1
	}, "get", "nodes", "-o", "json")

	a.waitPing("h1", "h2")
	out := a.ok("ping", "h1", "h2", "-c", "3", "-i", "0.2")
	if !strings.Contains(out, "ttl=63") || !strings.Contains(out, "3 received") {
		t.Errorf("cross-node ping:\n%s", out)
	}
	out = a.ok("traceroute", "h1", "10.0.2.10")
	if hops := hopAddrs(out); strings.Join(hops, " ") != "10.0.1.1 10.0.2.10" {
		t.Errorf("cross-node traceroute: %v\n%s", hops, out)
	}
	// TCP across the overlay and a router on a third node delivers exactly
	// what the same transfer within one node does (h4 and h2 are both on b).
	file, local := filepath.Join(dir, "bytes"), filepath.Join(dir, "bytes-local")
	a.ok("fetch", "h1", "http://h2/bytes/3000000", "-O", file)
	b.ok("fetch", "h4", "http://h2/bytes/3000000", "-O", local)
	crossSum, localSum := sha256File(t, file), sha256File(t, local)
	if crossSum != localSum {
		t.Errorf("cross-node fetch differs: sha256 %x, within one node %x", crossSum, localSum)
	}

	// Every node is a front door: c, which runs neither, serves live calls
	// for h1 (on a) and h2 (on b) by forwarding them.
	out = c.ok("ping", "h2", "h1", "-c", "2", "-i", "0.2")
	if !strings.Contains(out, "from 10.0.1.10") || !strings.Contains(out, "2 received") {
		t.Errorf("ping forwarded through c:\n%s", out)
	}
	out = c.ok("describe", "host", "h1")
	if !strings.Contains(out, "Running:  true") || !strings.Contains(out, "Node:     a") {
		t.Errorf("describe through c:\n%s", out)
	}
	out = c.ok("connections", "h2")
	if !strings.Contains(out, "[::]:80") {
		t.Errorf("connections through c:\n%s", out)
	}

	// A host without a node goes to the least-loaded live node: a, b and c
	// run one each, so h3 goes to a (the first by name).
	os.WriteFile(f, []byte("name: demo\nhosts:\n  - name: h3\n    interfaces: [lan1]\n"), 0o644)
	c.ok("apply", "-f", f)
	waitOut(b, "h3 placed on a", func(out string) bool { return strings.Contains(out, `"node": "a"`) }, "get", "hosts", "demo/h3", "-o", "json")
	b.waitPing("demo/h3", "10.0.1.1") // r1, on c

	// h2 is pinned to b by the topology, so failover would never move it:
	// the topology lets go of its node, which keeps it on b (now its home).
	os.WriteFile(f, []byte(strings.Replace(pinned, "  - name: h2\n    node: b\n", "  - name: h2\n", 1)), 0o644)
	a.ok("apply", "-f", f)
	waitOut(c, "h2 on b, not pinned", func(out string) bool {
		return strings.Contains(out, `"node": "b"`) && strings.Contains(out, `"homeNode": "b"`) && !strings.Contains(out, `"pinned"`)
	}, "get", "hosts", "demo/h2", "-o", "json")

	// kill -9 of b: the others mark it dead, and h2 comes up on a live
	// node, where h1 reaches it again; h4, pinned to b, stays.
	start := time.Now()
	b.stop(syscall.SIGKILL)
	waitOut(a, "b dead", func(out string) bool {
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "b ") && strings.Contains(line, "dead") {
				return true
			}
		}
		return false
	}, "get", "nodes")
	t.Logf("b detected dead after %v", time.Since(start).Round(time.Millisecond))
	waitOut(c, "h2 placed again", func(out string) bool {
		return strings.Contains(out, `"node": "c"`) || strings.Contains(out, `"node": "a"`)
	}, "get", "hosts", "demo/h2", "-o", "json")
	a.waitPing("h1", "h2")
	t.Logf("h2 answering again %v after the kill", time.Since(start).Round(time.Millisecond))
	waitOut(c, "h4 still on b", func(out string) bool { return strings.Contains(out, `"node": "b"`) }, "get", "hosts", "demo/h4", "-o", "json")

	// A change made while b is down reaches b when it comes back.
	os.WriteFile(f, []byte("name: demo\nhosts:\n  - name: h5\n    interfaces: [lan1]\n"), 0o644)
	a.ok("apply", "-f", f)
	b = startLabdArgs(t, filepath.Join(dir, "b"), b.args...)
	waitOut(b, "b learns of h5", func(out string) bool { return strings.Contains(out, "h5") }, "get", "hosts")
	// Back for the failover time, b gets h2 back (failback).
	waitOut(c, "h2 back on b", func(out string) bool { return strings.Contains(out, `"node": "b"`) }, "get", "hosts", "demo/h2", "-o", "json")
	a.waitPing("h1", "h2")

	// All three restarted at once: the lab is intact.
	want := a.ok("get", "hosts", "-o", "json")
	for _, d := range []*labd{a, b, c} {
		d.stop(syscall.SIGTERM)
	}
	a = startLabdArgs(t, filepath.Join(dir, "a"), a.args...)
	startLabdArgs(t, filepath.Join(dir, "b"), b.args...)
	startLabdArgs(t, filepath.Join(dir, "c"), c.args...)
	if got := a.ok("get", "hosts", "-o", "json"); got != want {
		t.Errorf("after restarting every node the lab differs:\nwant %s\ngot %s", want, got)
	}
	waitOut(a, "three nodes alive again", func(out string) bool { return strings.Count(out, "alive") == 3 }, "get", "nodes")
	a.waitPing("h1", "h2")
}

func sha256File(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestClusterKey: nodes with the cluster key form a cluster; a node with
// another key cannot join it.
func TestClusterKey(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three labd processes")
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte("the class of 2026\n"), 0o600)
	seed := "127.0.0.4:" + freePort(t, "127.0.0.4")
	a := startLabdArgs(t, filepath.Join(dir, "a"), "--name", "a", "--api", "127.0.0.4:0", "--overlay", "127.0.0.4:0", "--gossip", seed, "--cluster-key-file", keyFile)
	startLabdArgs(t, filepath.Join(dir, "b"), "--name", "b", "--api", "127.0.0.5:0", "--overlay", "127.0.0.5:0",
		"--gossip", "127.0.0.5:"+freePort(t, "127.0.0.5"), "--join", seed, "--cluster-key", "the class of 2026")
	// A wrong key stops labd at start, with one line, instead of "labd
	// ready"; and so does a node name a live node has.
	for _, tc := range []struct {
		name, key, want string
	}{
		{"x", "a guess", "labd: cannot join " + seed + ": the cluster key does not match (or one side has none)"},
		{"b", "the class of 2026", "labd: node name b is taken by a live node at 127.0.0.5:"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := command(ctx, nil, "labd", "--data", filepath.Join(dir, "x-"+tc.name), "--name", tc.name, "--api", "127.0.0.6:0", "--overlay", "127.0.0.6:0",
			"--gossip", "127.0.0.6:"+freePort(t, "127.0.0.6"), "--join", seed, "--cluster-key", tc.key).CombinedOutput()
		cancel()
		var last string
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) > 0 {
			last = lines[len(lines)-1]
		}
		if err == nil || !strings.HasPrefix(last, tc.want) || strings.Contains(string(out), "labd ready") {
			t.Errorf("labd %s with key %q: %v, last line %q, want %q:\n%s", tc.name, tc.key, err, last, tc.want, out)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := a.ok("get", "nodes")
		if strings.Contains(out, "\nb ") && !strings.Contains(out, "\nx ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want a and b only:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // give x time to try
	if out := a.ok("get", "nodes"); strings.Contains(out, "\nx ") {
		t.Fatalf("a node with the wrong key joined:\n%s", out)
	}
}
