package tcp

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/stack/wire"
)

// TestSegmentsLeaveInOrder holds the first data segment inside the link
// while another goroutine writes more: the segments it builds must wait
// for those built before them, not overtake them (the receiver would take
// the overtaken ones for lost and ask for them again).
func TestSegmentsLeaveInOrder(t *testing.T) {
	p := newPair(t, 1500, Options{})
	l, err := p.tb.Listen(netip.AddrPortFrom(p.bAddr, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			buf := make([]byte, 64<<10)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := p.ta.Dial(ctx, l.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mss := c.Info().MSS

	var mu sync.Mutex
	var seqs []uint32 // of data segments, in the order the link saw them
	held, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	p.ab.before = func(pkt []byte) {
		seg := wire.TCP(wire.IPv4(pkt).Payload())
		if len(seg.Payload()) == 0 {
			return
		}
		mu.Lock()
		seqs = append(seqs, seg.Seq())
		mu.Unlock()
		if first.CompareAndSwap(false, true) {
			close(held)
			<-release
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, 2*mss)) // two segments; the link holds the first
		done <- err
	}()
	<-held
	if _, err := c.Write(make([]byte, mss)); err != nil { // a third, built while the first is held
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "three segments sent", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seqs) >= 3
	})
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(seqs); i++ {
		if int32(seqs[i]-seqs[i-1]) <= 0 {
			t.Fatalf("data segments left out of order: seq %v", seqs)
		}
	}
}
