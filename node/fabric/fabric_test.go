package fabric

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/labnet-dev/labnet/stack"
)

func TestDeliveryByNextHop(t *testing.T) {
	f := New()
	var got [][]byte
	a, err := f.Attach("labs/x/networks/lan", "a:eth0", []netip.Addr{netip.MustParseAddr("10.0.0.1")}, func(p []byte) { got = append(got, p) })
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Attach("labs/x/networks/lan", "b:eth0", []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2")}, func(p []byte) { got = append(got, append([]byte("b:"), p...)) })
	if err != nil {
		t.Fatal(err)
	}
	// Another network with the same address is a different segment.
	if _, err := f.Attach("labs/y/networks/lan", "c:eth0", []netip.Addr{netip.MustParseAddr("10.0.0.2")}, func([]byte) { t.Error("delivered across networks") }); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(netip.MustParseAddr("10.0.0.2"), []byte("v4")); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(netip.MustParseAddr("fd00::2"), []byte("v6")); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(netip.MustParseAddr("10.0.0.1"), []byte("back")); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || string(got[0]) != "b:v4" || string(got[1]) != "b:v6" || string(got[2]) != "back" {
		t.Fatalf("got %q", got)
	}
	if err := a.Send(netip.MustParseAddr("10.0.0.9"), []byte("x")); !errors.Is(err, stack.ErrHostUnreachable) {
		t.Fatalf("send to nobody: %v", err)
	}
	if owner, ok := f.Owner("labs/x/networks/lan", netip.MustParseAddr("fd00::2")); !ok || owner != "b:eth0" {
		t.Errorf("Owner = %q %v", owner, ok)
	}
}

func TestAttachConflictAndDetach(t *testing.T) {
	f := New()
	addr := []netip.Addr{netip.MustParseAddr("10.0.0.1")}
	a, err := f.Attach("n", "a", addr, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Attach("n", "b", addr, func([]byte) {}); err == nil {
		t.Fatal("two owners of one address")
	}
	a.Detach()
	a.Detach() // idempotent
	if _, ok := f.Owner("n", addr[0]); ok {
		t.Fatal("owner after detach")
	}
	if len(f.segs) != 0 {
		t.Fatalf("empty segment kept: %v", f.segs)
	}
	if _, err := f.Attach("n", "b", addr, func([]byte) {}); err != nil {
		t.Fatalf("reattach after detach: %v", err)
	}
}

func BenchmarkSend(b *testing.B) {
	f := New()
	a, _ := f.Attach("n", "a", []netip.Addr{netip.MustParseAddr("10.0.0.1")}, func([]byte) {})
	f.Attach("n", "b", []netip.Addr{netip.MustParseAddr("10.0.0.2")}, func([]byte) {})
	pkt := make([]byte, 1400)
	dst := netip.MustParseAddr("10.0.0.2")
	b.ReportAllocs()
	for b.Loop() {
		a.Send(dst, pkt)
	}
}

// fakeRemote records what the fabric hands to the overlay.
type fakeRemote struct{ sent []netip.AddrPort }

func (r *fakeRemote) SendRemote(peer netip.AddrPort, vni uint32, nextHop netip.Addr, pkt []byte) error {
	r.sent = append(r.sent, peer)
	return nil
}

// TestNextHopMoves: a port that has just sent to a next hop notices at once
// when the hop's owner goes, comes back elsewhere, or moves to another node
// (each port remembers where its last next hop was).
func TestNextHopMoves(t *testing.T) {
	f := New()
	r := &fakeRemote{}
	f.SetRemote(r)
	const network = "labs/x/networks/lan"
	dst := netip.MustParseAddr("10.0.0.2")
	var toB, toC int
	a, err := f.Attach(network, "a:eth0", []netip.Addr{netip.MustParseAddr("10.0.0.1")}, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Attach(network, "b:eth0", []netip.Addr{dst}, func([]byte) { toB++ })
	if err != nil {
		t.Fatal(err)
	}
	send := func() error { return a.Send(dst, []byte("x")) }
	if err := send(); err != nil || toB != 1 {
		t.Fatalf("to b: %v, b got %d", err, toB)
	}
	b.Detach()
	if err := send(); !errors.Is(err, stack.ErrHostUnreachable) || toB != 1 {
		t.Fatalf("after b left: %v, b got %d", err, toB)
	}
	c, err := f.Attach(network, "c:eth0", []netip.Addr{dst}, func([]byte) { toC++ })
	if err != nil {
		t.Fatal(err)
	}
	if err := send(); err != nil || toC != 1 || toB != 1 {
		t.Fatalf("after c took the address: %v, b got %d, c %d", err, toB, toC)
	}
	// The address moves to another node: c leaves, the overlay carries it.
	peer := netip.MustParseAddrPort("127.0.0.2:6081")
	c.Detach()
	f.SetNetwork(network, 7, map[netip.Addr]netip.AddrPort{dst: peer})
	if err := send(); err != nil || toC != 1 || len(r.sent) != 1 || r.sent[0] != peer {
		t.Fatalf("after the address moved to %v: %v, c got %d, overlay %v", peer, err, toC, r.sent)
	}
	peer2 := netip.MustParseAddrPort("127.0.0.3:6081")
	f.SetNetwork(network, 7, map[netip.Addr]netip.AddrPort{dst: peer2})
	if err := send(); err != nil || len(r.sent) != 2 || r.sent[1] != peer2 {
		t.Fatalf("after it moved on to %v: %v, overlay %v", peer2, err, r.sent)
	}
	f.SetNetwork(network, 7, nil)
	if err := send(); !errors.Is(err, stack.ErrHostUnreachable) || len(r.sent) != 2 {
		t.Fatalf("after it left the cluster: %v, overlay %v", err, r.sent)
	}
	// Arrivals from the overlay find the owner the same way.
	if _, err := f.Attach(network, "d:eth0", []netip.Addr{dst}, func([]byte) { toB++ }); err != nil {
		t.Fatal(err)
	}
	if !f.DeliverRemote(7, dst, []byte("x")) || toB != 2 {
		t.Fatalf("arrival for d: b+d got %d", toB)
	}
}
