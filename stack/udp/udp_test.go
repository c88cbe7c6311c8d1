package udp_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/labnet-dev/labnet/stack/udp"
	"github.com/labnet-dev/labnet/stack/wire"
)

// patience bounds every blocking call a test expects to return: delivery is
// synchronous, so a datagram is queued before its send returns, and this is
// only reached when something is broken.
const patience = 5 * time.Second

var cmpOpts = []cmp.Option{cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})}

func listen(tb testing.TB, h *host, laddr netip.AddrPort) *udp.PacketConn {
	tb.Helper()
	c, err := h.udp.ListenPacket(laddr)
	if err != nil {
		tb.Fatalf("%s: ListenPacket(%v): %v", h.name, laddr, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func dial(tb testing.TB, h *host, laddr, raddr netip.AddrPort) *udp.Conn {
	tb.Helper()
	c, err := h.udp.Dial(laddr, raddr)
	if err != nil {
		tb.Fatalf("%s: Dial(%v, %v): %v", h.name, laddr, raddr, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func localAddrPort(tb testing.TB, c interface{ LocalAddr() net.Addr }) netip.AddrPort {
	tb.Helper()
	ua, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		tb.Fatalf("LocalAddr() is %T, want *net.UDPAddr", c.LocalAddr())
	}
	return ua.AddrPort()
}

// recv reads one datagram, failing the test if none comes.
func recv(tb testing.TB, c *udp.PacketConn) (string, netip.AddrPort) {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(patience))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 65536)
	n, from, err := c.ReadFrom(buf)
	if err != nil {
		tb.Fatalf("ReadFrom: %v", err)
	}
	return string(buf[:n]), from.(*net.UDPAddr).AddrPort()
}

// checkOpError fails unless err is a *net.OpError for op on "udp" wrapping
// want (anything, when want is nil).
func checkOpError(tb testing.TB, err error, op string, want error) *net.OpError {
	tb.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) {
		tb.Fatalf("error %v (%T), want a *net.OpError", err, err)
	}
	if oe.Op != op || oe.Net != "udp" {
		tb.Errorf("OpError Op %q Net %q, want %q %q", oe.Op, oe.Net, op, "udp")
	}
	if want != nil && !errors.Is(err, want) {
		tb.Errorf("error %v, want one wrapping %v", err, want)
	}
	return oe
}

func TestDatagramBothWays(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			l := newLab(t, 0)
			server := listen(t, l.b, netip.AddrPortFrom(l.b.addr(v6), 7))
			client := listen(t, l.a, netip.AddrPortFrom(unspecified(v6), 0))
			cport := localAddrPort(t, client).Port()

			to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.b.addr(v6), 7))
			if n, err := client.WriteTo([]byte("hello, lab!"), to); err != nil || n != 11 {
				t.Fatalf("WriteTo = %d, %v", n, err)
			}
			msg, from := recv(t, server)
			if want := netip.AddrPortFrom(l.a.addr(v6), cport); msg != "hello, lab!" || from != want {
				t.Errorf("server got %q from %v, want %q from %v", msg, from, "hello, lab!", want)
			}
			// An empty datagram is a datagram too (RFC 768).
			for _, reply := range []string{"HELLO, LAB!", ""} {
				if _, err := server.WriteTo([]byte(reply), net.UDPAddrFromAddrPort(from)); err != nil {
					t.Fatalf("reply: %v", err)
				}
				msg, rfrom := recv(t, client)
				if msg != reply || rfrom != netip.AddrPortFrom(l.b.addr(v6), 7) {
					t.Errorf("client got %q from %v", msg, rfrom)
				}
			}

			// On the wire: three datagrams, every checksum verifying by an
			// independent computation.
			var got []carried
			for _, pkt := range l.packets() {
				c := parsePacket(t, pkt)
				if c.proto != wire.ProtoUDP {
					t.Fatalf("unexpected packet of protocol %d", c.proto)
				}
				naiveUDPCheck(t, c.src, c.dst, c.payload)
				c.payload = nil
				got = append(got, c)
			}
			a, b := l.a.addr(v6), l.b.addr(v6)
			want := []carried{
				{src: a, dst: b, proto: wire.ProtoUDP, srcPort: cport, dstPort: 7},
				{src: b, dst: a, proto: wire.ProtoUDP, srcPort: 7, dstPort: cport},
				{src: b, dst: a, proto: wire.ProtoUDP, srcPort: 7, dstPort: cport},
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(carried{}), cmpOpts[0]); diff != "" {
				t.Errorf("packets (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(udp.Stats{InDatagrams: 1, OutDatagrams: 2}, l.b.udp.Stats()); diff != "" {
				t.Errorf("b stats (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(udp.Stats{InDatagrams: 2, OutDatagrams: 1}, l.a.udp.Stats()); diff != "" {
				t.Errorf("a stats (-want +got):\n%s", diff)
			}
		})
	}
}

// A host sends to itself through the stack's loopback path.
func TestSendToSelf(t *testing.T) {
	l := newLab(t, 0)
	c1 := listen(t, l.a, netip.AddrPort{})
	c2 := listen(t, l.a, netip.AddrPortFrom(l.a.v6, 0))
	if _, err := c2.WriteTo([]byte("me"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.a.v6, localAddrPort(t, c1).Port()))); err != nil {
		t.Fatal(err)
	}
	if msg, from := recv(t, c1); msg != "me" || from != localAddrPort(t, c2) {
		t.Errorf("got %q from %v", msg, from)
	}
	if n := len(l.packets()); n != 0 {
		t.Errorf("%d packets left the host", n)
	}
}

func TestWildcardBind(t *testing.T) {
	tests := []struct {
		name string
		bind netip.Addr // on b, port 9
		to4  bool       // a datagram to b's IPv4 address is received
		to6  bool       // and one to its IPv6 address
	}{
		{name: "both families", bind: netip.Addr{}, to4: true, to6: true},
		{name: "0.0.0.0", bind: netip.IPv4Unspecified(), to4: true},
		{name: "::", bind: netip.IPv6Unspecified(), to6: true},
		{name: "10.0.0.2", bind: netip.MustParseAddr("10.0.0.2"), to4: true},
		{name: "fd00::2", bind: netip.MustParseAddr("fd00::2"), to6: true},
		{name: "::ffff:10.0.0.2 is 10.0.0.2", bind: netip.MustParseAddr("::ffff:10.0.0.2"), to4: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, 0)
			server := listen(t, l.b, netip.AddrPortFrom(tc.bind, 9))
			client := listen(t, l.a, netip.AddrPort{})
			for _, v6 := range []bool{false, true} {
				want := tc.to4
				if v6 {
					want = tc.to6
				}
				icmpBefore := l.b.s.Stats().ICMPSent
				to := netip.AddrPortFrom(l.b.addr(v6), 9)
				if _, err := client.WriteToUDPAddrPort([]byte(family(v6)), to); err != nil {
					t.Fatalf("WriteTo %v: %v", to, err)
				}
				icmp := l.b.s.Stats().ICMPSent - icmpBefore
				if !want {
					if icmp != 1 {
						t.Errorf("to %v: %d ICMP errors sent, want port unreachable", to, icmp)
					}
					continue
				}
				if icmp != 0 {
					t.Errorf("to %v: ICMP error sent", to)
				}
				msg, from := recv(t, server)
				if msg != family(v6) || from.Addr() != l.a.addr(v6) {
					t.Errorf("to %v: got %q from %v", to, msg, from)
				}
				// The reply leaves from the address the datagram came to.
				if _, err := server.WriteToUDPAddrPort([]byte("re"), from); err != nil {
					t.Fatalf("reply: %v", err)
				}
				if _, rfrom := recv(t, client); rfrom != to {
					t.Errorf("reply from %v, want %v", rfrom, to)
				}
			}
		})
	}
}

// A connected socket takes its peer's datagrams from an unconnected socket
// on the same port; the unconnected one keeps everyone else's.
func TestConnectedDemux(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			l := newLab(t, 0)
			listener := listen(t, l.b, netip.AddrPortFrom(netip.Addr{}, 5000))
			peer := netip.AddrPortFrom(l.a.addr(v6), 6000)
			conn := dial(t, l.b, netip.AddrPortFrom(netip.Addr{}, 5000), peer)
			if got, want := localAddrPort(t, conn), netip.AddrPortFrom(l.b.addr(v6), 5000); got != want {
				t.Errorf("LocalAddr() = %v, want %v (the routed source)", got, want)
			}
			if got := conn.RemoteAddr().(*net.UDPAddr).AddrPort(); got != peer {
				t.Errorf("RemoteAddr() = %v, want %v", got, peer)
			}
			fromPeer := listen(t, l.a, peer)
			other := listen(t, l.a, netip.AddrPortFrom(l.a.addr(v6), 6001))

			to := netip.AddrPortFrom(l.b.addr(v6), 5000)
			for _, c := range []*udp.PacketConn{fromPeer, other, fromPeer} {
				if _, err := c.WriteToUDPAddrPort([]byte(localAddrPort(t, c).String()), to); err != nil {
					t.Fatal(err)
				}
			}
			msg, from := recv(t, listener)
			if want := netip.AddrPortFrom(l.a.addr(v6), 6001); from != want || msg != want.String() {
				t.Errorf("listener got %q from %v, want only %v's", msg, from, want)
			}
			buf := make([]byte, 100)
			conn.SetReadDeadline(time.Now().Add(patience))
			for range 2 {
				n, err := conn.Read(buf)
				if err != nil || string(buf[:n]) != peer.String() {
					t.Errorf("conn Read = %q, %v, want %q", buf[:n], err, peer.String())
				}
			}
			// And the connected socket sends to its peer.
			if _, err := conn.Write([]byte("back")); err != nil {
				t.Fatal(err)
			}
			if msg, from := recv(t, fromPeer); msg != "back" || from != to {
				t.Errorf("peer got %q from %v", msg, from)
			}
			if got := l.b.udp.Stats().InDatagrams; got != 3 {
				t.Errorf("InDatagrams = %d, want 3", got)
			}
		})
	}
}

// A closed port answers with ICMP port unreachable, which a connected
// socket reports as ECONNREFUSED on its next call, once, as Linux does.
func TestPortUnreachable(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			l := newLab(t, 0)
			closed := netip.AddrPortFrom(l.b.addr(v6), 4444)
			c := dial(t, l.a, netip.AddrPort{}, closed)

			if _, err := c.Write([]byte("anyone?")); err != nil {
				t.Fatalf("first Write: %v", err)
			}
			if got := l.b.s.Stats().ICMPSent; got != 1 {
				t.Errorf("b ICMPSent = %d, want 1", got)
			}
			if got := l.b.udp.Stats().NoPorts; got != 1 {
				t.Errorf("b NoPorts = %d, want 1", got)
			}
			c.SetReadDeadline(time.Now().Add(patience))
			_, err := c.Read(make([]byte, 10))
			oe := checkOpError(t, err, "read", syscall.ECONNREFUSED)
			if got, ok := oe.Addr.(*net.UDPAddr); !ok || got.AddrPort() != closed {
				t.Errorf("OpError.Addr = %v, want %v", oe.Addr, closed)
			}
			if oe.Source == nil || oe.Source.String() != localAddrPort(t, c).String() {
				t.Errorf("OpError.Source = %v, want %v", oe.Source, c.LocalAddr())
			}
			// Reported once: the next Write goes out (and draws another
			// port unreachable), the one after fails without sending.
			if _, err := c.Write([]byte("anyone?")); err != nil {
				t.Fatalf("Write after the error was read: %v", err)
			}
			sent := len(l.packets())
			_, err = c.Write([]byte("anyone?"))
			checkOpError(t, err, "write", syscall.ECONNREFUSED)
			if got := len(l.packets()); got != sent {
				t.Errorf("the failing Write sent %d packets", got-sent)
			}
			if got := l.b.s.Stats().ICMPSent; got != 2 {
				t.Errorf("b ICMPSent = %d, want 2", got)
			}

			// A blocked Read wakes with the error.
			done := make(chan error, 1)
			go func() {
				_, err := c.Read(make([]byte, 10))
				done <- err
			}()
			if _, err := c.Write([]byte("anyone?")); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				checkOpError(t, err, "read", syscall.ECONNREFUSED)
			case <-time.After(patience):
				t.Fatal("Read not woken by port unreachable")
			}

			// An unconnected socket is not told (Linux without
			// IP_RECVERR).
			pc := listen(t, l.a, netip.AddrPort{})
			if _, err := pc.WriteToUDPAddrPort([]byte("anyone?"), closed); err != nil {
				t.Fatal(err)
			}
			pc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			_, _, err = pc.ReadFrom(make([]byte, 10))
			checkOpError(t, err, "read", os.ErrDeadlineExceeded)
		})
	}
}

// ICMP errors reach the connected socket whose datagram they quote, as the
// errno Linux reports for them, if Linux counts them as hard.
func TestICMPErrors(t *testing.T) {
	tests := []struct {
		name       string
		v6         bool
		typ, code  uint8
		want       error // nil: a soft error, not reported
		otherPorts bool  // quote a datagram of another socket
	}{
		{name: "v4 port unreachable", typ: wire.ICMPv4DestUnreach, code: wire.ICMPv4PortUnreach, want: syscall.ECONNREFUSED},
		{name: "v4 protocol unreachable", typ: wire.ICMPv4DestUnreach, code: wire.ICMPv4ProtoUnreach, want: syscall.ENOPROTOOPT},
		{name: "v4 admin prohibited", typ: wire.ICMPv4DestUnreach, code: wire.ICMPv4AdminProhib, want: syscall.EHOSTUNREACH},
		{name: "v4 host unreachable is soft", typ: wire.ICMPv4DestUnreach, code: wire.ICMPv4HostUnreach},
		{name: "v4 net unreachable is soft", typ: wire.ICMPv4DestUnreach, code: wire.ICMPv4NetUnreach},
		{name: "v4 time exceeded is soft", typ: wire.ICMPv4TimeExceeded},
		{name: "v4 parameter problem", typ: wire.ICMPv4ParamProblem, want: syscall.EPROTO},
		{name: "v4 other socket's datagram", typ: wire.ICMPv4DestUnreach, code: wire.ICMPv4PortUnreach, otherPorts: true},
		{name: "v6 port unreachable", v6: true, typ: wire.ICMPv6DestUnreach, code: wire.ICMPv6PortUnreach, want: syscall.ECONNREFUSED},
		{name: "v6 admin prohibited", v6: true, typ: wire.ICMPv6DestUnreach, code: wire.ICMPv6AdminProhib, want: syscall.EACCES},
		{name: "v6 address unreachable is soft", v6: true, typ: wire.ICMPv6DestUnreach, code: wire.ICMPv6AddrUnreach},
		{name: "v6 no route is soft", v6: true, typ: wire.ICMPv6DestUnreach, code: wire.ICMPv6NoRoute},
		{name: "v6 hop limit exceeded is soft", v6: true, typ: wire.ICMPv6TimeExceeded},
		{name: "v6 parameter problem", v6: true, typ: wire.ICMPv6ParamProblem, want: syscall.EPROTO},
		{name: "v6 other socket's datagram", v6: true, typ: wire.ICMPv6DestUnreach, code: wire.ICMPv6PortUnreach, otherPorts: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, 0)
			server := listen(t, l.b, netip.AddrPortFrom(l.b.addr(tc.v6), 53))
			c := dial(t, l.a, netip.AddrPort{}, localAddrPort(t, server))
			if _, err := c.Write([]byte("q")); err != nil {
				t.Fatal(err)
			}
			pkts := l.packets()
			quoted := pkts[len(pkts)-1]
			if tc.otherPorts {
				// Make the error quote a source port no socket has.
				quoted = slices.Clone(quoted)
				hl := 20
				if tc.v6 {
					hl = 40
				}
				quoted[hl], quoted[hl+1] = 0x12, 0x34
			}
			l.a.s.Deliver(l.a.nic, icmpError(l.b.addr(tc.v6), quoted, tc.typ, tc.code, 0))

			_, err := c.Write([]byte("q"))
			if tc.want == nil || tc.otherPorts {
				if err != nil {
					t.Errorf("Write after a soft error: %v", err)
				}
				return
			}
			checkOpError(t, err, "write", tc.want)
		})
	}
}

func TestDeadlines(t *testing.T) {
	l := newLab(t, 0)
	listen(t, l.b, netip.AddrPortFrom(l.b.v4, 7)) // no port unreachable to confuse things
	c := listen(t, l.a, netip.AddrPort{})
	conn := dial(t, l.a, netip.AddrPort{}, netip.AddrPortFrom(l.b.v4, 7))
	timeout := func(t *testing.T, err error, op string) {
		t.Helper()
		checkOpError(t, err, op, os.ErrDeadlineExceeded)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%v: not a net.Error with Timeout() true", err)
		}
	}

	t.Run("read deadline expires", func(t *testing.T) {
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		start := time.Now()
		_, _, err := c.ReadFrom(make([]byte, 10))
		timeout(t, err, "read")
		if d := time.Since(start); d < 20*time.Millisecond {
			t.Errorf("timed out after %v, before the deadline", d)
		}
		// It stays expired until moved.
		_, _, err = c.ReadFrom(make([]byte, 10))
		timeout(t, err, "read")
	})
	t.Run("past deadline fails even with data waiting", func(t *testing.T) {
		c.SetReadDeadline(time.Time{})
		self := netip.AddrPortFrom(l.a.v4, localAddrPort(t, c).Port())
		if _, err := c.WriteToUDPAddrPort([]byte("x"), self); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(-time.Second))
		_, _, err := c.ReadFrom(make([]byte, 10))
		timeout(t, err, "read")
		c.SetReadDeadline(time.Time{})
		if msg, _ := recv(t, c); msg != "x" {
			t.Errorf("got %q after clearing the deadline", msg)
		}
	})
	t.Run("moving the deadline reaches a pending read", func(t *testing.T) {
		c.SetReadDeadline(time.Now().Add(time.Hour))
		done := make(chan error, 1)
		go func() {
			_, _, err := c.ReadFrom(make([]byte, 10))
			done <- err
		}()
		time.Sleep(10 * time.Millisecond) // let it block (not needed for correctness)
		c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		select {
		case err := <-done:
			timeout(t, err, "read")
		case <-time.After(patience):
			t.Fatal("pending read did not see the new deadline")
		}
		c.SetReadDeadline(time.Time{})
	})
	t.Run("write deadline", func(t *testing.T) {
		conn.SetWriteDeadline(time.Now().Add(-time.Second))
		_, err := conn.Write([]byte("x"))
		timeout(t, err, "write")
		_, err = c.WriteToUDPAddrPort([]byte("x"), netip.AddrPortFrom(l.b.v4, 7))
		if err != nil {
			t.Errorf("another socket's write failed: %v", err)
		}
		conn.SetDeadline(time.Time{})
		if _, err := conn.Write([]byte("x")); err != nil {
			t.Errorf("Write after clearing the deadline: %v", err)
		}
	})
	t.Run("read deadline on a connected socket", func(t *testing.T) {
		conn.SetDeadline(time.Now().Add(5 * time.Millisecond))
		_, err := conn.Read(make([]byte, 10))
		timeout(t, err, "read")
		conn.SetDeadline(time.Time{})
	})
}

func TestCloseUnblocksRead(t *testing.T) {
	l := newLab(t, 0)
	pc := listen(t, l.a, netip.AddrPort{})
	conn := dial(t, l.a, netip.AddrPort{}, netip.AddrPortFrom(l.b.v6, 7))
	read := map[string]func() error{
		"PacketConn": func() error { _, _, err := pc.ReadFrom(make([]byte, 10)); return err },
		"Conn":       func() error { _, err := conn.Read(make([]byte, 10)); return err },
	}
	closers := map[string]func() error{"PacketConn": pc.Close, "Conn": conn.Close}
	for _, name := range []string{"PacketConn", "Conn"} {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- read[name]() }()
			time.Sleep(10 * time.Millisecond) // let it block (not needed for correctness)
			if err := closers[name](); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-done:
				checkOpError(t, err, "read", net.ErrClosed)
			case <-time.After(patience):
				t.Fatal("Close did not unblock the read")
			}
			// Everything fails after Close, Close included.
			checkOpError(t, read[name](), "read", net.ErrClosed)
			checkOpError(t, closers[name](), "close", net.ErrClosed)
		})
	}
	_, err := pc.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.b.v6, 7)))
	checkOpError(t, err, "write", net.ErrClosed)
	_, err = conn.Write([]byte("x"))
	checkOpError(t, err, "write", net.ErrClosed)
	if s := l.a.udp.Sockets(); len(s) != 0 {
		t.Errorf("Sockets() after Close = %v", s)
	}
}

// Protocol.Close (a host stopping) closes every socket and refuses new ones.
func TestProtocolClose(t *testing.T) {
	l := newLab(t, 0)
	pc := listen(t, l.a, netip.AddrPort{})
	conn := dial(t, l.a, netip.AddrPort{}, netip.AddrPortFrom(l.b.v4, 7))
	done := make(chan error, 2)
	go func() { _, _, err := pc.ReadFrom(make([]byte, 10)); done <- err }()
	go func() { _, err := conn.Read(make([]byte, 10)); done <- err }()
	l.a.udp.Close()
	l.a.udp.Close() // idempotent
	for range 2 {
		select {
		case err := <-done:
			checkOpError(t, err, "read", net.ErrClosed)
		case <-time.After(patience):
			t.Fatal("Protocol.Close did not unblock a read")
		}
	}
	if s := l.a.udp.Sockets(); len(s) != 0 {
		t.Errorf("Sockets() = %v", s)
	}
	_, err := l.a.udp.ListenPacket(netip.AddrPort{})
	checkOpError(t, err, "listen", net.ErrClosed)
	_, err = l.a.udp.Dial(netip.AddrPort{}, netip.AddrPortFrom(l.b.v4, 7))
	checkOpError(t, err, "dial", net.ErrClosed)
	// With no sockets, datagrams draw port unreachable.
	c := listen(t, l.b, netip.AddrPort{})
	if _, err := c.WriteToUDPAddrPort([]byte("x"), netip.AddrPortFrom(l.a.v4, localAddrPort(t, pc).Port())); err != nil {
		t.Fatal(err)
	}
	if got := l.a.s.Stats().ICMPSent; got != 1 {
		t.Errorf("ICMPSent = %d, want 1", got)
	}
}

func TestEphemeralPorts(t *testing.T) {
	l := newLab(t, 0)
	seen := map[uint16]bool{}
	for i := range 200 {
		var port uint16
		if i%2 == 0 {
			port = localAddrPort(t, listen(t, l.a, netip.AddrPort{})).Port()
		} else {
			port = localAddrPort(t, dial(t, l.a, netip.AddrPort{}, netip.AddrPortFrom(l.b.v4, 7))).Port()
		}
		if port < 49152 {
			t.Errorf("ephemeral port %d below 49152 (RFC 6335)", port)
		}
		if seen[port] {
			t.Errorf("ephemeral port %d handed out twice", port)
		}
		seen[port] = true
	}
	if got := len(l.a.udp.Sockets()); got != 200 {
		t.Errorf("%d sockets listed, want 200", got)
	}
}

func TestAddressInUse(t *testing.T) {
	b4, b6 := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2")
	a4 := netip.MustParseAddr("10.0.0.1")
	any4, any6, both := netip.IPv4Unspecified(), netip.IPv6Unspecified(), netip.Addr{}
	type sock struct {
		local  netip.Addr
		remote netip.AddrPort // Dial when valid
	}
	peer := netip.AddrPortFrom(a4, 9)
	tests := []struct {
		name        string
		first, then sock
		inUse       bool
	}{
		{"same address", sock{local: b4}, sock{local: b4}, true},
		{"address then wildcard", sock{local: b4}, sock{local: any4}, true},
		{"wildcard then address", sock{local: any4}, sock{local: b4}, true},
		{"both families then v4", sock{local: both}, sock{local: b4}, true},
		{"v6 wildcard then both families", sock{local: any6}, sock{local: both}, true},
		{"v4 and v6 wildcards", sock{local: any4}, sock{local: any6}, false},
		{"v4 and v6 addresses", sock{local: b4}, sock{local: b6}, false},
		{"connected beside unconnected", sock{local: any4}, sock{local: b4, remote: peer}, false},
		{"unconnected beside connected", sock{local: b4, remote: peer}, sock{local: both}, false},
		{"same four-tuple", sock{local: b4, remote: peer}, sock{local: any4, remote: peer}, true},
		{"other peer", sock{local: b4, remote: peer}, sock{local: b4, remote: netip.AddrPortFrom(a4, 10)}, false},
	}
	open := func(l *lab, s sock) (interface{ Close() error }, error) {
		ap := netip.AddrPortFrom(s.local, 53)
		if s.remote.IsValid() {
			return l.b.udp.Dial(ap, s.remote)
		}
		return l.b.udp.ListenPacket(ap)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, 0)
			first, err := open(l, tc.first)
			if err != nil {
				t.Fatalf("first: %v", err)
			}
			then, err := open(l, tc.then)
			if !tc.inUse {
				if err != nil {
					t.Fatalf("second: %v", err)
				}
				then.Close()
				return
			}
			op := "listen"
			if tc.then.remote.IsValid() {
				op = "dial"
			}
			checkOpError(t, err, op, syscall.EADDRINUSE)
			// Closing the first frees the port.
			first.Close()
			then, err = open(l, tc.then)
			if err != nil {
				t.Fatalf("after Close: %v", err)
			}
			then.Close()
		})
	}
}

func TestBindErrors(t *testing.T) {
	l := newLab(t, 0)
	_, err := l.a.udp.ListenPacket(netip.MustParseAddrPort("10.9.9.9:53"))
	checkOpError(t, err, "listen", syscall.EADDRNOTAVAIL)
	_, err = l.a.udp.Dial(netip.MustParseAddrPort("10.0.0.1:0"), netip.MustParseAddrPort("[fd00::2]:53"))
	checkOpError(t, err, "dial", nil)
	_, err = l.a.udp.Dial(netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:0"))
	checkOpError(t, err, "dial", nil)
	_, err = l.a.udp.Dial(netip.AddrPort{}, netip.MustParseAddrPort("192.168.1.1:53"))
	checkOpError(t, err, "dial", syscall.ENETUNREACH)
	pc := listen(t, l.a, netip.AddrPortFrom(l.a.v4, 0))
	_, err = pc.WriteToUDPAddrPort([]byte("x"), netip.AddrPortFrom(l.b.v6, 53))
	checkOpError(t, err, "write", syscall.EAFNOSUPPORT)
	_, err = pc.WriteToUDPAddrPort([]byte("x"), netip.AddrPortFrom(l.b.v4, 0))
	checkOpError(t, err, "write", syscall.EINVAL)
	_, err = pc.WriteTo([]byte("x"), &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 53})
	checkOpError(t, err, "write", syscall.EINVAL)
}

func TestOversize(t *testing.T) {
	tests := []struct {
		name   string
		v6     bool
		self   bool // to the host's own address: no MTU but the length fields'
		maxLen int
	}{
		{name: "v4 MTU 1500", maxLen: 1500 - 20 - 8},
		{name: "v6 MTU 1500", v6: true, maxLen: 1500 - 40 - 8},
		{name: "v4 to self", self: true, maxLen: 65535 - 20 - 8},
		// The loopback's MTU (65535) counts the IPv6 header, as Linux's
		// lo MTU does; the Payload Length field would allow 40 more.
		{name: "v6 to self", v6: true, self: true, maxLen: 65535 - 40 - 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, 0)
			dst := l.b
			if tc.self {
				dst = l.a
			}
			server := listen(t, dst, netip.AddrPortFrom(dst.addr(tc.v6), 53))
			server.SetReadBuffer(1 << 20)
			c := dial(t, l.a, netip.AddrPort{}, localAddrPort(t, server))
			if n, err := c.Write(make([]byte, tc.maxLen)); err != nil || n != tc.maxLen {
				t.Fatalf("Write(%d bytes) = %d, %v", tc.maxLen, n, err)
			}
			sent := len(l.packets())
			_, err := c.Write(make([]byte, tc.maxLen+1))
			checkOpError(t, err, "write", syscall.EMSGSIZE)
			if got := len(l.packets()); got != sent {
				t.Errorf("oversize datagram sent")
			}
			if msg, _ := recv(t, server); len(msg) != tc.maxLen {
				t.Errorf("received %d bytes, want %d", len(msg), tc.maxLen)
			}
		})
	}
}

// A fragmentation-needed or packet-too-big error lowers the path MTU for
// the destination, for ten minutes (RFC 1191 §6.3, RFC 8201 §5.3).
func TestPathMTU(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			l := newLab(t, 0)
			server := listen(t, l.b, netip.AddrPortFrom(l.b.addr(v6), 53))
			conn := dial(t, l.a, netip.AddrPort{}, localAddrPort(t, server))
			pc := listen(t, l.a, netip.AddrPort{})
			hl := 20
			if v6 {
				hl = 40
			}
			if _, err := conn.Write(make([]byte, 1400)); err != nil {
				t.Fatal(err)
			}
			pkts := l.packets()
			// A router on the way takes 1280 at most.
			var errPkt []byte
			if v6 {
				errPkt = icmpError(l.b.v6, pkts[len(pkts)-1][:1280-48], wire.ICMPv6PacketTooBig, 0, 1280)
			} else {
				errPkt = icmpError(l.b.v4, pkts[len(pkts)-1][:hl+8], wire.ICMPv4DestUnreach, wire.ICMPv4FragNeeded, 1280)
			}
			l.a.s.Deliver(l.a.nic, errPkt)

			// The connected socket is told, once, as Linux tells it.
			_, err := conn.Write(make([]byte, 10))
			checkOpError(t, err, "write", syscall.EMSGSIZE)
			for name, write := range map[string]func(n int) error{
				"connected": func(n int) error { _, err := conn.Write(make([]byte, n)); return err },
				"unconnected": func(n int) error {
					_, err := pc.WriteTo(make([]byte, n), net.UDPAddrFromAddrPort(localAddrPort(t, server)))
					return err
				},
			} {
				if err := write(1280 - hl - 8); err != nil {
					t.Errorf("%s: Write within the path MTU: %v", name, err)
				}
				checkOpError(t, write(1280-hl-8+1), "write", syscall.EMSGSIZE)
			}
			// A later error with a larger MTU does not raise it (RFC 8201
			// §4); the estimate expires after ten minutes.
			if v6 {
				errPkt = icmpError(l.b.v6, pkts[len(pkts)-1][:1280-48], wire.ICMPv6PacketTooBig, 0, 1400)
			} else {
				errPkt = icmpError(l.b.v4, pkts[len(pkts)-1][:hl+8], wire.ICMPv4DestUnreach, wire.ICMPv4FragNeeded, 1400)
			}
			l.a.s.Deliver(l.a.nic, errPkt)
			_, err = conn.Write(nil)
			checkOpError(t, err, "write", syscall.EMSGSIZE)
			_, err = conn.Write(make([]byte, 1280-hl-8+1))
			checkOpError(t, err, "write", syscall.EMSGSIZE)
			l.clock.Advance(10*time.Minute - time.Nanosecond)
			_, err = conn.Write(make([]byte, 1280-hl-8+1))
			checkOpError(t, err, "write", syscall.EMSGSIZE)
			l.clock.Advance(time.Nanosecond)
			if _, err := conn.Write(make([]byte, 1400)); err != nil {
				t.Errorf("Write after the path MTU expired: %v", err)
			}
		})
	}
}

func TestMalformedDatagrams(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			l := newLab(t, 0)
			server := listen(t, l.b, netip.AddrPortFrom(netip.Addr{}, 53))
			from := netip.AddrPortFrom(l.a.addr(v6), 1234)
			to := netip.AddrPortFrom(l.b.addr(v6), 53)
			hl := 20
			if v6 {
				hl = 40
			}
			mutate := func(f func(u []byte)) []byte {
				p := udpPacket(from, to, []byte("data"))
				f(p[hl:])
				return p
			}
			tests := []struct {
				name     string
				pkt      []byte
				csum     bool // counted as a checksum error
				received bool
			}{
				{name: "good", pkt: udpPacket(from, to, []byte("good")), received: true},
				{name: "bad checksum", pkt: mutate(func(u []byte) { u[8] ^= 1 }), csum: true},
				{name: "length beyond packet", pkt: mutate(func(u []byte) { u[5] = 13 })},
				{name: "length below header", pkt: mutate(func(u []byte) { u[5] = 7 })},
				{name: "truncated header", pkt: ipPacket(from.Addr(), to.Addr(), wire.ProtoUDP, []byte{0, 1, 0, 53, 0, 8})},
				{name: "zero checksum", pkt: mutate(func(u []byte) { u[6], u[7] = 0, 0 }), csum: v6, received: !v6},
			}
			var want udp.Stats
			for _, tc := range tests {
				l.b.s.Deliver(l.b.nic, tc.pkt)
				if tc.received {
					want.InDatagrams++
					if msg, got := recv(t, server); got != from {
						t.Errorf("%s: got %q from %v", tc.name, msg, got)
					}
					continue
				}
				want.InErrors++
				if tc.csum {
					want.InCsumErrors++
				}
				if diff := cmp.Diff(want, l.b.udp.Stats()); diff != "" {
					t.Errorf("%s: stats (-want +got):\n%s", tc.name, diff)
				}
			}
			if diff := cmp.Diff(want, l.b.udp.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			if got := l.b.s.Stats().ICMPSent; got != 0 {
				t.Errorf("%d ICMP errors sent about malformed datagrams", got)
			}
		})
	}
}

func TestReceiveQueueBounded(t *testing.T) {
	l := newLab(t, 0)
	server := listen(t, l.b, netip.AddrPortFrom(l.b.v4, 53))
	client := dial(t, l.a, netip.AddrPort{}, localAddrPort(t, server))
	// 256 small datagrams fill the default 256 KiB (each counts 1 KiB).
	for i := range 300 {
		if _, err := client.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	want := udp.Stats{InDatagrams: 256, InErrors: 44, RcvbufErrors: 44}
	if diff := cmp.Diff(want, l.b.udp.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if got := l.b.udp.Sockets()[0].Queued; got != 256 {
		t.Errorf("Queued = %d bytes, want 256", got)
	}
	for i := range 256 {
		if msg, _ := recv(t, server); msg != string([]byte{byte(i)}) {
			t.Fatalf("datagram %d: got %q", i, msg)
		}
	}
	// Large datagrams fill it by their size: 46 of 1400 bytes in 64 KiB.
	server.SetReadBuffer(64 << 10)
	for range 100 {
		client.Write(make([]byte, 1400))
	}
	if got, want := l.b.udp.Sockets()[0].Queued, 46*1400; got != want {
		t.Errorf("Queued = %d bytes, want %d", got, want)
	}
}

func TestSockets(t *testing.T) {
	l := newLab(t, 0)
	listen(t, l.b, netip.AddrPortFrom(netip.Addr{}, 53))
	listen(t, l.b, netip.AddrPortFrom(netip.IPv4Unspecified(), 67))
	listen(t, l.b, netip.AddrPortFrom(l.b.v6, 123))
	dial(t, l.b, netip.AddrPortFrom(netip.Addr{}, 53), netip.AddrPortFrom(l.a.v4, 5000))
	want := []udp.SocketInfo{
		{Local: netip.MustParseAddrPort("10.0.0.2:53"), Remote: netip.MustParseAddrPort("10.0.0.1:5000")},
		{Local: netip.MustParseAddrPort("[::]:53")},
		{Local: netip.MustParseAddrPort("0.0.0.0:67")},
		{Local: netip.MustParseAddrPort("[fd00::2]:123")},
	}
	if diff := cmp.Diff(want, l.b.udp.Sockets(), cmpOpts...); diff != "" {
		t.Errorf("Sockets() (-want +got):\n%s", diff)
	}
}

// The source address of a socket bound to a wildcard is the one the stack
// routes from; a bound address is used as it is.
func TestSourceAddress(t *testing.T) {
	l := newLab(t, 0)
	server := listen(t, l.b, netip.AddrPortFrom(netip.Addr{}, 53))
	for _, bind := range []netip.Addr{{}, netip.IPv4Unspecified(), netip.IPv6Unspecified(), l.a.v4, l.a.v6} {
		c := listen(t, l.a, netip.AddrPortFrom(bind, 0))
		for _, v6 := range []bool{false, true} {
			if bind.IsValid() && bind.Is6() != v6 {
				continue
			}
			if _, err := c.WriteToUDPAddrPort([]byte("x"), netip.AddrPortFrom(l.b.addr(v6), 53)); err != nil {
				t.Fatalf("bind %v: %v", bind, err)
			}
			if _, from := recv(t, server); from.Addr() != l.a.addr(v6) {
				t.Errorf("bind %v: datagram from %v, want %v", bind, from.Addr(), l.a.addr(v6))
			}
		}
	}
}

// Nothing is left running once the sockets are closed: the package starts no
// goroutine, and deadline timers are stopped.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	l := newLab(t, 0)
	var wg sync.WaitGroup
	for i := range 20 {
		pc, err := l.a.udp.ListenPacket(netip.AddrPort{})
		if err != nil {
			t.Fatal(err)
		}
		pc.SetDeadline(time.Now().Add(time.Hour))
		conn, err := l.a.udp.Dial(netip.AddrPort{}, netip.AddrPortFrom(l.b.v4, uint16(1000+i)))
		if err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(time.Hour))
		wg.Add(2)
		go func() { defer wg.Done(); pc.ReadFrom(make([]byte, 10)) }()
		go func() { defer wg.Done(); conn.Read(make([]byte, 10)) }()
		if i%2 == 0 {
			pc.Close()
		}
	}
	l.a.udp.Close()
	wg.Wait()
	var n int
	for range 100 {
		if n = runtime.NumGoroutine(); n <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
}
