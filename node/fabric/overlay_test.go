package fabric_test

import (
	"context"
	"crypto/sha256"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/node/overlay"
	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/tcp"
)

// node is one "labd": a fabric with an overlay link on 127.0.0.x.
type node struct {
	f    *fabric.Fabric
	conn *overlay.Conn
}

func newNode(t *testing.T, ip string, key *overlay.Key, opts ...overlay.LinkOption) *node {
	c, err := overlay.Listen(netip.AddrPortFrom(netip.MustParseAddr(ip), 0), overlay.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	f := fabric.New()
	link := overlay.NewLink(c, f.DeliverRemote, opts...)
	f.SetRemote(link)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- link.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("link: %v", err)
		}
	})
	return &node{f: f, conn: c}
}

// host attaches a stack with one interface to network on n; its receive
// loop runs until the test ends.
func (n *node) host(t *testing.T, network, addr string) *stack.Stack {
	s := stack.New(stack.Config{Name: addr, Clock: stack.SystemClock{}})
	prefix := netip.MustParsePrefix(addr)
	in := make(chan []byte, 4096)
	var nic *stack.NIC
	port, err := n.f.Attach(network, addr, []netip.Addr{prefix.Addr()}, func(p []byte) {
		select {
		case in <- p:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	nic, err = s.AddInterface("eth0", 1400, port, prefix)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case p := <-in:
				s.Deliver(nic, p)
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); port.Detach() })
	return s
}

// TestOverlay joins two fabrics over GENEVE on loopback: a host on each
// pings the other and moves 4 MiB over TCP, sealed and not.
func TestOverlay(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		var key *overlay.Key
		if sealed {
			var err error
			if key, err = overlay.NewKey([]byte("classroom secret")); err != nil {
				t.Fatal(err)
			}
		}
		a, b := newNode(t, "127.0.0.1", key), newNode(t, "127.0.0.1", key)
		const net = "labs/x/networks/lan"
		a.f.SetNetwork(net, 4242, map[netip.Addr]netip.AddrPort{netip.MustParseAddr("10.0.0.2"): b.conn.LocalAddr()})
		b.f.SetNetwork(net, 4242, map[netip.Addr]netip.AddrPort{netip.MustParseAddr("10.0.0.1"): a.conn.LocalAddr()})
		sa := a.host(t, net, "10.0.0.1/24")
		sb := b.host(t, net, "10.0.0.2/24")

		ep, err := sa.OpenEcho(false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ep.Send(netip.MustParseAddr("10.0.0.2"), 1, 0, []byte("over the overlay")); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-ep.Events():
			if !ev.Reply || ev.From != netip.MustParseAddr("10.0.0.2") {
				t.Fatalf("event %+v", ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no echo reply across the overlay")
		}
		ep.Close()

		ta, tb := tcp.New(sa, tcp.Options{}), tcp.New(sb, tcp.Options{})
		l, err := tb.Listen(netip.AddrPortFrom(netip.Addr{}, 9))
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 4<<20)
		for i := range data {
			data[i] = byte(i * 13)
		}
		got := make(chan []byte, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				got <- nil
				return
			}
			b, _ := io.ReadAll(c)
			c.Close()
			got <- b
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := ta.Dial(ctx, netip.MustParseAddrPort("10.0.0.2:9"))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.Write(data)
		c.Close()
		select {
		case b := <-got:
			if sha256.Sum256(b) != sha256.Sum256(data) {
				t.Fatalf("sealed=%v: %d bytes arrived, differing", sealed, len(b))
			}
			t.Logf("sealed=%v: 4 MiB in %v (%+v)", sealed, time.Since(start), c.Info().Retransmits)
		case <-time.After(20 * time.Second):
			t.Fatalf("transfer stuck: %+v", c.Info())
		}
		ta.Close()
		tb.Close()
	}
}
