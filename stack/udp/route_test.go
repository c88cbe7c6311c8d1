package udp_test

import (
	"net/netip"
	"syscall"
	"testing"
)

// divertLink is a second interface of host a whose packets all reach b, as
// if through a router, and which records the next hops it was given.
type divertLink struct {
	to   *host
	hops *[]netip.Addr
}

func (l divertLink) Send(nextHop netip.Addr, pkt []byte) error {
	*l.hops = append(*l.hops, nextHop)
	l.to.s.Deliver(l.to.nic, pkt)
	return nil
}

// TestConnectedSocketFollowsRouteChanges changes a's routes under a
// connected socket: its datagrams take the new route once the table's
// generation moves, keep their source address, and a socket left without a
// route fails with ENETUNREACH until one comes back.
func TestConnectedSocketFollowsRouteChanges(t *testing.T) {
	l := newLab(t, 0)
	var hops []netip.Addr
	if _, err := l.a.s.AddInterface("eth1", 1500, divertLink{l.b, &hops}, netip.MustParsePrefix("10.0.1.1/24")); err != nil {
		t.Fatal(err)
	}
	router := netip.MustParseAddr("10.0.1.2")
	p := netip.MustParsePrefix
	b := listen(t, l.b, netip.MustParseAddrPort("10.0.0.2:5000"))
	c := dial(t, l.a, netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:5000"))
	src := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), localAddrPort(t, c).Port())

	send := func(step, msg string, wantHops int) {
		t.Helper()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatalf("%s: write: %v", step, err)
		}
		if got, from := recv(t, b); got != msg || from != src {
			t.Errorf("%s: b got %q from %v, want %q from %v", step, got, from, msg, src)
		}
		if len(hops) != wantHops {
			t.Errorf("%s: eth1 carried %d datagrams, want %d", step, len(hops), wantHops)
		}
	}
	change := func(step string, f func() error) {
		t.Helper()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	send("the connected route", "one", 0)
	change("a /32 through eth1", func() error { return l.a.s.AddRoute(p("10.0.0.2/32"), router) })
	send("the /32", "two", 1)
	if len(hops) > 0 && hops[0] != router {
		t.Errorf("next hop %v, want %v", hops[0], router)
	}
	change("remove the /32", func() error { return l.a.s.RemoveRoute(p("10.0.0.2/32")) })
	send("the connected route again", "three", 1)

	// A peer reached only through a static route, which goes and comes
	// back. b drops what it gets for 10.5.5.5 (not its address); what
	// matters is where a sends.
	change("10.5.5.0/24 through eth1", func() error { return l.a.s.AddRoute(p("10.5.5.0/24"), router) })
	far := dial(t, l.a, netip.AddrPort{}, netip.MustParseAddrPort("10.5.5.5:9"))
	if got := localAddrPort(t, far).Addr(); got != netip.MustParseAddr("10.0.1.1") {
		t.Errorf("source toward 10.5.5.5: %v, want eth1's", got)
	}
	if _, err := far.Write([]byte("x")); err != nil || len(hops) != 2 {
		t.Errorf("through the route: %v, %d hops", err, len(hops))
	}
	change("remove 10.5.5.0/24", func() error { return l.a.s.RemoveRoute(p("10.5.5.0/24")) })
	_, err := far.Write([]byte("x"))
	checkOpError(t, err, "write", syscall.ENETUNREACH)
	change("10.5.5.0/24 back", func() error { return l.a.s.AddRoute(p("10.5.5.0/24"), router) })
	if _, err := far.Write([]byte("x")); err != nil || len(hops) != 3 {
		t.Errorf("through the route again: %v, %d hops", err, len(hops))
	}
}
