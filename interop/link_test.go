package interop

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/stack"
)

// collect starts w and returns what each side receives.
func collect(w *Wire) (toA, toB chan []byte) {
	toA, toB = make(chan []byte, 8192), make(chan []byte, 8192)
	w.start(func(b []byte) { toA <- b }, func(b []byte) { toB <- b })
	return toA, toB
}

func receive(t *testing.T, c chan []byte) []byte {
	t.Helper()
	select {
	case b := <-c:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no packet delivered in 5s")
		return nil
	}
}

func newTestWire(t *testing.T, o Options) *Wire {
	t.Helper()
	o, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	w := newWire(o)
	t.Cleanup(w.stop)
	return w
}

// TestLinkCopies checks that the receiver gets its own bytes: changing the
// sender's buffer after Send changes nothing delivered.
func TestLinkCopies(t *testing.T) {
	w := newTestWire(t, Options{})
	_, toB := collect(w)
	end := &labnetEnd{peer: []netip.Addr{AddrB4}, out: w.ab}
	pkt := []byte{0x45, 1, 2, 3, 4, 5}
	if err := end.Send(AddrB4, pkt); err != nil {
		t.Fatalf("Send: %v", err)
	}
	clear(pkt)
	if got := receive(t, toB); !cmp.Equal(got, []byte{0x45, 1, 2, 3, 4, 5}) {
		t.Errorf("delivered %x, want the bytes as sent", got)
	}
}

// TestLinkNextHop checks that a next hop the far side does not own is
// unreachable, as a failed neighbour lookup is.
func TestLinkNextHop(t *testing.T) {
	w := newTestWire(t, Options{})
	end := &labnetEnd{peer: []netip.Addr{AddrB4, AddrB6}, out: w.ab}
	for _, hop := range []string{"10.0.0.3", "fd00::3", "10.0.0.1"} {
		if err := end.Send(netip.MustParseAddr(hop), []byte{0x45}); !errors.Is(err, stack.ErrHostUnreachable) {
			t.Errorf("Send to %s: %v, want %v", hop, err, stack.ErrHostUnreachable)
		}
	}
	if ab, _ := w.Stats(); ab != (Stats{}) {
		t.Errorf("stats %+v, want nothing sent", ab)
	}
}

// TestLinkMTU checks that the link carries packets of exactly its MTU and
// drops longer ones.
func TestLinkMTU(t *testing.T) {
	for _, mtu := range []int{1500, 9000} {
		w := newTestWire(t, Options{MTU: mtu})
		_, toB := collect(w)
		w.ab.put(make([]byte, mtu+1))
		w.ab.put(make([]byte, mtu))
		if got := receive(t, toB); len(got) != mtu {
			t.Errorf("MTU %d: delivered %d bytes", mtu, len(got))
		}
		ab, _ := w.Stats()
		if want := (Stats{Sent: 1, Delivered: 1, Oversize: 1}); ab != want {
			t.Errorf("MTU %d: stats %+v, want %+v", mtu, ab, want)
		}
	}
}

// TestLinkQueueFull checks that a full queue drops instead of blocking.
func TestLinkQueueFull(t *testing.T) {
	w := newTestWire(t, Options{Queue: 2}) // not started: nothing drains
	for range 3 {
		w.ab.put([]byte{0x45})
	}
	if ab, _ := w.Stats(); ab.Sent != 2 || ab.QueueDrops != 1 {
		t.Errorf("stats %+v, want 2 sent and 1 queue drop", ab)
	}
}

// impaired sends n numbered packets A to B over a link with options o and
// returns the numbers in the order B received them. The queue is filled
// before delivery starts, so the result depends on o only.
func impaired(t *testing.T, o Options, n int) ([]int, Stats) {
	t.Helper()
	o.Queue = n
	w := newTestWire(t, o)
	for i := range n {
		w.ab.put(binary.BigEndian.AppendUint32(nil, uint32(i)))
	}
	_, toB := collect(w)
	var got []int
	deadline := time.After(10 * time.Second)
	for {
		ab, _ := w.Stats()
		if ab.Delivered+ab.Lost == uint64(n) && len(got) == int(ab.Delivered) {
			return got, ab
		}
		select {
		case b := <-toB:
			got = append(got, int(binary.BigEndian.Uint32(b)))
		case <-time.After(time.Millisecond):
		case <-deadline:
			t.Fatalf("after 10s: %d of %d packets delivered, stats %+v", len(got), n, ab)
		}
	}
}

// TestLinkLoss checks that loss drops about the given share of packets,
// the same ones for the same seed, and keeps the rest in order.
func TestLinkLoss(t *testing.T) {
	const n = 2000
	o := Options{Loss: 30, Seed: 1}
	got, st := impaired(t, o, n)
	if st.Lost < n*25/100 || st.Lost > n*35/100 {
		t.Errorf("lost %d of %d at 30%%", st.Lost, n)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("packet %d delivered after %d", got[i], got[i-1])
		}
	}
	again, _ := impaired(t, o, n)
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("same seed, different packets (-first +second):\n%s", diff)
	}
	other, _ := impaired(t, Options{Loss: 30, Seed: 2}, n)
	if cmp.Equal(got, other) {
		t.Error("seeds 1 and 2 lost the same packets")
	}
}

// TestLinkReorder checks that reordering delivers every packet, each held
// one right after its successor, the same way for the same seed.
func TestLinkReorder(t *testing.T) {
	const n = 2000
	// A long delay, so that no held packet is released by the timer while
	// its successor waits in the queue (the last one is).
	o := Options{Reorder: 10, Seed: 1, ReorderDelay: 50 * time.Millisecond}
	got, st := impaired(t, o, n)
	if len(got) != n || st.Lost != 0 {
		t.Fatalf("delivered %d of %d, stats %+v", len(got), n, st)
	}
	swaps := 0
	for i := 0; i < n; i++ {
		switch {
		case got[i] == i:
		case i+1 < n && got[i] == i+1 && got[i+1] == i:
			swaps++
			i++
		default:
			t.Fatalf("position %d holds packet %d: %v", i, got[i], got[max(0, i-3):min(n, i+3)])
		}
	}
	if uint64(swaps) != st.Reordered || swaps < n*5/100 || swaps > n*12/100 {
		t.Errorf("%d swaps, %d counted reordered, of %d at 10%%", swaps, st.Reordered, n)
	}
	again, _ := impaired(t, o, n)
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("same seed, different order (-first +second):\n%s", diff)
	}
}

// TestLinkReorderDelay checks that a held packet with no successor is
// delivered after the reorder delay.
func TestLinkReorderDelay(t *testing.T) {
	w := newTestWire(t, Options{Reorder: 100, ReorderDelay: 20 * time.Millisecond})
	_, toB := collect(w)
	start := time.Now()
	w.ab.put([]byte{0x45})
	receive(t, toB)
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("held packet delivered after %v, want at least 20ms", d)
	}
	if ab, _ := w.Stats(); ab.Delivered != 1 || ab.Reordered != 0 {
		t.Errorf("stats %+v, want 1 delivered and nothing reordered", ab)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{{MTU: 67}, {Loss: -1}, {Loss: 101}, {Reorder: 100.5}, {ReorderDelay: -1}, {Queue: -1}} {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
