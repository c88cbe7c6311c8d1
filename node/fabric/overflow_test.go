package fabric_test

import (
	"context"
	"crypto/sha256"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/overlay"
	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/tcp"
)

// TestOverlayQueueOverflow is issue 11's "fates reported by every layer":
// a bulk TCP transfer from a host on one node to a host on another, over
// an overlay whose send queue holds 8 packets, overflows that queue. A
// capture of the sending interface shows each packet the overlay refused
// as dropped, with the reason; the interface counts exactly those as
// transmit drops, and as sent exactly the packets the overlay sent.
func TestOverlayQueueOverflow(t *testing.T) {
	a := newNode(t, "127.0.0.1", nil, overlay.WithQueueLimit(8))
	b := newNode(t, "127.0.0.2", nil)
	const network = "labs/x/networks/lan"
	a.f.SetNetwork(network, 4242, map[netip.Addr]netip.AddrPort{netip.MustParseAddr("10.0.0.2"): b.conn.LocalAddr()})
	b.f.SetNetwork(network, 4242, map[netip.Addr]netip.AddrPort{netip.MustParseAddr("10.0.0.1"): a.conn.LocalAddr()})
	sa := a.host(t, network, "10.0.0.1/24")
	sb := b.host(t, network, "10.0.0.2/24")
	nic := sa.Interfaces()[0]

	var mu sync.Mutex
	var recs []stack.TapRecord
	remove, err := nic.AddTap(nil, func(r stack.TapRecord) {
		if r.Dir != stack.TapOut {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		recs = append(recs, stack.TapRecord{Drop: r.Drop, Packet: r.Packet})
	})
	if err != nil {
		t.Fatal(err)
	}

	ta, tb := tcp.New(sa, tcp.Options{}), tcp.New(sb, tcp.Options{})
	defer ta.Close()
	defer tb.Close()
	l, err := tb.Listen(netip.AddrPortFrom(netip.Addr{}, 9))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 2<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		if err != nil {
			t.Errorf("read: %v", err)
		}
		got <- b
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	c, err := ta.Dial(ctx, netip.MustParseAddrPort("10.0.0.2:9"))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case b := <-got:
		if sha256.Sum256(b) != sha256.Sum256(data) {
			t.Fatalf("%d bytes arrived, differing", len(b))
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("transfer stuck: %+v", c.Info())
	}
	// Wait until the overlay has sent whatever it queued, then stop
	// watching: from here the counts hold still.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		sent := 0
		for _, r := range recs {
			if r.Drop == stack.DropNone {
				sent++
			}
		}
		mu.Unlock()
		if a.conn.Counters().PacketsSent == uint64(sent) || time.Now().After(deadline) {
			break
		}
	}
	remove()

	mu.Lock()
	defer mu.Unlock()
	var sent, full, other uint64
	for _, r := range recs {
		switch r.Drop {
		case stack.DropNone:
			sent++
		case stack.DropOverlayQueueFull:
			full++
		default:
			other++
			t.Errorf("a packet dropped for %q", r.Drop)
		}
	}
	if full == 0 {
		t.Fatalf("no packet dropped by the overlay's full queue in %d sent", sent)
	}
	if got := stack.DropOverlayQueueFull.String(); got != "overlay queue full" {
		t.Errorf("the capture reads the reason as %q", got)
	}
	nc, oc := nic.Counters(), a.conn.Counters()
	if nc.TxDropped != full {
		t.Errorf("the interface counted %d transmit drops; the capture shows %d", nc.TxDropped, full)
	}
	if nc.TxPackets != sent || oc.PacketsSent != sent {
		t.Errorf("sent: the interface counted %d, the capture shows %d, the overlay sent %d", nc.TxPackets, sent, oc.PacketsSent)
	}
	if oc.TxQueueFull != full || oc.TxSendFailed != 0 {
		t.Errorf("the overlay counted %d refused for a full queue (capture: %d) and %d failed sends", oc.TxQueueFull, full, oc.TxSendFailed)
	}
	t.Logf("%d packets sent, %d dropped by the full queue, %d retransmits", sent, full, c.Info().Retransmits)
}
