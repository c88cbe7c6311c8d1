package tcp

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

func randomData(n int, seed uint64) []byte {
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return data
}

// transfer sends data from a to b over one connection and returns what b
// read, checking that both sides close cleanly.
func transfer(t *testing.T, p *pair, dst netip.Addr, data []byte, timeout time.Duration) []byte {
	t.Helper()
	l, err := p.tb.Listen(netip.AddrPortFrom(unspecifiedLike(dst), 0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	got := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
			got <- nil
			return
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		if err != nil {
			t.Errorf("receiver: %v", err)
		}
		got <- b
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := p.ta.Dial(ctx, netip.AddrPortFrom(dst, port))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(data); err != nil {
		t.Fatalf("write: %v (%+v)", err, c.Info())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if testing.Verbose() {
			t.Logf("sender: %+v", c.Info())
		}
		return b
	case <-time.After(timeout):
		t.Fatalf("receiver stuck; sender %+v; b: %+v", c.Info(), p.tb.Connections())
		return nil
	}
}

func unspecifiedLike(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

func TestTransfer(t *testing.T) {
	data := randomData(10<<20, 1)
	for _, dst := range []string{"10.0.0.2", "fd00::2"} {
		t.Run(dst, func(t *testing.T) {
			p := newPair(t, 1500, Options{})
			start := time.Now()
			b := transfer(t, p, netip.MustParseAddr(dst), data, 20*time.Second)
			t.Logf("%d bytes in %v", len(b), time.Since(start))
			if sha256.Sum256(b) != sha256.Sum256(data) {
				t.Fatalf("data differs: got %d bytes", len(b))
			}
		})
	}
}

// TestTransferImpaired is the bar: 10 MiB arrive intact under each
// impairment and all of them at once, in both directions of the link.
func TestTransferImpaired(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	data := randomData(10<<20, 2)
	want := sha256.Sum256(data)
	for _, tc := range []struct {
		name string
		imp  impairment
		cc   string
	}{
		{name: "loss 10%", imp: impairment{loss: 0.10}},
		{name: "loss 10% newreno", imp: impairment{loss: 0.10}, cc: "newreno"},
		{name: "reorder 5%", imp: impairment{reorder: 0.05}},
		{name: "duplicate 2%", imp: impairment{duplicate: 0.02}},
		{name: "corrupt 1%", imp: impairment{corrupt: 0.01}},
		{name: "all at once", imp: impairment{loss: 0.10, reorder: 0.05, duplicate: 0.02, corrupt: 0.01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, 1500, Options{CongestionControl: tc.cc, MinRTO: 20 * time.Millisecond})
			a, b := tc.imp, tc.imp
			a.seed, b.seed = 11, 12
			p.ab.impair(&a)
			p.ba.impair(&b)
			start := time.Now()
			got := transfer(t, p, p.bAddr, data, 120*time.Second)
			if sha256.Sum256(got) != want {
				t.Fatalf("data differs: got %d of %d bytes", len(got), len(data))
			}
			ab, ba := p.ab.counts(), p.ba.counts()
			t.Logf("%v; lost %d/%d, reordered %d/%d, duplicated %d/%d, corrupted %d/%d; retransmits %d",
				time.Since(start).Round(time.Millisecond), ab[0], ba[0], ab[1], ba[1],
				ab[2], ba[2], ab[3], ba[3], p.ta.Stats().Retransmits)
		})
	}
}

func TestConcurrentConnections(t *testing.T) {
	p := newPair(t, 1500, Options{})
	l, err := p.tb.Listen(netip.AddrPortFrom(netip.Addr{}, 7))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c) // echo
			}()
		}
	}()
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := p.ta.Dial(ctx, netip.AddrPortFrom(p.bAddr, 7))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			msg := randomData(64<<10, uint64(i))
			go c.Write(msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil {
				errs <- fmt.Errorf("conn %d: %w", i, err)
				return
			}
			if sha256.Sum256(got) != sha256.Sum256(msg) {
				errs <- fmt.Errorf("conn %d: echo differs", i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestNoLeaks: after every connection has closed and TIME-WAIT has passed,
// no goroutine or connection is left.
func TestNoLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newPair(t, 1500, Options{TimeWait: 50 * time.Millisecond})
	for range 5 {
		transfer(t, p, p.bAddr, randomData(100<<10, 3), 10*time.Second)
	}
	defer func() {
		if t.Failed() {
			t.Logf("a: %+v\nb: %+v", p.ta.Connections(), p.tb.Connections())
		}
	}()
	waitUntil(t, "connections gone", 5*time.Second, func() bool {
		return len(p.ta.Connections())+len(p.tb.Connections()) == 0
	})
	p.stop()
	waitUntil(t, "goroutines gone", 5*time.Second, func() bool { return runtime.NumGoroutine() <= before })
}

// TestTailDropBottleneck sends through a short tail-drop queue, where slow
// start overshoots and whole bursts are lost, retransmissions included.
func TestTailDropBottleneck(t *testing.T) {
	p := newPairQ(t, 1500, Options{}, 128)
	data := randomData(20<<20, 5)
	start := time.Now()
	got := transfer(t, p, p.bAddr, data, 60*time.Second)
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("data differs: got %d of %d bytes", len(got), len(data))
	}
	t.Logf("%v, %+v", time.Since(start).Round(time.Millisecond), p.ta.Stats())
}
