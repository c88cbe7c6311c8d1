package main_test

// A classroom of machines with real addresses: a network namespace per
// laptop (the teacher and three students), each with one veth on
// 192.168.77.0/24 whose other end is a port of a bridge in another
// namespace the test creates (the room's switch). Every labd runs inside
// its laptop's namespace with the workshop guide's flags (docs/workshop.md):
// --api 0.0.0.0:7700 --gossip 0.0.0.0:7946 --overlay 0.0.0.0:6081,
// --advertise its address, and for a student the line the teacher's
// `labctl node invite` printed: no cluster key anywhere. Nothing leaves those
// namespaces; they go away with the test. Needs root and iproute2 (the
// tests skip otherwise).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/labnet-dev/labnet/node/tun/nstest"
)

const classSubnet = "192.168.77." // inside the test's namespaces only

// classNode is one laptop: its namespace, its bridge port and its labd.
type classNode struct {
	t        *testing.T
	name, ip string
	ns       *nstest.NS
	port     string // the veth end on the bridge (the room's switch)
	data     string
	args     []string
	d        *labd
	metrics  *http.Client // dials inside ns
}

// classroom is the room: the bridge's namespace and the laptops.
type classroom struct {
	t      *testing.T
	bridge *nstest.NS
	key    string
	nodes  []*classNode // teacher first
}

// newClassroom wires the room: a bridge in its own namespace and, for the
// teacher (192.168.77.10) and each student (.21, .22, ...), a namespace
// with eth0 on the bridge. No labd runs yet.
func newClassroom(t *testing.T, students ...string) *classroom {
	t.Helper()
	br := nstest.New(t)
	br.Run("ip", "link", "add", "br0", "type", "bridge")
	br.Run("ip", "link", "set", "br0", "up")
	key := filepath.Join(t.TempDir(), "class.key")
	if err := os.WriteFile(key, []byte("the passphrase on the board\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &classroom{t: t, bridge: br, key: key}
	names := append([]string{"teacher"}, students...)
	for i, name := range names {
		ip := classSubnet + "10"
		if i > 0 {
			ip = fmt.Sprintf("%s%d", classSubnet, 20+i)
		}
		ns := nstest.New(t)
		port := fmt.Sprintf("p-%s", name)
		// Made inside the bridge's namespace, the peer moved straight into
		// the laptop's: the host's own network is never touched.
		br.Run("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns.Name())
		br.Run("ip", "link", "set", port, "master", "br0", "up")
		ns.Run("ip", "addr", "add", ip+"/24", "dev", "eth0")
		ns.Run("ip", "link", "set", "eth0", "up")
		n := &classNode{t: t, name: name, ip: ip, ns: ns, port: port, data: filepath.Join(t.TempDir(), name)}
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
				err = ns.Do(func() error {
					var d net.Dialer
					conn, err = d.DialContext(ctx, network, addr)
					return err
				})
				return conn, err
			},
		}
		t.Cleanup(tr.CloseIdleConnections) // before the namespace goes
		n.metrics = &http.Client{Timeout: 2 * time.Second, Transport: tr}
		c.nodes = append(c.nodes, n)
	}
	return c
}

func (c *classroom) node(name string) *classNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no node %s", name)
	return nil
}

func (c *classroom) teacher() *classNode    { return c.nodes[0] }
func (c *classroom) students() []*classNode { return c.nodes[1:] }

// classKey: the laptops also get a class key file. The guide has no key
// (each laptop enrols with its invite and gets the gossip keys from the
// control plane; raft is mutual TLS between control certificates), nor
// does the test.
const classKey = false

// start starts every labd with the guide's command, the teacher first,
// then each student with the line the teacher's labctl node invite
// printed, plus extra flags (the same for all), and waits until each
// sees all.
func (c *classroom) start(extra ...string) {
	c.t.Helper()
	for i, n := range c.nodes {
		n.args = []string{"--name", n.name}
		if i > 0 {
			n.args = c.invite(n.name)
		}
		if classKey {
			n.args = append(n.args, "--cluster-key-file", c.key)
		}
		n.args = append(n.args, "--api", "0.0.0.0:7700", "--gossip", "0.0.0.0:7946", "--overlay", "0.0.0.0:6081", "--advertise", n.ip)
		// Not in the guide: what the test reads (the hosts a node runs)
		// and its timers.
		n.args = append(n.args, append([]string{"--metrics", "127.0.0.1:9100"}, extra...)...)
		n.start()
	}
	// The end of every labd's log when the test fails (or with
	// LABNET_E2E_LOGS=1).
	c.t.Cleanup(func() {
		if c.t.Failed() || os.Getenv("LABNET_E2E_LOGS") != "" {
			for _, n := range c.nodes {
				c.t.Logf("%s's log (the end):\n%s", n.name, lastLines(n.d.log.String(), 150))
			}
		}
	})
	c.waitAlive(c.nodes, len(c.nodes), 30*time.Second)
}

// invite is the guide's invite of a student's laptop, as the teacher
// runs it (the student as a user, then the laptop as a node they own):
// the arguments of the labd line it prints (--name, --join, --enroll).
func (c *classroom) invite(student string) []string {
	c.t.Helper()
	tch := c.teacher().d
	// The first admin exists once the teacher's control plane has a
	// leader, a moment after its labd is ready.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, errs, code := tch.labctl("user", "invite", student)
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("labctl user invite %s: %s", student, errs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	line := strings.Fields(tch.ok("node", "invite", student, "--owner", student))
	if len(line) < 7 || line[0] != "labd" || line[1] != "--name" || line[2] != student || line[3] != "--join" || line[4] != c.teacher().ip+":7946" || line[5] != "--enroll" {
		c.t.Fatalf("labctl node invite %s printed %q: want labd --name %s --join %s:7946 --enroll TOKEN", student, line, student, c.teacher().ip)
	}
	return line[1:]
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// start runs the node's labd again with the same command.
func (n *classNode) start() {
	t := n.t
	t.Helper()
	n.d = startLabdUnder(t, []string{"ip", "netns", "exec", n.ns.Name()}, n.data, n.args...)
	n.d.api = "127.0.0.1:7700" // labctl runs in the laptop's namespace, as the student's does
}

// aliveCount is how many nodes n's labd lists alive (0 when it does not
// answer).
func (n *classNode) aliveCount() int {
	out, _, code := n.d.labctl("get", "nodes")
	if code != 0 {
		return 0
	}
	return strings.Count(out, " alive ")
}

// waitAlive waits until every node of nodes lists want nodes alive and
// returns how long it took.
func (c *classroom) waitAlive(nodes []*classNode, want int, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	for _, n := range nodes {
		for n.aliveCount() != want {
			if time.Since(start) > timeout {
				out, errs, _ := n.d.labctl("get", "nodes")
				c.t.Fatalf("%s does not see %d nodes alive after %v:\n%s%s\nits log:\n%s", n.name, want, timeout, out, errs, n.d.log)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return time.Since(start)
}

var metricHostRE = regexp.MustCompile(`^labnet_interface_packets_total\{([^}]*)\}`)
var labelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// running lists the hosts n's labd runs now ("lab/host"), from its
// metrics: the interfaces of the hosts its runtime has started, not the
// ones the state assigns it. ok is false when the labd does not answer
// (stopped, or restarting).
func (n *classNode) running() (hosts map[string]bool, ok bool) {
	resp, err := n.metrics.Get("http://127.0.0.1:9100/metrics")
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	hosts = map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := metricHostRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		l := map[string]string{}
		for _, kv := range labelRE.FindAllStringSubmatch(m[1], -1) {
			l[kv[1]] = kv[2]
		}
		hosts[l["lab"]+"/"+l["host"]] = true
	}
	return hosts, sc.Err() == nil
}

// waitRuns waits until n runs every one of hosts.
func (n *classNode) waitRuns(timeout time.Duration, hosts ...string) time.Duration {
	t := n.t
	t.Helper()
	start := time.Now()
	for {
		got, _ := n.running()
		missing := []string{}
		for _, h := range hosts {
			if !got[h] {
				missing = append(missing, h)
			}
		}
		if len(missing) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s does not run %v after %v (runs %v)\nits log:\n%s", n.name, missing, timeout, keys(got), n.d.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// twiceWatch polls every 200 ms what each node runs and records any host
// seen running on two nodes in one round. A node that does not answer (its
// labd is down) runs nothing.
type twiceWatch struct {
	mu      sync.Mutex
	seen    []string
	rounds  int
	stop    chan struct{}
	stopped chan struct{}
}

func (c *classroom) watchTwice() *twiceWatch {
	w := &twiceWatch{stop: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(w.stopped)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			where := map[string][]string{}
			for _, n := range c.nodes {
				got, _ := n.running()
				for h := range got {
					where[h] = append(where[h], n.name)
				}
			}
			w.mu.Lock()
			w.rounds++
			for h, on := range where {
				if len(on) > 1 {
					w.seen = append(w.seen, fmt.Sprintf("%s %s on %v", time.Now().Format("15:04:05.000"), h, on))
				}
			}
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	c.t.Cleanup(w.end)
	return w
}

func (w *twiceWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.stopped
}

// check ends the watch and fails t for every host seen on two nodes.
func (w *twiceWatch) check(t *testing.T) {
	t.Helper()
	w.end()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("no-host-twice watch: %d rounds of every node's running hosts, 200 ms apart", w.rounds)
	if len(w.seen) > 0 {
		t.Errorf("a host ran on two nodes at once (%d sightings):\n%s", len(w.seen), strings.Join(w.seen, "\n"))
	}
}

var workshopRuns = map[string][]string{
	"teacher": {"class/web", "class/r0"},
	"alice":   {"class/r-alice", "class/alice"},
	"bob":     {"class/r-bob", "class/bob"},
	"carol":   {"class/r-carol", "class/carol"},
}

// applyWorkshop applies the guide's lab through the teacher and waits
// until every laptop runs its hosts (dave has no laptop here: his stay
// unavailable) and alice reaches web.
func (c *classroom) applyWorkshop() {
	c.t.Helper()
	c.teacher().d.ok("apply", "-f", examples(c.t, "workshop.yaml"))
	for _, n := range c.nodes {
		n.waitRuns(30*time.Second, workshopRuns[n.name]...)
	}
	c.node("alice").d.waitPing("alice", "web")
}

// writeThrough sets a delay on the student's router through the student's
// labd, and reports whether it was acknowledged (and labctl's stderr).
func writeThrough(n *classNode, delay string) (stderr string, ok bool) {
	_, errs, code := n.d.labctl("impair", "r-"+n.name+":eth1", "--delay", delay)
	return errs, code == 0
}

func requireClassroom(t *testing.T) {
	if testing.Short() {
		t.Skip("a classroom of four labd processes in network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("the classroom tests create network namespaces: run as root (sudo -E go test)")
	}
}

// TestClassroomTeacherRestart: the teacher's labd stopped with Ctrl-C and
// started again with the guide's command, then killed (kill -9) and
// started again 10 s later: every student sees the teacher alive again
// and a write through each student succeeds within seconds, and no host
// runs on two laptops at any moment.
func TestClassroomTeacherRestart(t *testing.T) {
	requireClassroom(t)
	c := newClassroom(t, "alice", "bob", "carol")
	c.start()
	c.applyWorkshop()
	w := c.watchTwice()

	for _, tc := range []struct {
		name  string
		sig   os.Signal
		pause time.Duration
	}{
		{"Ctrl-C", os.Interrupt, 0},
		{"kill -9, started 10 s later", syscall.SIGKILL, 10 * time.Second},
	} {
		tch := c.teacher()
		tch.d.stop(tc.sig)
		time.Sleep(tc.pause)
		tch.start()
		ready := time.Now()
		for _, s := range c.students() {
			for s.aliveCount() != len(c.nodes) {
				if time.Since(ready) > 30*time.Second {
					out, errs, _ := s.d.labctl("get", "nodes")
					t.Fatalf("teacher %s: %s does not see the class after 30s:\n%s%s\nteacher's log:\n%s", tc.name, s.name, out, errs, tch.d.log)
				}
				time.Sleep(100 * time.Millisecond)
			}
			seen := time.Since(ready)
			var firstErr string
			for i := 0; ; i++ {
				errs, ok := writeThrough(s, fmt.Sprintf("%dms", i%50+1))
				if ok {
					break
				}
				if firstErr == "" {
					firstErr = strings.TrimSpace(errs)
				}
				if time.Since(ready) > 30*time.Second {
					t.Fatalf("teacher %s: a write through %s fails 30s after the teacher's start: %s\nstudent's log:\n%s", tc.name, s.name, errs, s.d.log)
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("teacher %s: %s sees the teacher alive %v and writes %v after the teacher's \"labd ready\"",
				tc.name, s.name, seen.Round(time.Millisecond), time.Since(ready).Round(time.Millisecond))
			if firstErr != "" {
				t.Logf("  (%s's first refused write: %s)", s.name, firstErr)
			}
		}
		took := tch.waitRuns(30*time.Second, workshopRuns["teacher"]...)
		t.Logf("teacher %s: the teacher runs web and r0 again %v later", tc.name, took.Round(time.Millisecond))
		c.node("alice").d.waitPing("alice", "web")
	}
	w.check(t)
	for _, n := range c.nodes {
		got, _ := n.running()
		for _, h := range workshopRuns[n.name] {
			if !got[h] {
				t.Errorf("%s does not run %s at the end: %v", n.name, h, keys(got))
			}
		}
	}
}

// extraLab is a lab of hosts without a node: apply spreads them over the
// live nodes, and failover may move them (unlike the workshop's, which
// are pinned with failover: false).
const extraLab = `name: extra
networks:
  - name: x
    ipv4: 10.9.0.0/24
hosts:
`

func extraHosts(n int) string {
	var b strings.Builder
	b.WriteString(extraLab)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  - name: x%d\n    interfaces:\n      - network: x\n        ipv4: 10.9.0.%d/24\n", i, i)
	}
	return b.String()
}

// impairJSON is how `get host -o json` shows a delay of ms milliseconds.
func impairJSON(ms int) string { return fmt.Sprintf(`"%.3fs"`, float64(ms)/1000) }

// TestClassroomStudentCut: a student's laptop cut off from the room (its
// bridge port down) for 10 s, then for 60 s (longer than --failover-after,
// 5 s here), and healed. At no moment does a host run on two laptops: the
// student's pinned hosts stay on it (unavailable to the others), and the
// hosts the leader moves away from it stop on it (it fences itself once
// it has not heard the control plane for nearly the failover time). Writes
// acknowledged by the majority during the cut are on the student after
// the heal, and traffic between the student's host and the teacher's
// recovers; the times are logged.
func TestClassroomStudentCut(t *testing.T) {
	requireClassroom(t)
	c := newClassroom(t, "alice", "bob", "carol")
	c.start("--failover-after", "5s")
	c.applyWorkshop()
	extra := filepath.Join(t.TempDir(), "extra.yaml")
	if err := os.WriteFile(extra, []byte(extraHosts(8)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.teacher().d.ok("apply", "-f", extra)
	alice, bob, tch := c.node("alice"), c.node("bob"), c.teacher()
	// Where apply placed the extra hosts: alice's are the ones that move.
	var onAlice []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		placed := map[string]bool{}
		onAlice = nil
		for _, n := range c.nodes {
			got, _ := n.running()
			for h := range got {
				if strings.HasPrefix(h, "extra/") {
					placed[h] = true
					if n == alice {
						onAlice = append(onAlice, h)
					}
				}
			}
		}
		if len(placed) == 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the extra hosts do not all run after 30s: %v", keys(placed))
		}
		time.Sleep(200 * time.Millisecond)
	}
	sort.Strings(onAlice)
	if len(onAlice) == 0 {
		t.Fatalf("apply placed none of the extra hosts on alice: nothing could fail over")
	}
	t.Logf("alice runs %v of the extra lab", onAlice)
	w := c.watchTwice()

	delay := 10 // ms, the last write's delay on r-alice:eth1
	for _, cut := range []time.Duration{10 * time.Second, 60 * time.Second} {
		c.bridge.Run("ip", "link", "set", alice.port, "down")
		cutAt := time.Now()
		// Writes through the majority during the cut (through bob,
		// forwarded to the teacher): each acknowledged one is the value
		// alice must have after the heal.
		acked := 0
		fencedAt := time.Duration(0)
		movedAt := time.Duration(0)
		for time.Since(cutAt) < cut {
			delay = delay%89 + 11
			if _, _, code := bob.d.labctl("impair", "r-alice:eth1", "--delay", fmt.Sprintf("%dms", delay)); code == 0 {
				acked++
			} else {
				t.Fatalf("cut %v: a write through bob failed at %v", cut, time.Since(cutAt))
			}
			if fencedAt == 0 {
				if got, ok := alice.running(); ok && !anyOf(got, onAlice) {
					fencedAt = time.Since(cutAt)
				}
			}
			if movedAt == 0 && runsAll(c.nodes, alice, onAlice) {
				movedAt = time.Since(cutAt)
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("cut %v: %d writes acknowledged through bob; alice stopped its movable hosts after %v, the others ran them all after %v (0: not during the cut)",
			cut, acked, fencedAt.Round(time.Millisecond), movedAt.Round(time.Millisecond))
		if got, _ := alice.running(); !got["class/alice"] || !got["class/r-alice"] {
			t.Errorf("cut %v: alice stopped its pinned hosts: runs %v", cut, keys(got))
		}

		c.bridge.Run("ip", "link", "set", alice.port, "up")
		healAt := time.Now()
		var pingAfter, aliveAfter, caughtUpAfter time.Duration
		want := impairJSON(delay)
		for pingAfter == 0 || aliveAfter == 0 || caughtUpAfter == 0 {
			if time.Since(healAt) > 60*time.Second {
				out, _, _ := alice.d.labctl("get", "host", "r-alice", "-o", "json")
				t.Errorf("cut %v: not recovered 60s after the heal: ping %v, alive %v, caught up %v (want %s in:\n%s)\nalice's log:\n%s",
					cut, pingAfter, aliveAfter, caughtUpAfter, want, out, alice.d.log)
				break
			}
			if pingAfter == 0 {
				if _, _, code := alice.d.labctl("ping", "alice", "web", "-c", "1", "-W", "0.3"); code == 0 {
					pingAfter = time.Since(healAt)
				}
			}
			if aliveAfter == 0 && alice.aliveCount() == len(c.nodes) && tch.aliveCount() == len(c.nodes) {
				aliveAfter = time.Since(healAt)
			}
			if caughtUpAfter == 0 {
				if out, _, code := alice.d.labctl("get", "host", "r-alice", "-o", "json"); code == 0 && strings.Contains(out, want) {
					caughtUpAfter = time.Since(healAt)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("cut %v healed: first ping reply alice->web %v after the heal; alice and the teacher see all alive %v; alice has the last write (%d acknowledged during the cut) %v",
			cut, pingAfter.Round(time.Millisecond), aliveAfter.Round(time.Millisecond), acked, caughtUpAfter.Round(time.Millisecond))
		// The moved hosts come back home (failback after 5 s alive).
		took := alice.waitRuns(45*time.Second, onAlice...)
		t.Logf("cut %v: alice runs its movable hosts again %v after the heal", cut, time.Since(healAt).Round(time.Millisecond))
		_ = took
	}
	w.check(t)
}

// anyOf reports whether got holds any of hosts.
func anyOf(got map[string]bool, hosts []string) bool {
	for _, h := range hosts {
		if got[h] {
			return true
		}
	}
	return false
}

// runsAll reports whether the nodes other than except run all of hosts.
func runsAll(nodes []*classNode, except *classNode, hosts []string) bool {
	all := map[string]bool{}
	for _, n := range nodes {
		if n == except {
			continue
		}
		got, _ := n.running()
		for h := range got {
			all[h] = true
		}
	}
	for _, h := range hosts {
		if !all[h] {
			return false
		}
	}
	return true
}

// TestFullDiskNotServing: a labd whose data directory is on a small tmpfs
// the test mounts (under its temporary directory, unmounted at the end),
// once that disk is full, fails the writes it cannot persist and turns
// its gRPC health (grpc.health.v1.Health/Check) NOT_SERVING.
func TestFullDiskNotServing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts labd on a tmpfs")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs for the data directory needs root (sudo -E go test)")
	}
	mnt := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "labnet-test", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (a container without CAP_SYS_ADMIN?): %v: %s", err, out)
	}
	t.Cleanup(func() { // after labd is stopped: cleanups run last first
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	d := startLabdArgs(t, filepath.Join(mnt, "data"), "--name", "disk", "--api", "127.0.0.1:0", "--gossip", "127.0.0.1:0", "--overlay", "127.0.0.1:0")
	d.ok("apply", "-f", examples(t, "two-lans.yaml"))
	conn, err := grpc.NewClient(d.api, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	check := func() healthpb.HealthCheckResponse_ServingStatus {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatalf("Health/Check: %v", err)
		}
		return r.Status
	}
	if s := check(); s != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before the disk is full: %v", s)
	}

	// Fill the disk: a file of zeros until ENOSPC.
	f, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 64<<10)
	for {
		if _, err := f.Write(zeros); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	f.Close()

	// Writes until one cannot be persisted (bbolt may have room left in
	// pages it holds); each changes the impairment, so each is a new entry.
	var failed string
	deadline := time.Now().Add(20 * time.Second)
	for i := 1; check() == healthpb.HealthCheckResponse_SERVING; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("health still SERVING 20s after the disk filled (%d writes; last refusal: %q)\nlabd's log:\n%s", i, failed, d.log)
		}
		if _, errs, code := d.labctl("impair", "r1:eth0", "--delay", fmt.Sprintf("%dms", i%500+1)); code != 0 {
			failed = strings.TrimSpace(errs)
		}
	}
	t.Logf("health NOT_SERVING once the disk is full; the write refused: %q", failed)
	if !strings.Contains(d.log.String(), "health NOT_SERVING") {
		t.Errorf("labd's log does not say why health is NOT_SERVING:\n%s", d.log)
	}
}

// TestClassroomRemoveLaptop: the teacher removes alice's laptop (labctl
// node remove). Her hosts, pinned to it with failover: false, run on the
// laptops left at once (hers can never run them again) and bob still
// reaches web; her labd, started again with the same command (its old
// files, the invite used), is refused: the teacher lists it removed and
// never alive, and it runs nothing. A new invite, with the same data
// directory (as the workshop guide says), brings it back, and her hosts
// go home.
func TestClassroomRemoveLaptop(t *testing.T) {
	requireClassroom(t)
	c := newClassroom(t, "alice", "bob")
	c.start("--failover-after", "5s")
	c.applyWorkshop()
	tch, alice, bob := c.teacher(), c.node("alice"), c.node("bob")
	start := time.Now()
	tch.d.ok("node", "remove", "alice")
	for {
		tr, _ := tch.running()
		br, _ := bob.running()
		if anyOf(tr, []string{"class/alice"}) || anyOf(br, []string{"class/alice"}) {
			if anyOf(tr, []string{"class/r-alice"}) || anyOf(br, []string{"class/r-alice"}) {
				break
			}
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("alice's hosts do not run on the laptops left 30 s after her removal: teacher %v, bob %v", keys(tr), keys(br))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("alice's hosts run on the laptops left %v after `labctl node remove alice`", time.Since(start).Round(time.Millisecond))
	bob.d.waitPing("bob", "web")
	// Her labd stops them, and says why.
	for {
		got, _ := alice.running()
		if !anyOf(got, workshopRuns["alice"]) && strings.Contains(alice.d.log.String(), "an admin removed this node") {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the removed laptop still runs %v 30 s after its removal; its log:\n%s", keys(got), lastLines(alice.d.log.String(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("alice's labd stopped her hosts %v after her removal", time.Since(start).Round(time.Millisecond))

	// Her labd again, with the same command.
	alice.d.stop(os.Interrupt)
	alice.start()
	time.Sleep(5 * time.Second)
	out := tch.d.ok("get", "nodes")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "alice" && (!strings.Contains(line, "removed") || strings.Contains(line, " alive ")) {
			t.Errorf("the teacher lists the restarted removed laptop as:\n%s", line)
		}
	}
	if got, _ := alice.running(); anyOf(got, workshopRuns["alice"]) {
		t.Errorf("the removed laptop, restarted, runs %v", keys(got))
	}
	if !strings.Contains(alice.d.log.String(), "an admin removed this node") {
		t.Errorf("the restarted removed laptop does not say it was removed:\n%s", lastLines(alice.d.log.String(), 20))
	}
	own, errs, _ := alice.d.labctl("get", "nodes")
	t.Logf("what alice's own labd says of the class once removed:\n%s%s", own, errs)
	bob.d.waitPing("bob", "web")

	// Back with a new invite, the same data directory: her labd enrols
	// again with a new key.
	alice.d.stop(os.Interrupt)
	line := strings.Fields(tch.d.ok("node", "invite", "alice", "--owner", "alice"))
	i := slices.Index(alice.args, "--enroll")
	if i < 0 || len(line) < 7 {
		t.Fatalf("args %q, invite %q", alice.args, line)
	}
	alice.args[i+1] = line[6]
	alice.start()
	c.waitAlive(c.nodes, len(c.nodes), 30*time.Second)
	alice.waitRuns(60*time.Second, workshopRuns["alice"]...)
	alice.d.waitPing("alice", "web")
}
