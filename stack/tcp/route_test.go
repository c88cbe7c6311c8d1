package tcp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/stack"
)

// twoLinks is host a joined to host b by two networks, with b's service
// address 10.9.9.9 reachable through either:
//
//	a eth0 10.0.0.1/24 --- b eth0 10.0.0.2/24, 10.9.9.9/32
//	a eth1 10.0.1.1/24 --- b eth1 10.0.1.2/24
//
// a starts with 10.9.9.0/24 via 10.0.0.2.
type twoLinks struct {
	a, b       *stack.Stack
	ta, tb     *Protocol
	aEth, bEth [2]*stack.NIC
}

func newTwoLinks(t *testing.T) *twoLinks {
	t.Helper()
	n := &twoLinks{
		a: stack.New(stack.Config{Name: "a", Clock: stack.SystemClock{}}),
		b: stack.New(stack.Config{Name: "b", Clock: stack.SystemClock{}}),
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// link returns a chanLink whose packets a goroutine delivers to the
	// NIC *to once it exists.
	link := func(s *stack.Stack, to **stack.NIC) *chanLink {
		l := &chanLink{ch: make(chan []byte, 4096)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case pkt := <-l.ch:
					s.Deliver(*to, pkt)
				case <-stop:
					return
				}
			}
		}()
		return l
	}
	p := netip.MustParsePrefix
	var err error
	for i, addrs := range [2][2][]netip.Prefix{
		{{p("10.0.0.1/24")}, {p("10.0.0.2/24"), p("10.9.9.9/32")}},
		{{p("10.0.1.1/24")}, {p("10.0.1.2/24")}},
	} {
		name := []string{"eth0", "eth1"}[i]
		if n.aEth[i], err = n.a.AddInterface(name, 1500, link(n.b, &n.bEth[i]), addrs[0]...); err != nil {
			t.Fatal(err)
		}
		if n.bEth[i], err = n.b.AddInterface(name, 1500, link(n.a, &n.aEth[i]), addrs[1]...); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.a.AddRoute(p("10.9.9.0/24"), netip.MustParseAddr("10.0.0.2")); err != nil {
		t.Fatal(err)
	}
	n.ta, n.tb = New(n.a, Options{}), New(n.b, Options{})
	t.Cleanup(func() {
		n.ta.Close()
		n.tb.Close()
		close(stop)
		wg.Wait()
	})
	return n
}

// TestConnectionFollowsRouteChanges changes a's routes under an open
// connection: its data takes the new route once the table's generation
// moves, and a connection left without a route carries on when one comes
// back (the lost segments are retransmitted).
func TestConnectionFollowsRouteChanges(t *testing.T) {
	n := newTwoLinks(t)
	l, err := n.tb.Listen(netip.MustParseAddrPort("10.9.9.9:80"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := n.ta.Dial(ctx, netip.MustParseAddrPort("10.9.9.9:80"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(10 * time.Second))
	local := func() netip.Addr {
		return c.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Addr()
	}
	eth0Addr := netip.MustParseAddr("10.0.0.1")
	if local() != eth0Addr {
		t.Fatalf("local address %v, want eth0's", local())
	}

	const chunk = 64 << 10
	data := randomData(6*chunk, 11)
	next := data
	// send writes the next chunk and reads it on b, and reports the bytes
	// each of a's interfaces sent meanwhile.
	send := func(step string, between func()) (eth0, eth1 uint64) {
		t.Helper()
		before0, before1 := n.aEth[0].Counters().TxBytes, n.aEth[1].Counters().TxBytes
		if _, err := c.Write(next[:chunk]); err != nil {
			t.Fatalf("%s: write: %v", step, err)
		}
		if between != nil {
			between()
		}
		got := make([]byte, chunk)
		if _, err := io.ReadFull(s, got); err != nil {
			t.Fatalf("%s: read: %v (sender %+v)", step, err, c.Info())
		}
		if !bytes.Equal(got, next[:chunk]) {
			t.Fatalf("%s: b read other bytes than a wrote", step)
		}
		next = next[chunk:]
		return n.aEth[0].Counters().TxBytes - before0, n.aEth[1].Counters().TxBytes - before1
	}
	// on says the chunk went through the interface that sent at least its
	// bytes; the other may have counted the tail of the previous step
	// (a NIC counts a packet after the link took it, which can be after b
	// read it).
	on := func(chunkOn, other uint64) bool { return chunkOn >= chunk && other < chunk/4 }
	route := func(step string, f func() error) {
		t.Helper()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	p := netip.MustParsePrefix
	via1 := netip.MustParseAddr("10.0.1.2")

	if e0, e1 := send("the /24 through eth0", nil); !on(e0, e1) {
		t.Errorf("the /24: eth0 sent %d bytes, eth1 %d; want the chunk on eth0", e0, e1)
	}
	route("add a /32 through eth1", func() error { return n.a.AddRoute(p("10.9.9.9/32"), via1) })
	if e0, e1 := send("the /32 through eth1", nil); !on(e1, e0) {
		t.Errorf("the /32: eth0 sent %d bytes, eth1 %d; want the chunk on eth1", e0, e1)
	}
	route("remove the /32", func() error { return n.a.RemoveRoute(p("10.9.9.9/32")) })
	if e0, e1 := send("the /24 again", nil); !on(e0, e1) {
		t.Errorf("the /24 again: eth0 sent %d bytes, eth1 %d; want the chunk on eth0", e0, e1)
	}
	// No route at all: what is written waits, retransmitted, until a
	// route appears (through eth1 this time).
	route("remove the /24", func() error { return n.a.RemoveRoute(p("10.9.9.0/24")) })
	e0, e1 := send("no route, then the /24 through eth1", func() {
		time.Sleep(300 * time.Millisecond) // past the first RTO
		route("add the /24 through eth1", func() error { return n.a.AddRoute(p("10.9.9.0/24"), via1) })
	})
	if !on(e1, e0) {
		t.Errorf("after the outage: eth0 sent %d bytes, eth1 %d; want the chunk on eth1", e0, e1)
	}
	if info := c.Info(); info.Retransmits == 0 {
		t.Errorf("no retransmission after the outage: %+v", info)
	}
	// What IP refused while there was no route is counted, not lost unseen.
	if st := n.ta.Stats(); st.SendErrors == 0 {
		t.Errorf("no send error counted during the outage: %+v", st)
	}
	// The connection is the one it was: its source address stayed eth0's,
	// which b still answers on eth0.
	if local() != eth0Addr {
		t.Errorf("local address moved to %v", local())
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(s); err != nil || len(rest) != 0 {
		t.Errorf("after the FIN: %d more bytes, %v", len(rest), err)
	}
}

// TestDialAddressFamilies: a local address of the other family than the
// remote's is an error, not a packet that cannot be built.
func TestDialAddressFamilies(t *testing.T) {
	p := newPair(t, 1500, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct{ laddr, raddr string }{
		{"[fd00::1]:0", "10.0.0.2:80"},
		{"10.0.0.1:0", "[fd00::2]:80"},
	} {
		_, err := p.ta.DialFrom(ctx, netip.MustParseAddrPort(tc.laddr), netip.MustParseAddrPort(tc.raddr))
		if !errors.Is(err, stack.ErrAddressFamily) {
			t.Errorf("DialFrom(%s, %s) = %v, want ErrAddressFamily", tc.laddr, tc.raddr, err)
		}
	}
}
