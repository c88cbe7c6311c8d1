package runtime

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/lab"
	"github.com/labnet-dev/labnet/node/store"
	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
	"github.com/labnet-dev/labnet/stack"
)

// The reconciler, driven one Reconcile at a time over a real store and
// real fabrics: what runs, and on which stack.

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{Origin: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// write stores hosts and networks through the lab model, as apply and
// failover do.
func write(t *testing.T, st *store.Store, msgs ...proto.Message) {
	t.Helper()
	_, err := st.Update(func(tx *store.Tx) error {
		for _, m := range msgs {
			var err error
			switch m := m.(type) {
			case *labv1.Host:
				err = lab.PutHost(tx, m)
			case *labv1.Network:
				err = lab.PutNetwork(tx, m)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, st *store.Store, name string) {
	t.Helper()
	if _, err := st.Update(func(tx *store.Tx) error { return lab.Delete(tx, name) }); err != nil {
		t.Fatal(err)
	}
}

func lanHost(id, node, addr string) *labv1.Host {
	return &labv1.Host{Name: lab.HostName("l", id), Node: node, Interfaces: []*labv1.Interface{{Name: "eth0", Network: "lan", Ipv4: addr}}}
}

// listen opens a TCP listener on h and reports Accept's error: a stopped
// host closes its sockets.
func listen(t *testing.T, h *Host) <-chan error {
	t.Helper()
	l, err := h.TCP().Listen(netip.MustParseAddrPort("0.0.0.0:80"))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if c != nil {
			c.Close()
		}
		errc <- err
	}()
	return errc
}

func wantClosed(t *testing.T, what string, accepted <-chan error) {
	t.Helper()
	select {
	case err := <-accepted:
		if err == nil {
			t.Errorf("%s: a connection was accepted", what)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: the old host's listener is still open", what)
	}
}

// ping sends an echo request from h to dst and waits for the reply.
func ping(t *testing.T, h *Host, dst string) {
	t.Helper()
	ep, err := h.Stack().OpenEcho(false)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if _, err := ep.Send(netip.MustParseAddr(dst), 1, 0, []byte("hi")); err != nil {
		t.Fatalf("ping %s: %v", dst, err)
	}
	select {
	case ev := <-ep.Events():
		if !ev.Reply || ev.From != netip.MustParseAddr(dst) {
			t.Fatalf("ping %s: event %+v", dst, ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("ping %s: no reply", dst)
	}
}

func running(t *testing.T, rt *Runtime, name string) *Host {
	t.Helper()
	h, ok := rt.Host(name)
	if !ok {
		t.Fatalf("%s is not running on %s", name, rt.cfg.Node)
	}
	return h
}

func TestReconcileRestartAndStop(t *testing.T) {
	st := openStore(t)
	fab := fabric.New()
	rt := New(Config{Node: "n1", Store: st, Fabric: fab})
	defer rt.stopAll()
	lan := &labv1.Network{Name: lab.NetworkName("l", "lan"), Ipv4: "10.0.0.0/24", Vni: 5}
	a := lanHost("a", "n1", "10.0.0.1/24")
	write(t, st, lan, a)

	rt.Reconcile()
	if rt.Count() != 1 {
		t.Fatalf("Count = %d after start, want 1", rt.Count())
	}
	h1 := running(t, rt, a.Name)
	if owner, ok := fab.Owner(lan.Name, netip.MustParseAddr("10.0.0.1")); !ok || owner != a.Name+":eth0" {
		t.Fatalf("10.0.0.1 owned by %q, %v", owner, ok)
	}
	accepted := listen(t, h1)

	// Reconciling an unchanged store keeps the host.
	rt.Reconcile()
	if h := running(t, rt, a.Name); h != h1 {
		t.Fatal("an unchanged host was restarted")
	}

	// A spec change (forwarding) restarts: a new stack, the old one stopped.
	a2 := proto.CloneOf(a)
	a2.Forwarding = true
	write(t, st, a2)
	rt.Reconcile()
	h2 := running(t, rt, a.Name)
	if h2 == h1 || h2.Stack() == h1.Stack() {
		t.Fatal("a spec change did not give the host a new stack")
	}
	wantClosed(t, "after a spec change", accepted)
	if rt.Count() != 1 {
		t.Errorf("Count = %d after a restart, want 1", rt.Count())
	}
	if _, ok := fab.Owner(lan.Name, netip.MustParseAddr("10.0.0.1")); !ok {
		t.Error("the restarted host's interface is not attached")
	}

	// A change of its network restarts it too.
	accepted = listen(t, h2)
	lan2 := proto.CloneOf(lan)
	lan2.Mtu = 1300
	write(t, st, lan2)
	rt.Reconcile()
	h3 := running(t, rt, a.Name)
	if h3.Stack() == h2.Stack() {
		t.Fatal("a network change did not restart the host")
	}
	wantClosed(t, "after a network change", accepted)

	// Deleting it stops it: gone from Host, Count and All, detached.
	accepted = listen(t, h3)
	remove(t, st, a.Name)
	rt.Reconcile()
	if _, ok := rt.Host(a.Name); ok {
		t.Fatal("a deleted host runs")
	}
	if rt.Count() != 0 {
		t.Errorf("Count = %d after delete", rt.Count())
	}
	for name := range rt.All() {
		t.Errorf("All yields %s after delete", name)
	}
	if _, ok := fab.Owner(lan.Name, netip.MustParseAddr("10.0.0.1")); ok {
		t.Error("the deleted host's address is still attached")
	}
	wantClosed(t, "after delete", accepted)
}

// bridge is an overlay between in-memory fabrics: a packet for a peer goes
// to that peer's fabric.
type bridge map[netip.AddrPort]*fabric.Fabric

func (b bridge) SendRemote(peer netip.AddrPort, vni uint32, nextHop netip.Addr, pkt []byte) error {
	f := b[peer]
	if f == nil || !f.DeliverRemote(vni, nextHop, pkt) {
		return net.ErrClosed
	}
	return nil
}

// TestReconcileFailoverHandOff: when a host's record moves to another node
// (failover), it stops here and starts there, and the nodes' fabrics learn
// where its address now lives.
func TestReconcileFailoverHandOff(t *testing.T) {
	st := openStore(t) // one store for both: replication is not under test
	p1, p2 := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2")
	f1, f2 := fabric.New(), fabric.New()
	br := bridge{p1: f1, p2: f2}
	f1.SetRemote(br)
	f2.SetRemote(br)
	peers := map[string]netip.AddrPort{"n1": p1, "n2": p2}
	others := func(self string) func() map[string]netip.AddrPort {
		return func() map[string]netip.AddrPort {
			m := map[string]netip.AddrPort{}
			for n, p := range peers {
				if n != self {
					m[n] = p
				}
			}
			return m
		}
	}
	rt1 := New(Config{Node: "n1", Store: st, Fabric: f1, Peers: others("n1")})
	rt2 := New(Config{Node: "n2", Store: st, Fabric: f2, Peers: others("n2")})
	defer rt1.stopAll()
	defer rt2.stopAll()
	reconcile := func() { rt1.Reconcile(); rt2.Reconcile() }

	lan := &labv1.Network{Name: lab.NetworkName("l", "lan"), Ipv4: "10.0.0.0/24", Vni: 5}
	a := lanHost("a", "n1", "10.0.0.1/24")
	b := lanHost("b", "n2", "10.0.0.2/24")
	write(t, st, lan, a, b)
	reconcile()
	ha := running(t, rt1, a.Name)
	hb := running(t, rt2, b.Name)
	if rt1.Count() != 1 || rt2.Count() != 1 {
		t.Fatalf("counts %d, %d: each node runs its own host only", rt1.Count(), rt2.Count())
	}
	ping(t, ha, "10.0.0.2") // across the bridge: n1 knows b is on n2

	// b's node is gone: failover writes b on n1. n2 stops it, n1 starts it.
	accepted := listen(t, hb)
	moved := proto.CloneOf(b)
	moved.Node = "n1"
	write(t, st, moved)
	rt2.Reconcile()
	if _, ok := rt2.Host(b.Name); ok || rt2.Count() != 0 {
		t.Fatal("b still runs on n2 after it moved away")
	}
	wantClosed(t, "b moved away", accepted)
	rt1.Reconcile()
	hb1 := running(t, rt1, b.Name)
	if hb1.Stack() == hb.Stack() || rt1.Count() != 2 {
		t.Fatalf("b on n1: same stack %v, count %d", hb1.Stack() == hb.Stack(), rt1.Count())
	}
	if running(t, rt1, a.Name) != ha {
		t.Error("a was restarted by b's move")
	}
	ping(t, ha, "10.0.0.2") // now on the same node

	// And back: n1 stops it, n2 starts it, and n1 sends to n2 again.
	back := proto.CloneOf(b)
	write(t, st, back)
	reconcile()
	if _, ok := rt1.Host(b.Name); ok {
		t.Fatal("b still runs on n1 after it moved back")
	}
	running(t, rt2, b.Name)
	ping(t, ha, "10.0.0.2")
}

// TestReconcileWaitsForNetwork: a host whose network has not replicated
// yet is not started (and not counted) until the network arrives.
func TestReconcileWaitsForNetwork(t *testing.T) {
	st := openStore(t)
	rt := New(Config{Node: "n1", Store: st, Fabric: fabric.New()})
	defer rt.stopAll()
	a := lanHost("a", "n1", "10.0.0.1/24")
	write(t, st, a)
	rt.Reconcile()
	if _, ok := rt.Host(a.Name); ok || rt.Count() != 0 {
		t.Fatal("a host without its network runs")
	}
	// A network of the same id in another lab is not a's.
	write(t, st, &labv1.Network{Name: lab.NetworkName("other", "lan"), Ipv4: "10.0.0.0/24", Vni: 6})
	rt.Reconcile()
	if rt.Count() != 0 {
		t.Fatal("a host started on another lab's network")
	}
	write(t, st, &labv1.Network{Name: lab.NetworkName("l", "lan"), Ipv4: "10.0.0.0/24", Vni: 5})
	rt.Reconcile()
	h := running(t, rt, a.Name)
	if got := h.Networks()["eth0"]; got != "lan" {
		t.Errorf("Networks()[eth0] = %q", got)
	}
}

// TestReconcileManyHostsOneChange starts many hosts at once (on parallel
// workers, each with its interface and default route), then changes one:
// only that one restarts, and the others keep their stacks.
func TestReconcileManyHostsOneChange(t *testing.T) {
	st := openStore(t)
	fab := fabric.New()
	var startedMu sync.Mutex
	started := map[string]int{}
	rt := New(Config{Node: "n1", Store: st, Fabric: fab, Started: func(name string, _ *stack.Stack) {
		startedMu.Lock()
		started[name]++
		startedMu.Unlock()
	}})
	defer rt.stopAll()
	msgs := []proto.Message{&labv1.Network{Name: lab.NetworkName("l", "lan"), Ipv4: "10.0.0.0/24", Vni: 5}}
	const n = 64
	for i := range n {
		h := lanHost(fmt.Sprintf("h%d", i), "n1", fmt.Sprintf("10.0.0.%d/24", i+2))
		h.Routes = []*labv1.Route{{To: "default", Via: "10.0.0.1"}}
		msgs = append(msgs, h)
	}
	write(t, st, msgs...)
	rt.Reconcile()
	if rt.Count() != n {
		t.Fatalf("Count = %d, want %d", rt.Count(), n)
	}
	before := map[string]*Host{}
	for name, h := range rt.All() {
		before[name] = h
		if rs := h.Stack().Routes(); len(rs) != 2 || rs[1].Dst.Bits() != 0 || rs[1].Via != netip.MustParseAddr("10.0.0.1") {
			t.Errorf("%s: routes %v, want the connected /24 and the default via 10.0.0.1", name, rs)
		}
	}

	changed := lanHost("h7", "n1", "10.0.0.9/24")
	changed.Forwarding = true
	changed.Routes = []*labv1.Route{{To: "default", Via: "10.0.0.1"}}
	write(t, st, changed)
	rt.Reconcile()
	for name, h := range rt.All() {
		if same := before[name] == h; same != (name != changed.Name) {
			t.Errorf("%s: kept its stack = %v", name, same)
		}
	}
	startedMu.Lock()
	defer startedMu.Unlock()
	for name, times := range started {
		if want := map[bool]int{true: 2, false: 1}[name == changed.Name]; times != want {
			t.Errorf("%s started %d times, want %d", name, times, want)
		}
	}
	if len(started) != n {
		t.Errorf("Started called for %d hosts, want %d", len(started), n)
	}
}
