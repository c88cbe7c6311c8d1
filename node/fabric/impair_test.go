package fabric

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/vclock"
)

var (
	addrA = netip.MustParseAddr("10.0.0.1")
	addrB = netip.MustParseAddr("10.0.0.2")
)

// arrival is a packet received by the sink, with the virtual time it came.
type arrival struct {
	at  time.Duration // since vclock.Epoch
	pkt []byte
}

// sink collects what port b receives.
type sink struct {
	mu  sync.Mutex
	got []arrival
}

func (s *sink) packets() []arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]arrival(nil), s.got...)
}

// link is two ports on one segment in virtual time: a sends, b receives
// into the sink.
type link struct {
	clock *vclock.Clock
	a, b  *Port
	sink  *sink
}

func newLink(t *testing.T, seed uint64) *link {
	t.Helper()
	clock := vclock.New()
	f := New(WithClock(clock), WithSeed(seed))
	l := &link{clock: clock, sink: &sink{}}
	var err error
	if l.a, err = f.Attach("n", "a:eth0", []netip.Addr{addrA}, func([]byte) { t.Error("a received a packet") }); err != nil {
		t.Fatal(err)
	}
	if l.b, err = f.Attach("n", "b:eth0", []netip.Addr{addrB}, func(p []byte) {
		l.sink.mu.Lock()
		defer l.sink.mu.Unlock()
		l.sink.got = append(l.sink.got, arrival{clock.Now().Sub(vclock.Epoch), p})
	}); err != nil {
		t.Fatal(err)
	}
	return l
}

// numbered is a size-byte packet carrying n in its first 4 bytes.
func numbered(n, size int) []byte {
	p := make([]byte, max(size, 4))
	binary.BigEndian.PutUint32(p, uint32(n))
	return p
}

func number(p []byte) int { return int(binary.BigEndian.Uint32(p)) }

// send sends n numbered packets from a, one every gap of virtual time.
func (l *link) send(t *testing.T, n, size int, gap time.Duration) {
	t.Helper()
	for i := range n {
		if i > 0 && gap > 0 {
			l.clock.Advance(gap)
		}
		if err := l.a.Send(addrB, numbered(i, size)); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
}

// within fails unless got is within [lo, hi].
func within(t *testing.T, what string, got, lo, hi uint64) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("%s = %d, want %d..%d", what, got, lo, hi)
	}
}

func TestImpairLoss(t *testing.T) {
	const n = 10000
	l := newLink(t, 1)
	l.a.SetImpair(&Impairment{Loss: 10})
	l.send(t, n, 64, 0)
	got := l.sink.packets()
	dropped := uint64(n - len(got))
	// Binomial(10000, 0.1): mean 1000, standard deviation 30; 5 sd either way.
	within(t, "dropped", dropped, 850, 1150)
	if c := l.a.ImpairCounters(); c != (ImpairCounters{Dropped: dropped}) {
		t.Errorf("counters %+v, want only Dropped=%d", c, dropped)
	}
	// Loss alone holds nothing back: the survivors arrive at once, in order.
	for i := 1; i < len(got); i++ {
		if number(got[i].pkt) <= number(got[i-1].pkt) || got[i].at != 0 {
			t.Fatalf("packet %d: #%d at %v after #%d", i, number(got[i].pkt), got[i].at, number(got[i-1].pkt))
		}
	}
	if l.clock.Pending() != 0 {
		t.Errorf("%d timers pending for loss alone", l.clock.Pending())
	}

	// The same seed loses the same packets.
	again := newLink(t, 1)
	again.a.SetImpair(&Impairment{Loss: 10})
	again.send(t, n, 64, 0)
	if len(again.sink.packets()) != len(got) {
		t.Errorf("same seed: %d packets, then %d", len(got), len(again.sink.packets()))
	}
}

func TestImpairDelay(t *testing.T) {
	l := newLink(t, 1)
	l.a.SetImpair(&Impairment{Delay: 20 * time.Millisecond})
	l.send(t, 5, 100, time.Millisecond) // at 0, 1, 2, 3, 4 ms
	if got := l.sink.packets(); len(got) != 0 {
		t.Fatalf("%d packets arrived before their delay", len(got))
	}
	l.clock.Advance(20*time.Millisecond - 4*time.Millisecond - time.Nanosecond)
	if got := l.sink.packets(); len(got) != 0 {
		t.Fatalf("a packet arrived 1ns early: %v", got[0].at)
	}
	l.clock.Advance(time.Second)
	got := l.sink.packets()
	if len(got) != 5 {
		t.Fatalf("%d packets arrived, want 5", len(got))
	}
	for i, a := range got {
		if want := 20*time.Millisecond + time.Duration(i)*time.Millisecond; number(a.pkt) != i || a.at != want {
			t.Errorf("arrival %d: #%d at %v, want #%d at %v", i, number(a.pkt), a.at, i, want)
		}
	}
	if c := l.a.ImpairCounters(); c != (ImpairCounters{Delayed: 5}) {
		t.Errorf("counters %+v, want Delayed=5", c)
	}
	if l.a.Held() != 0 {
		t.Errorf("%d packets still held", l.a.Held())
	}
}

func TestImpairJitter(t *testing.T) {
	const n = 2000
	l := newLink(t, 2)
	l.a.SetImpair(&Impairment{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond})
	sent := make([]time.Duration, n)
	for i := range n {
		sent[i] = l.clock.Now().Sub(vclock.Epoch)
		if err := l.a.Send(addrB, numbered(i, 64)); err != nil {
			t.Fatal(err)
		}
		l.clock.Advance(100 * time.Microsecond)
	}
	l.clock.Advance(time.Second)
	got := l.sink.packets()
	if len(got) != n {
		t.Fatalf("%d packets arrived, want %d", len(got), n)
	}
	lo, hi := time.Hour, time.Duration(0)
	overtaken := 0
	for i, a := range got {
		d := a.at - sent[number(a.pkt)]
		if d < 15*time.Millisecond || d > 25*time.Millisecond {
			t.Fatalf("packet #%d delayed %v, want 20ms±5ms", number(a.pkt), d)
		}
		lo, hi = min(lo, d), max(hi, d)
		if i > 0 && number(a.pkt) < number(got[i-1].pkt) {
			overtaken++
		}
	}
	// The delays spread over the whole range, and with packets 0.1ms apart
	// jitter of ±5ms reorders many of them (as netem does).
	if lo > 15500*time.Microsecond || hi < 24500*time.Microsecond {
		t.Errorf("delays span %v..%v, want about 15ms..25ms", lo, hi)
	}
	if overtaken < n/10 {
		t.Errorf("%d of %d packets overtaken: jitter should reorder", overtaken, n)
	}

	// Jitter larger than the delay clamps at zero: some packets go at once.
	l = newLink(t, 3)
	l.a.SetImpair(&Impairment{Delay: time.Millisecond, Jitter: 5 * time.Millisecond})
	l.send(t, 1000, 64, 0)
	atOnce := len(l.sink.packets())
	l.clock.Advance(time.Second)
	if len(l.sink.packets()) != 1000 {
		t.Fatalf("%d packets arrived, want 1000", len(l.sink.packets()))
	}
	// P(delay <= 0) = P(jitter <= -1ms) = 0.4.
	within(t, "packets sent at once", uint64(atOnce), 300, 500)
	for _, a := range l.sink.packets() {
		if a.at < 0 || a.at > 6*time.Millisecond {
			t.Fatalf("packet #%d at %v, want 0..6ms", number(a.pkt), a.at)
		}
	}
}

func TestImpairReorder(t *testing.T) {
	const n = 1000
	l := newLink(t, 4)
	l.a.SetImpair(&Impairment{Delay: 10 * time.Millisecond, Reorder: 25})
	sent := make([]time.Duration, n)
	for i := range n {
		sent[i] = l.clock.Now().Sub(vclock.Epoch)
		if err := l.a.Send(addrB, numbered(i, 64)); err != nil {
			t.Fatal(err)
		}
		l.clock.Advance(time.Millisecond)
	}
	l.clock.Advance(time.Second)
	got := l.sink.packets()
	if len(got) != n {
		t.Fatalf("%d packets arrived, want %d", len(got), n)
	}
	var atOnce uint64
	overtook := 0
	for i, a := range got {
		switch d := a.at - sent[number(a.pkt)]; d {
		case 0:
			atOnce++
		case 10 * time.Millisecond:
		default:
			t.Fatalf("packet #%d delayed %v, want 0 or 10ms", number(a.pkt), d)
		}
		if i > 0 && number(a.pkt) < number(got[i-1].pkt) {
			overtook++
		}
	}
	// Binomial(1000, 0.25): mean 250, sd 13.7.
	within(t, "sent at once", atOnce, 180, 320)
	if c := l.a.ImpairCounters(); c.Reordered != atOnce || c.Delayed != n-atOnce {
		t.Errorf("counters %+v, want Reordered=%d Delayed=%d", c, atOnce, n-atOnce)
	}
	if overtook == 0 {
		t.Error("no packet overtook a delayed one")
	}

	// Without a delay, reorder changes nothing.
	l = newLink(t, 4)
	l.a.SetImpair(&Impairment{Reorder: 50})
	l.send(t, 100, 64, 0)
	for i, a := range l.sink.packets() {
		if number(a.pkt) != i {
			t.Fatalf("arrival %d is #%d without a delay", i, number(a.pkt))
		}
	}
	if c := l.a.ImpairCounters(); c.Reordered != 0 {
		t.Errorf("Reordered = %d without a delay", c.Reordered)
	}
}

func TestImpairDuplicate(t *testing.T) {
	l := newLink(t, 5)
	l.a.SetImpair(&Impairment{Duplicate: 100})
	l.send(t, 10, 64, 0)
	got := l.sink.packets()
	if len(got) != 20 {
		t.Fatalf("%d packets arrived, want 20", len(got))
	}
	for i := 0; i < 20; i += 2 {
		a, b := got[i].pkt, got[i+1].pkt
		if number(a) != i/2 || number(b) != i/2 {
			t.Fatalf("arrivals %d, %d: #%d, #%d, want #%d twice", i, i+1, number(a), number(b), i/2)
		}
		// Receivers own their packets: the copy must be a buffer of its own.
		a[10] ^= 0xff
		if b[10] != 0 {
			t.Fatalf("packet #%d and its duplicate share a buffer", i/2)
		}
	}
	if c := l.a.ImpairCounters(); c != (ImpairCounters{Duplicated: 10}) {
		t.Errorf("counters %+v, want Duplicated=10", c)
	}

	const n = 10000
	l = newLink(t, 6)
	l.a.SetImpair(&Impairment{Duplicate: 2})
	l.send(t, n, 64, 0)
	// Binomial(10000, 0.02): mean 200, sd 14.
	extra := uint64(len(l.sink.packets()) - n)
	within(t, "duplicates", extra, 130, 270)
	if c := l.a.ImpairCounters(); c.Duplicated != extra {
		t.Errorf("Duplicated = %d, %d duplicates arrived", c.Duplicated, extra)
	}
}

func TestImpairCorrupt(t *testing.T) {
	const n, size = 2000, 100
	l := newLink(t, 7)
	l.a.SetImpair(&Impairment{Corrupt: 100})
	originals := make([][]byte, n)
	for i := range n {
		originals[i] = numbered(i, size)
		if err := l.a.Send(addrB, originals[i]); err != nil {
			t.Fatal(err)
		}
	}
	got := l.sink.packets()
	if len(got) != n {
		t.Fatalf("%d packets arrived, want %d", len(got), n)
	}
	var offsets [size]int
	for i, a := range got {
		want := numbered(i, size)
		if string(originals[i]) != string(want) {
			t.Fatalf("packet #%d: the sender's buffer was changed", i)
		}
		flipped, at := 0, -1
		for j := range want {
			if d := bits.OnesCount8(a.pkt[j] ^ want[j]); d > 0 {
				flipped += d
				at = j
			}
		}
		if flipped != 1 {
			t.Fatalf("packet %d has %d bits flipped, want 1", i, flipped)
		}
		offsets[at]++
	}
	// Anywhere in the packet: every offset is hit (20 times each on average).
	for off, c := range offsets {
		if c == 0 {
			t.Errorf("no packet corrupted at offset %d", off)
		}
	}
	if c := l.a.ImpairCounters(); c != (ImpairCounters{Corrupted: n}) {
		t.Errorf("counters %+v, want Corrupted=%d", c, n)
	}

	// 1%: statistically so.
	l = newLink(t, 8)
	l.a.SetImpair(&Impairment{Corrupt: 1})
	l.send(t, 10000, 64, 0)
	within(t, "corrupted", l.a.ImpairCounters().Corrupted, 60, 140)
}

func TestImpairRate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rate  uint64
		n     int
		size  int
		total time.Duration // for all n packets
	}{
		// 8000 bit/s is one byte per millisecond: 10 x 100 bytes take 1s.
		{"8kbit", 8000, 10, 100, time.Second},
		// 10 Mbit/s: 100 x 1250 bytes = 1 Mbit take 100ms.
		{"10mbit", 10_000_000, 100, 1250, 100 * time.Millisecond},
		// 3 Mbit/s: 64 bytes take 170666.67ns; 3 x 64 bytes exactly 512us.
		// The fractions carry from one packet to the next.
		{"fractional", 3_000_000, 3, 64, 512 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLink(t, 9)
			l.a.SetImpair(&Impairment{Rate: tc.rate})
			l.send(t, tc.n, tc.size, 0)
			l.clock.Advance(tc.total - time.Nanosecond)
			if got := len(l.sink.packets()); got != tc.n-1 {
				t.Fatalf("%d packets arrived 1ns before %v, want %d", got, tc.total, tc.n-1)
			}
			l.clock.Advance(time.Nanosecond)
			got := l.sink.packets()
			if len(got) != tc.n {
				t.Fatalf("%d packets arrived after %v, want %d", len(got), tc.total, tc.n)
			}
			for i, a := range got {
				// Packet i arrives when the link has sent i+1 packets.
				bitsSent := uint64(i+1) * uint64(tc.size) * 8
				want := time.Duration(bitsSent * uint64(time.Second) / tc.rate)
				if number(a.pkt) != i || a.at != want {
					t.Errorf("arrival %d: #%d at %v, want #%d at %v", i, number(a.pkt), a.at, i, want)
				}
			}
		})
	}

	t.Run("idle_link", func(t *testing.T) {
		// A packet that finds the link idle starts at once: spacing packets
		// further apart than their serialization time delays each by it alone.
		l := newLink(t, 9)
		l.a.SetImpair(&Impairment{Rate: 8000})
		l.send(t, 3, 10, 50*time.Millisecond) // 10ms each, sent every 50ms
		l.clock.Advance(time.Second)
		for i, a := range l.sink.packets() {
			if want := time.Duration(i)*50*time.Millisecond + 10*time.Millisecond; a.at != want {
				t.Errorf("packet #%d at %v, want %v", number(a.pkt), a.at, want)
			}
		}
	})

	t.Run("after_delay", func(t *testing.T) {
		// Delay first, then the link: 20ms, then 10ms per packet.
		l := newLink(t, 9)
		l.a.SetImpair(&Impairment{Delay: 20 * time.Millisecond, Rate: 8000})
		l.send(t, 3, 10, 0)
		l.clock.Advance(time.Second)
		got := l.sink.packets()
		if len(got) != 3 {
			t.Fatalf("%d packets arrived, want 3", len(got))
		}
		for i, a := range got {
			if want := 20*time.Millisecond + time.Duration(i+1)*10*time.Millisecond; a.at != want {
				t.Errorf("packet #%d at %v, want %v", number(a.pkt), a.at, want)
			}
		}
		if c := l.a.ImpairCounters(); c != (ImpairCounters{Delayed: 3}) {
			t.Errorf("counters %+v, want Delayed=3", c)
		}
	})
}

func TestImpairBacklog(t *testing.T) {
	l := newLink(t, 10)
	l.a.SetImpair(&Impairment{Rate: 8000})
	l.send(t, DefaultLimit+100, 10, 0)
	if l.a.Held() != DefaultLimit {
		t.Errorf("%d packets held, want %d", l.a.Held(), DefaultLimit)
	}
	want := ImpairCounters{Delayed: DefaultLimit, QueueDropped: 100}
	if c := l.a.ImpairCounters(); c != want {
		t.Errorf("counters %+v, want %+v", c, want)
	}
	l.clock.Advance(time.Hour)
	got := l.sink.packets()
	if len(got) != DefaultLimit {
		t.Fatalf("%d packets arrived, want %d", len(got), DefaultLimit)
	}
	if last := number(got[len(got)-1].pkt); last != DefaultLimit-1 {
		t.Errorf("last packet #%d, want #%d (the overflow is dropped, not the queue)", last, DefaultLimit-1)
	}

	// A smaller limit, with delayed packets.
	l = newLink(t, 10)
	l.a.SetImpair(&Impairment{Delay: time.Second, Limit: 5})
	l.send(t, 8, 10, 0)
	if c := l.a.ImpairCounters(); c.QueueDropped != 3 || c.Delayed != 5 {
		t.Errorf("counters %+v, want Delayed=5 QueueDropped=3", c)
	}
	// Once the queue drains there is room again.
	l.clock.Advance(time.Second)
	l.send(t, 5, 10, 0)
	if c := l.a.ImpairCounters(); c.QueueDropped != 3 || c.Delayed != 10 {
		t.Errorf("counters %+v, want Delayed=10 QueueDropped=3", c)
	}
}

func TestImpairChange(t *testing.T) {
	l := newLink(t, 11)
	l.a.SetImpair(&Impairment{Delay: 100 * time.Millisecond})
	l.send(t, 3, 10, 0) // #0-2, due at 100ms
	l.a.SetImpair(&Impairment{Delay: 10 * time.Millisecond, Rate: 8000})
	if got := l.a.Impairment(); got == nil || got.Delay != 10*time.Millisecond || got.Rate != 8000 || got.Limit != DefaultLimit {
		t.Errorf("Impairment() = %+v", got)
	}
	if err := l.a.Send(addrB, numbered(3, 10)); err != nil { // due at 10ms + 10ms
		t.Fatal(err)
	}
	l.clock.Advance(time.Second)
	got := l.sink.packets()
	var order []int
	var at []time.Duration
	for _, a := range got {
		order = append(order, number(a.pkt))
		at = append(at, a.at)
	}
	// Nothing held is lost; the packets held from before leave when their
	// old delay ends, then wait for the link like any other.
	wantAt := []time.Duration{20 * time.Millisecond, 110 * time.Millisecond, 120 * time.Millisecond, 130 * time.Millisecond}
	if len(order) != 4 || order[0] != 3 || order[1] != 0 || order[2] != 1 || order[3] != 2 {
		t.Fatalf("arrival order %v, want [3 0 1 2]", order)
	}
	for i := range wantAt {
		if at[i] != wantAt[i] {
			t.Errorf("arrivals at %v, want %v", at, wantAt)
			break
		}
	}
}

func TestImpairClear(t *testing.T) {
	l := newLink(t, 12)
	l.a.SetImpair(&Impairment{Delay: 50 * time.Millisecond, Loss: 1})
	l.send(t, 100, 10, 0)
	held := l.a.Held()
	if held == 0 {
		t.Fatal("nothing held")
	}
	before := l.a.ImpairCounters()
	l.a.SetImpair(nil)
	if l.a.Impairment() != nil {
		t.Errorf("Impairment() = %+v after clearing", l.a.Impairment())
	}
	// New packets go at once, without impairments.
	if err := l.a.Send(addrB, numbered(1000, 10)); err != nil {
		t.Fatal(err)
	}
	if got := l.sink.packets(); len(got) != 1 || number(got[0].pkt) != 1000 {
		t.Fatalf("after clearing: %d packets arrived at once, want #1000", len(got))
	}
	// What was held still arrives.
	l.clock.Advance(50 * time.Millisecond)
	if got := len(l.sink.packets()); got != 1+held {
		t.Errorf("%d packets arrived, want %d", got, 1+held)
	}
	if after := l.a.ImpairCounters(); after != before {
		t.Errorf("counters changed by clearing: %+v, then %+v", before, after)
	}
	// The zero Impairment clears too.
	l.a.SetImpair(&Impairment{Loss: 100})
	l.a.SetImpair(&Impairment{})
	if l.a.Impairment() != nil {
		t.Error("the zero Impairment did not clear")
	}
}

func TestImpairUnreachable(t *testing.T) {
	l := newLink(t, 13)
	l.a.SetImpair(&Impairment{Loss: 100, Delay: time.Second})
	// No owner: the sender learns it at once, as without impairments.
	if err := l.a.Send(netip.MustParseAddr("10.0.0.9"), []byte("x")); !errors.Is(err, stack.ErrHostUnreachable) {
		t.Fatalf("Send to nobody: %v, want ErrHostUnreachable", err)
	}
	if c := l.a.ImpairCounters(); c != (ImpairCounters{}) {
		t.Errorf("counters %+v for a packet with no owner", c)
	}
}

func TestImpairDetach(t *testing.T) {
	l := newLink(t, 14)
	l.a.SetImpair(&Impairment{Delay: time.Second})
	l.send(t, 5, 10, 0)
	l.a.Detach()
	if l.clock.Pending() != 0 {
		t.Errorf("%d timers pending after Detach", l.clock.Pending())
	}
	l.clock.Advance(2 * time.Second)
	if got := l.sink.packets(); len(got) != 0 {
		t.Errorf("%d packets of a detached port arrived", len(got))
	}

	// A packet held for a port that went away is not delivered to it.
	l = newLink(t, 14)
	l.a.SetImpair(&Impairment{Delay: time.Second})
	l.send(t, 1, 10, 0)
	l.b.Detach()
	l.clock.Advance(2 * time.Second)
	if got := l.sink.packets(); len(got) != 0 {
		t.Errorf("a held packet reached a detached port")
	}
}

func TestSendNoAllocs(t *testing.T) {
	f := New()
	a, _ := f.Attach("n", "a", []netip.Addr{addrA}, func([]byte) {})
	f.Attach("n", "b", []netip.Addr{addrB}, func([]byte) {})
	pkt := make([]byte, 1400)
	// Set, then cleared: back to the plain path.
	a.SetImpair(&Impairment{Loss: 1})
	a.SetImpair(nil)
	if n := testing.AllocsPerRun(1000, func() { a.Send(addrB, pkt) }); n != 0 {
		t.Errorf("Send without impairments: %v allocations, want 0", n)
	}
}

func BenchmarkSendImpaired(b *testing.B) {
	clock := vclock.New()
	f := New(WithClock(clock), WithSeed(1))
	a, _ := f.Attach("n", "a", []netip.Addr{addrA}, func([]byte) {})
	f.Attach("n", "b", []netip.Addr{addrB}, func([]byte) {})
	a.SetImpair(&Impairment{Loss: 1, Corrupt: 1, Duplicate: 1})
	pkt := make([]byte, 1400)
	b.ReportAllocs()
	for b.Loop() {
		a.Send(addrB, pkt)
	}
}

// TestSendFate: what the impairments did to a packet is what captures are
// told (stack.FateLink).
func TestSendFate(t *testing.T) {
	cases := []struct {
		im   Impairment
		drop stack.Drop
		note string
	}{
		{Impairment{}, stack.DropNone, ""},
		{Impairment{Loss: 100}, stack.DropLoss, ""},
		{Impairment{Corrupt: 100}, stack.DropNone, "corrupted"},
		{Impairment{Delay: 5 * time.Millisecond}, stack.DropNone, "delayed 5ms"},
		{Impairment{Duplicate: 100}, stack.DropNone, "duplicated"},
		{Impairment{Delay: time.Millisecond, Limit: 1}, stack.DropNone, "delayed 1ms"},
	}
	for _, tc := range cases {
		l := newLink(t, 1)
		l.a.SetImpair(&tc.im)
		var _ stack.FateLink = l.a
		fate, err := l.a.SendFate(addrB, make([]byte, 40))
		if err != nil || fate.Drop != tc.drop || fate.Note != tc.note {
			t.Errorf("%+v: fate %+v, %v; want drop %q note %q", tc.im, fate, err, tc.drop, tc.note)
		}
		if tc.im.Limit == 1 {
			// The second packet finds the one held packet filling the limit.
			fate, _ := l.a.SendFate(addrB, make([]byte, 40))
			if fate.Drop != stack.DropLinkQueueFull {
				t.Errorf("over the limit: fate %+v, want %q", fate, stack.DropLinkQueueFull)
			}
		}
	}
	l := newLink(t, 1)
	if _, err := l.a.SendFate(netip.MustParseAddr("10.0.0.9"), make([]byte, 40)); !errors.Is(err, stack.ErrHostUnreachable) {
		t.Errorf("unowned next hop: %v", err)
	}
}
