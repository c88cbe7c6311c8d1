package tcp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// TestNetTestConn runs x/net's net.Conn conformance suite (basic I/O,
// ping-pong, racy reads and writes, past, present and future deadlines,
// Close unblocking calls, concurrent methods) on two of our connections.
func TestNetTestConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		p := newPair(t, 1500, Options{TimeWait: 10 * time.Millisecond})
		l, err := p.tb.Listen(netip.AddrPortFrom(netip.Addr{}, 0))
		if err != nil {
			return nil, nil, nil, err
		}
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				accepted <- nil
				return
			}
			accepted <- c
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		port := l.Addr().(*net.TCPAddr).AddrPort().Port()
		d, err := p.ta.Dial(ctx, netip.AddrPortFrom(p.bAddr, port))
		if err != nil {
			return nil, nil, nil, err
		}
		a := <-accepted
		l.Close()
		return d, a, func() { d.Close(); a.Close(); p.stop() }, nil
	})
}
