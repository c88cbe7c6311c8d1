package tcp

import (
	"context"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/vclock"
)

// queueLink queues packets for the test to deliver by hand.
type queueLink struct {
	mu  sync.Mutex
	pkt [][]byte
}

func (l *queueLink) Send(_ netip.Addr, pkt []byte) error {
	l.mu.Lock()
	l.pkt = append(l.pkt, pkt)
	l.mu.Unlock()
	return nil
}

func (l *queueLink) take() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pkt
	l.pkt = nil
	return p
}

// TestNoTimersLeft runs a connection on a virtual clock from handshake to
// the end of TIME-WAIT and checks that no timer is left pending and no
// connection remembered: nothing leaks once a connection is closed.
func TestNoTimersLeft(t *testing.T) {
	clk := vclock.New()
	a := stack.New(stack.Config{Name: "a", Clock: clk})
	b := stack.New(stack.Config{Name: "b", Clock: clk})
	la, lb := &queueLink{}, &queueLink{}
	nicA, _ := a.AddInterface("eth0", 1500, la, netip.MustParsePrefix("10.0.0.1/24"))
	nicB, _ := b.AddInterface("eth0", 1500, lb, netip.MustParsePrefix("10.0.0.2/24"))
	ta, tb := New(a, Options{TimeWait: time.Second}), New(b, Options{TimeWait: time.Second})

	// pump delivers queued packets until the network is quiet.
	pump := func() {
		for {
			pa, pb := la.take(), lb.take()
			if len(pa)+len(pb) == 0 {
				return
			}
			for _, p := range pa {
				b.Deliver(nicB, p)
			}
			for _, p := range pb {
				a.Deliver(nicA, p)
			}
		}
	}
	// until pumps (and lets virtual time pass in small steps) until done.
	until := func(what string, done <-chan struct{}) {
		t.Helper()
		for i := 0; ; i++ {
			pump()
			select {
			case <-done:
				pump()
				return
			case <-time.After(time.Millisecond):
			}
			clk.Advance(10 * time.Millisecond)
			if i > 5000 {
				t.Fatalf("%s: never done", what)
			}
		}
	}

	l, err := tb.Listen(netip.AddrPortFrom(netip.Addr{}, 9))
	if err != nil {
		t.Fatal(err)
	}
	var client, server *Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ta.Dial(context.Background(), netip.MustParseAddrPort("10.0.0.2:9"))
		if err != nil {
			t.Error(err)
			return
		}
		client = c
		s, err := l.AcceptTCP()
		if err != nil {
			t.Error(err)
			return
		}
		server = s
	}()
	until("handshake", done)
	if client == nil || server == nil {
		t.FailNow()
	}
	l.Close()
	client.SetKeepAlive(true)

	done = make(chan struct{})
	go func() {
		defer close(done)
		go func() {
			client.Write(make([]byte, 200<<10))
			client.Close()
		}()
		io.Copy(io.Discard, server)
		server.Close()
	}()
	until("transfer and close", done)
	clk.Advance(2 * time.Second) // past TIME-WAIT
	pump()
	if n := len(ta.Connections()) + len(tb.Connections()); n != 0 {
		t.Fatalf("%d connections left: %+v %+v", n, ta.Connections(), tb.Connections())
	}
	if n := clk.Pending(); n != 0 {
		t.Fatalf("%d timers still pending after close", n)
	}
}
