package tcp

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// heldWorkers is a stack.Config.Go that keeps the receive workers for the
// test to run.
type heldWorkers struct {
	mu sync.Mutex
	fs []func()
}

func (h *heldWorkers) Go(f func()) { h.mu.Lock(); h.fs = append(h.fs, f); h.mu.Unlock() }

func (h *heldWorkers) run() {
	h.mu.Lock()
	fs := h.fs
	h.fs = nil
	h.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// packetLog is a link that keeps what it is sent.
type packetLog struct {
	mu   sync.Mutex
	pkts [][]byte
}

func (l *packetLog) Send(_ netip.Addr, pkt []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pkts = append(l.pkts, pkt)
	return nil
}

func (l *packetLog) take() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pkts
	l.pkts = nil
	return p
}

// Segments that arrive through the stack's receive queue together are one
// batch: the stack calls TCP's end-of-batch hook, which ACKs the batch's
// data once (batch.go), where segment by segment it would ACK every second
// one.
func TestReceiveQueueBatchACK(t *testing.T) {
	held := &heldWorkers{}
	a := stack.New(stack.Config{Name: "a", Clock: stack.SystemClock{}})
	b := stack.New(stack.Config{Name: "b", Clock: stack.SystemClock{}, Go: held.Go})
	toB, toA := &packetLog{}, &packetLog{}
	nicA, err := a.AddInterface("eth0", 1500, toB, netip.MustParsePrefix("10.0.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	nicB, err := b.AddInterface("eth0", 1500, toA, netip.MustParsePrefix("10.0.0.2/24"))
	if err != nil {
		t.Fatal(err)
	}
	ta, tb := New(a, Options{}), New(b, Options{})
	defer ta.Close()
	defer tb.Close()
	ln, err := tb.Listen(netip.MustParseAddrPort("10.0.0.2:80"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	// pump carries what each side sent: a's packets through b's receive
	// queue, b's straight into a. It returns b's packets.
	pump := func() (fromB [][]byte) {
		for _, p := range toB.take() {
			nicB.Receive(p)
		}
		held.run()
		fromB = toA.take()
		for _, p := range fromB {
			a.Deliver(nicA, p)
		}
		return fromB
	}
	type dialed struct {
		c   *Conn
		err error
	}
	dc := make(chan dialed, 1)
	go func() {
		c, err := ta.Dial(context.Background(), netip.MustParseAddrPort("10.0.0.2:80"))
		dc <- dialed{c, err}
	}()
	var d dialed
	for done := false; !done; {
		pump()
		select {
		case d = <-dc:
			done = true
		default:
		}
	}
	if d.err != nil {
		t.Fatal(d.err)
	}
	defer d.c.Close()
	pump() // the handshake's last ACK

	// Ten full segments from a (the initial window), taken in by b as one
	// batch.
	const segs = 10
	mss := 1500 - 20 - 20
	if _, err := d.c.Write(make([]byte, segs*mss)); err != nil {
		t.Fatal(err)
	}
	if n := len(toB.pkts); n != segs {
		t.Fatalf("a sent %d segments, want %d", n, segs)
	}
	fromB := pump()
	acks := 0
	for _, p := range fromB {
		ip := wire.IPv4(p)
		if tcp := wire.TCP(ip.Payload()); len(tcp) >= 20 && len(ip.Payload()) == tcp.DataOffset() {
			acks++
		}
	}
	if acks != 1 {
		t.Errorf("b sent %d ACKs for a batch of %d segments, want 1 (at the batch's end)", acks, segs)
	}
	if c := nicB.Counters(); c.RxDropped != 0 {
		t.Errorf("b dropped %d", c.RxDropped)
	}
}
