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
