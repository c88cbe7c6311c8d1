package main_test

// Chaos tests of the Raft control plane with real labd processes on
// loopback: three control nodes and two members on 127.0.0.1 to .5, each
// with its own raft, API, gossip and overlay address, so a node killed with
// kill -9 comes back with exactly the command it was started with.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// chaosNode is one labd of a chaos cluster and a client of its API, which
// stays valid across restarts (the API address is fixed).
type chaosNode struct {
	name    string
	control bool
	d       *labd
	lab     labv1.LabServiceClient
	nodes   labv1.NodeServiceClient
}

// restart starts the node again with the command it was first started with.
func (n *chaosNode) restart(t *testing.T) {
	t.Helper()
	n.d = startLabdArgs(t, n.d.data, n.d.args...)
}

// startChaosCluster starts control nodes c1..c3 on 127.0.0.1 to .3 (c1
// bootstraps, the others join it with --control) and members m1, m2 on
// 127.0.0.4 and .5, every address on a fixed port.
func startChaosCluster(t *testing.T) []*chaosNode {
	t.Helper()
	dir := t.TempDir()
	var nodes []*chaosNode
	var seed string
	for i, name := range []string{"c1", "c2", "c3", "m1", "m2"} {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		used := map[string]bool{}
		port := func() string { // a port no other address of this node has
			for {
				if p := freePort(t, ip); !used[p] {
					used[p] = true
					return ip + ":" + p
				}
			}
		}
		api, gossip := port(), port()
		args := []string{"--name", name, "--api", api, "--gossip", gossip, "--overlay", port(), "--failover-after", "0"}
		control := i < 3
		if control {
			args = append(args, "--raft", port())
		}
		if i == 0 {
			seed = gossip
		} else {
			args = append(args, "--join", seed)
			if control {
				args = append(args, "--control")
			}
		}
		d := startLabdArgs(t, filepath.Join(dir, name), args...)
		conn := d.dialAdmin()
		t.Cleanup(func() { conn.Close() })
		nodes = append(nodes, &chaosNode{name: name, control: control, d: d,
			lab: labv1.NewLabServiceClient(conn), nodes: labv1.NewNodeServiceClient(conn)})
	}
	waitFor(t, 60*time.Second, "five nodes alive with a leader", func() (bool, string) {
		for _, n := range nodes {
			if _, ok, out := leaderSeenBy(n, 5); !ok {
				return false, n.name + ": " + out
			}
		}
		return true, ""
	})
	return nodes
}

// leaderSeenBy reports the leader node n's API lists, when n sees want
// nodes alive and one control node leading.
func leaderSeenBy(n *chaosNode, want int) (string, bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := n.nodes.ListNodes(ctx, &labv1.ListNodesRequest{})
	if err != nil {
		return "", false, err.Error()
	}
	alive, leader := 0, ""
	for _, nd := range resp.Nodes {
		if nd.State == labv1.NodeState_NODE_STATE_ALIVE {
			alive++
			if nd.Leader {
				leader = strings.TrimPrefix(nd.Name, "nodes/")
			}
		}
	}
	return leader, alive >= want && leader != "", fmt.Sprint(resp.Nodes)
}

// waitFor polls cond until it holds or timeout passes (then the test
// fails with what cond last said).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, last := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not after %v; last: %s", what, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// listHosts is every host of lab through n's API, by name.
func listHosts(n *chaosNode, lab string) (map[string]*labv1.Host, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hosts := map[string]*labv1.Host{}
	token := ""
	for {
		resp, err := n.lab.ListHosts(ctx, &labv1.ListHostsRequest{Parent: "labs/" + lab, PageToken: token})
		if err != nil {
			return nil, err
		}
		for _, h := range resp.Hosts {
			hosts[h.Name] = h
		}
		if token = resp.NextPageToken; token == "" {
			return hosts, nil
		}
	}
}

// sameHosts compares two listings record by record: "" when identical.
func sameHosts(a, b map[string]*labv1.Host) string {
	for name, h := range a {
		if o, ok := b[name]; !ok {
			return name + " missing"
		} else if !proto.Equal(h, o) {
			return fmt.Sprintf("%s differs: %v vs %v", name, h, o)
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			return name + " extra"
		}
	}
	return ""
}

// TestChaosKillRestart: a writer creates hosts one at a time through a
// random node while a random node is killed with kill -9 and restarted
// with the same command 1 to 3 s later, every few seconds, for two minutes
// (20 s with -short). Afterwards, with every node back, every acknowledged
// write is present and identical on every node. Counts are logged.
func TestChaosKillRestart(t *testing.T) {
	run := 2 * time.Minute
	if testing.Short() {
		run = 20 * time.Second
	}
	nodes := startChaosCluster(t)
	const labID = "chaos"
	waitFor(t, 30*time.Second, "lab created", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := nodes[0].lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: labID, Lab: &labv1.Lab{}})
		return err == nil || status.Code(err) == codes.AlreadyExists, fmt.Sprint(err)
	})

	// The writer: host w<i> pinned to a member, the attempt's number in
	// its route-less record's services list, through a random node; each
	// attempt a new host, so an acknowledged write is a name to look for.
	var (
		mu       sync.Mutex
		acked    []string
		refused  = map[string]int{} // by code, "node down" for a call to a killed node
		examples = map[string][]string{}
		refNames []string // refused attempts, which may or may not have landed
		refErrs  []string // and why, in the same order
	)
	down := make([]bool, len(nodes)) // which nodes the killer has down, under mu
	ctx, stop := context.WithCancel(context.Background())
	writerDone := make(chan struct{})
	go func() { // owned by the test: ends with stop
		defer close(writerDone)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; ctx.Err() == nil; i++ {
			k := rng.IntN(len(nodes))
			n := nodes[k]
			id := fmt.Sprintf("w%d", i)
			host := &labv1.Host{Node: []string{"m1", "m2"}[i%2]}
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			_, err := n.lab.CreateHost(cctx, &labv1.CreateHostRequest{Parent: "labs/" + labID, HostId: id, Host: host})
			cancel()
			if ctx.Err() != nil && err != nil {
				return // the test's end cut this write short: neither acked nor refused
			}
			mu.Lock()
			if err == nil {
				acked = append(acked, "labs/"+labID+"/hosts/"+id)
			} else {
				c, msg := status.Code(err).String(), n.name+": "+status.Convert(err).Message()
				if down[k] || strings.Contains(msg, "transport: Error while dialing") {
					// The killer had it down, or the client's connection
					// to it was still backing off: no labd saw the call.
					c = "node down"
				}
				refused[c]++
				refNames = append(refNames, "labs/"+labID+"/hosts/"+id)
				refErrs = append(refErrs, c+": "+msg)
				if len(examples[c]) < 3 && !slices.Contains(examples[c], msg) {
					examples[c] = append(examples[c], msg)
				}
			}
			mu.Unlock()
			time.Sleep(time.Duration(50+rng.IntN(100)) * time.Millisecond)
		}
	}()

	rng := rand.New(rand.NewPCG(3, 4))
	kills := 0
	end := time.Now().Add(run)
	for time.Now().Before(end) {
		time.Sleep(time.Duration(2000+rng.IntN(3000)) * time.Millisecond)
		i := rng.IntN(len(nodes))
		n := nodes[i]
		mu.Lock()
		down[i] = true
		mu.Unlock()
		n.d.stop(syscall.SIGKILL)
		kills++
		time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
		n.restart(t)
		mu.Lock()
		down[i] = false
		mu.Unlock()
		t.Logf("%v: killed and restarted %s", time.Until(end).Round(time.Second), n.name)
	}
	stop()
	<-writerDone

	// Every node back: each lists the same hosts, record for record, and
	// every acknowledged host is among them.
	took := waitFor(t, 90*time.Second, "every node back and converged", func() (bool, string) {
		ref, err := listHosts(nodes[0], labID)
		if err != nil {
			return false, "c1: " + err.Error()
		}
		for _, name := range acked {
			if _, ok := ref[name]; !ok {
				return false, "c1 lacks acknowledged " + name
			}
		}
		for _, n := range nodes[1:] {
			got, err := listHosts(n, labID)
			if err != nil {
				return false, n.name + ": " + err.Error()
			}
			if d := sameHosts(ref, got); d != "" {
				return false, n.name + ": " + d
			}
		}
		return true, ""
	})
	ref, _ := listHosts(nodes[0], labID)
	present := 0
	for _, name := range acked {
		if _, ok := ref[name]; ok {
			present++
		}
	}
	landed := 0
	for i, name := range refNames {
		if _, ok := ref[name]; ok {
			landed++
			t.Logf("refused but present (its outcome was unknown to the writer): %s: %s", name, refErrs[i])
		}
	}
	var codesSeen []string
	for c, k := range refused {
		codesSeen = append(codesSeen, fmt.Sprintf("%s=%d %q", c, k, examples[c]))
	}
	sort.Strings(codesSeen)
	t.Logf("chaos for %v, %d kills: acknowledged %d, present everywhere %d; refused %d (%d of them landed anyway): %s; converged %v after the last restart",
		run, kills, len(acked), present, len(refNames), landed, strings.Join(codesSeen, ", "), took.Round(time.Millisecond))
	if present != len(acked) {
		t.Errorf("%d of %d acknowledged writes are missing", len(acked)-present, len(acked))
	}
	if len(acked) == 0 {
		t.Error("no write was acknowledged")
	}
}

// smallLab is two hosts on one network, one pinned to each member.
const smallLab = `name: small
networks:
  - name: lan
    ipv4: 10.9.0.0/24
hosts:
  - name: a
    node: m1
    interfaces:
      - network: lan
        ipv4: 10.9.0.10/24
  - name: b
    node: m2
    interfaces:
      - network: lan
        ipv4: 10.9.0.11/24
`

// createLab is one write: a new lab id through n.
func createLab(n *chaosNode, id string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := n.lab.CreateLab(ctx, &labv1.CreateLabRequest{LabId: id, Lab: &labv1.Lab{}})
	return err
}

// stateOf is everything n's API lists of the desired state, as text.
func stateOf(n *chaosNode) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	labs, err := n.lab.ListLabs(ctx, &labv1.ListLabsRequest{PageSize: 1000})
	if err != nil {
		return "", err
	}
	nets, err := n.lab.ListNetworks(ctx, &labv1.ListNetworksRequest{Parent: "labs/-", PageSize: 1000})
	if err != nil {
		return "", err
	}
	hosts, err := n.lab.ListHosts(ctx, &labv1.ListHostsRequest{Parent: "labs/-", PageSize: 1000})
	if err != nil {
		return "", err
	}
	return fmt.Sprint(labs, nets, hosts), nil
}

// TestChaosQuorum: three control nodes and two members running a small lab
// (a on m1 pings b on m2). Killing the leader: writes resume after an
// election (the gap is logged). Killing a second control node: writes fail
// with Unavailable, one line naming the control nodes, while the members'
// hosts still answer pings. Restarting one control node: writes work again
// and every node converges on the same state.
func TestChaosQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five labd processes")
	}
	nodes := startChaosCluster(t)
	byName := map[string]*chaosNode{}
	for _, n := range nodes {
		byName[n.name] = n
	}
	m1 := byName["m1"]
	topo := filepath.Join(t.TempDir(), "small.yaml")
	if err := os.WriteFile(topo, []byte(smallLab), 0o644); err != nil {
		t.Fatal(err)
	}
	m1.d.ok("apply", "-f", topo)
	m1.d.waitPing("small/a", "10.9.0.11")
	// Give the leader time to add c2 and c3 as voters (it does so once
	// gossip shows them): a write through each node proves they follow.
	for i, n := range nodes {
		waitFor(t, 30*time.Second, "a write through "+n.name, func() (bool, string) {
			err := createLab(n, fmt.Sprintf("warm%d", i), 15*time.Second)
			return err == nil, fmt.Sprint(err)
		})
	}
	waitFor(t, 30*time.Second, "every node has the writes", func() (bool, string) {
		ref, err := stateOf(nodes[0])
		if err != nil {
			return false, err.Error()
		}
		for _, n := range nodes[1:] {
			if got, err := stateOf(n); err != nil || got != ref {
				return false, n.name + " differs"
			}
		}
		return true, ""
	})

	var leader string
	waitFor(t, 30*time.Second, "a leader", func() (bool, string) {
		l, ok, out := leaderSeenBy(m1, 5)
		leader = l
		return ok, out
	})
	var rest []*chaosNode // the control nodes that do not lead
	for _, n := range nodes[:3] {
		if n.name != leader {
			rest = append(rest, n)
		}
	}
	others := []*chaosNode{rest[0], rest[1], m1, byName["m2"]}

	// 1. kill -9 of the leader: the first write to succeed after it,
	// through any other node, measures the gap.
	killed := time.Now()
	byName[leader].d.stop(syscall.SIGKILL)
	var firstErrs []string
	gap := waitFor(t, 60*time.Second, "a write after the leader's kill", func() (bool, string) {
		n := others[rand.IntN(len(others))]
		err := createLab(n, fmt.Sprintf("after-kill-%d", time.Since(killed).Milliseconds()), 15*time.Second)
		if err != nil && len(firstErrs) < 5 {
			firstErrs = append(firstErrs, n.name+": "+status.Code(err).String()+": "+status.Convert(err).Message())
		}
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("leader %s killed: first write acknowledged %v after the kill (wait %v); errors before it: %q",
		leader, time.Since(killed).Round(time.Millisecond), gap.Round(time.Millisecond), firstErrs)

	// 2. kill -9 of a second control node: no quorum. Writes through the
	// surviving control node and through a member fail with Unavailable,
	// one line naming the control nodes tried.
	second, survivor := rest[0], rest[1]
	second.d.stop(syscall.SIGKILL)
	var seen []string
	for _, n := range []*chaosNode{survivor, m1} {
		var last error
		waitFor(t, 60*time.Second, "writes through "+n.name+" fail with Unavailable", func() (bool, string) {
			last = createLab(n, "no-quorum", 30*time.Second)
			if last == nil {
				t.Fatalf("a write through %s was acknowledged with two of three control nodes down", n.name)
			}
			seen = append(seen, n.name+": "+status.Code(last).String()+": "+status.Convert(last).Message())
			// A write in flight when the majority went is reported as
			// such; the refusals that follow are what is checked.
			return status.Code(last) == codes.Unavailable && !strings.Contains(status.Convert(last).Message(), "may or may not have been applied"), seen[len(seen)-1]
		})
		msg := status.Convert(last).Message()
		if strings.Contains(msg, "\n") {
			t.Errorf("write through %s: the error is more than one line: %q", n.name, msg)
		}
		for _, c := range []string{"c1", "c2", "c3"} {
			if !strings.Contains(msg, c) {
				t.Errorf("write through %s: the error does not name control node %s: %q", n.name, c, msg)
			}
		}
	}
	t.Logf("with %s and %s down, writes say: %q", leader, second.name, seen)
	// The members' hosts keep running: a on m1 still reaches b on m2.
	out := m1.d.ok("ping", "small/a", "10.9.0.11", "-c", "3", "-i", "0.2", "-W", "2")
	if !strings.Contains(out, "3 received") {
		t.Errorf("ping between the members' hosts without a control plane:\n%s", out)
	}

	// 3. restart one control node: writes work again, and every running
	// node converges on the same state.
	restarted := time.Now()
	second.restart(t)
	again := waitFor(t, 60*time.Second, "a write after the restart", func() (bool, string) {
		err := createLab(others[rand.IntN(len(others))], fmt.Sprintf("restored-%d", time.Since(restarted).Milliseconds()), 15*time.Second)
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("%s restarted: writes acknowledged again %v after its \"labd ready\"", second.name, again.Round(time.Millisecond))
	converge := func(running []*chaosNode) time.Duration {
		return waitFor(t, 60*time.Second, "every running node converges", func() (bool, string) {
			ref, err := stateOf(running[0])
			if err != nil {
				return false, running[0].name + ": " + err.Error()
			}
			for _, n := range running[1:] {
				got, err := stateOf(n)
				if err != nil {
					return false, n.name + ": " + err.Error()
				}
				if got != ref {
					return false, n.name + " differs from " + running[0].name
				}
			}
			return true, ""
		})
	}
	t.Logf("four nodes converged %v after the write", converge(others).Round(time.Millisecond))
	// And the old leader, back last, catches up too.
	byName[leader].restart(t)
	t.Logf("old leader %s back: all five converged %v after its \"labd ready\"", leader, converge(nodes).Round(time.Millisecond))
	m1.d.waitPing("small/a", "10.9.0.11")
}
