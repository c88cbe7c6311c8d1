package stack_test

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/stack"
)

// rxProto is the IP protocol the receive-path tests' transport takes (253
// is reserved for experiments, RFC 3692).
const rxProto = 253

var (
	rxLocal  = netip.MustParsePrefix("10.9.0.1/24")
	rxRemote = netip.MustParseAddr("10.9.0.2")
)

// batchRecorder is a BatchTransport that writes down what the stack calls.
type batchRecorder struct {
	mu     sync.Mutex
	events []string
}

func (b *batchRecorder) log(e string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, e)
}

func (b *batchRecorder) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.events
	b.events = nil
	return e
}

func (b *batchRecorder) HandlePacket(_ stack.PacketInfo, payload []byte) bool {
	b.log("packet " + string(payload))
	return true
}
func (b *batchRecorder) HandleError(stack.ICMPError) {}
func (b *batchRecorder) BeginBatch()                 { b.log("begin") }
func (b *batchRecorder) EndBatch()                   { b.log("end") }

// manualGo is a Config.Go that keeps the workers the stack starts, for the
// test to run on its own goroutine.
type manualGo struct {
	mu      sync.Mutex
	pending []func()
}

func (m *manualGo) Go(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pending = append(m.pending, f)
}

// run runs the workers started so far and reports how many there were.
func (m *manualGo) run() int {
	m.mu.Lock()
	fs := m.pending
	m.pending = nil
	m.mu.Unlock()
	for _, f := range fs {
		f()
	}
	return len(fs)
}

// rxStack is a stack with one interface eth0 on link (nil: none yet) and
// the batch recorder as transport rxProto.
func rxStack(t *testing.T, goFn func(func()), link stack.Link) (*stack.Stack, *stack.NIC, *batchRecorder) {
	t.Helper()
	s := stack.New(stack.Config{Name: "rx", Clock: newFakeClock(), Go: goFn})
	nic, err := s.AddInterface("eth0", 1500, link, rxLocal)
	if err != nil {
		t.Fatal(err)
	}
	rec := &batchRecorder{}
	s.RegisterTransport(rxProto, rec)
	return s, nic, rec
}

func rxPacket(payload string) []byte {
	return ipPacket(rxRemote, rxLocal.Addr(), 64, rxProto, []byte(payload))
}

// A batch is everything queued when the worker takes it, between the
// transport's BeginBatch and EndBatch; Deliver is outside any batch.
func TestReceiveBatches(t *testing.T) {
	m := &manualGo{}
	s, nic, rec := rxStack(t, m.Go, nil)
	nic.Receive(rxPacket("a"))
	nic.Receive(rxPacket("b"))
	nic.Receive(rxPacket("c"))
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("processed before the worker ran: %q", got)
	}
	if n := m.run(); n != 1 {
		t.Fatalf("%d workers started for one burst, want 1", n)
	}
	want := []string{"begin", "packet a", "packet b", "packet c", "end"}
	if diff := cmp.Diff(want, rec.take()); diff != "" {
		t.Errorf("first burst (-want +got):\n%s", diff)
	}
	// The worker returned with the queue empty: the next packet starts
	// another.
	nic.Receive(rxPacket("d"))
	if n := m.run(); n != 1 {
		t.Fatalf("%d workers started for the second burst, want 1", n)
	}
	if diff := cmp.Diff([]string{"begin", "packet d", "end"}, rec.take()); diff != "" {
		t.Errorf("second burst (-want +got):\n%s", diff)
	}
	s.Deliver(nic, rxPacket("e"))
	if diff := cmp.Diff([]string{"packet e"}, rec.take()); diff != "" {
		t.Errorf("Deliver (-want +got):\n%s", diff)
	}
	if c := nic.Counters(); c.RxPackets != 5 || c.RxDropped != 0 {
		t.Errorf("counters %+v, want 5 received, none dropped", c)
	}
}

// A full queue drops the packet, counts it and shows it to the taps with
// the reason; what was queued is processed.
func TestReceiveQueueFull(t *testing.T) {
	m := &manualGo{}
	_, nic, rec := rxStack(t, m.Go, nil)
	var mu sync.Mutex
	var drops []stack.TapRecord
	remove, err := nic.AddTap(nil, func(r stack.TapRecord) {
		if r.Drop != stack.DropNone {
			mu.Lock()
			drops = append(drops, r)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	for range stack.RxQueueLimit {
		nic.Receive(rxPacket("q"))
	}
	over := rxPacket("over")
	nic.Receive(over)
	if c := nic.Counters(); c.RxDropped != 1 || c.RxPackets != 0 {
		t.Errorf("counters with a full queue: %+v, want 1 dropped, none received", c)
	}
	if len(drops) != 1 || drops[0].Drop != stack.DropQueueFull || drops[0].Dir != stack.TapIn || !slices.Equal(drops[0].Packet, over) {
		t.Errorf("tap records of drops: %+v, want the packet, in, %q", drops, stack.DropQueueFull)
	}
	if n := m.run(); n != 1 {
		t.Fatalf("%d workers, want 1", n)
	}
	got := rec.take()
	if len(got) != stack.RxQueueLimit+2 || got[0] != "begin" || got[len(got)-1] != "end" {
		t.Errorf("%d events (first %q), want one batch of %d packets", len(got), got[:min(len(got), 1)], stack.RxQueueLimit)
	}
	if c := nic.Counters(); c.RxPackets != stack.RxQueueLimit || c.RxDropped != 1 {
		t.Errorf("counters after draining: %+v", c)
	}
}

// Close drops what is queued, waits for the worker and drops what comes
// later, each with DropDown.
func TestReceiveClose(t *testing.T) {
	m := &manualGo{}
	s, nic, rec := rxStack(t, m.Go, nil)
	nic.Receive(rxPacket("a"))
	nic.Receive(rxPacket("b"))
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	// Close drops the queue, then waits for the worker it was given.
	for nic.Counters().RxDropped != 2 {
		time.Sleep(time.Millisecond)
	}
	m.run()
	<-closed
	nic.Receive(rxPacket("c"))
	if c := nic.Counters(); c.RxDropped != 3 || c.RxPackets != 0 {
		t.Errorf("counters %+v, want 3 dropped, none received", c)
	}
	if got := rec.take(); len(got) != 0 {
		t.Errorf("events after Close: %q", got)
	}
	if n := m.run(); n != 0 {
		t.Errorf("%d workers started after Close", n)
	}
	s.Close() // idempotent
}

// An idle stack owns no goroutine: once a burst is processed, the workers
// are gone.
func TestReceiveIdleNoGoroutine(t *testing.T) {
	const stacks, burst = 50, 200
	before := runtime.NumGoroutine()
	type host struct {
		s   *stack.Stack
		nic *stack.NIC
	}
	var hosts []host
	for range stacks {
		s, nic, _ := rxStack(t, nil, nil)
		hosts = append(hosts, host{s, nic})
	}
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range burst {
				h.nic.Receive(rxPacket("x"))
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for _, h := range hosts {
		for h.nic.Counters().RxPackets+h.nic.Counters().RxDropped != burst {
			if time.Now().After(deadline) {
				t.Fatalf("%s: counters %+v after 30 s", h.s.Name(), h.nic.Counters())
			}
			time.Sleep(time.Millisecond)
		}
	}
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines with %d idle stacks, %d before:\n%s", runtime.NumGoroutine(), stacks, before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
	for _, h := range hosts {
		h.s.Close()
	}
}

// sendRecorder is a link that keeps what it is given.
type sendRecorder struct {
	mu   sync.Mutex
	pkts [][]byte
}

func (l *sendRecorder) Send(_ netip.Addr, pkt []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pkts = append(l.pkts, pkt)
	return nil
}

// An interface may come before its link: until SetLink it receives, and
// what the stack sends through it is dropped and counted, and taps see why.
func TestNICLinkLater(t *testing.T) {
	m := &manualGo{}
	s, nic, rec := rxStack(t, m.Go, nil)
	var mu sync.Mutex
	var out []stack.TapRecord
	remove, err := nic.AddTap(nil, func(r stack.TapRecord) {
		if r.Dir == stack.TapOut {
			mu.Lock()
			out = append(out, r)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer remove()

	nic.Receive(rxPacket("early"))
	m.run()
	if diff := cmp.Diff([]string{"begin", "packet early", "end"}, rec.take()); diff != "" {
		t.Errorf("received with no link (-want +got):\n%s", diff)
	}
	if _, err := s.SendIP(netip.Addr{}, rxRemote, rxProto, 0, []byte("lost")); err != nil {
		t.Fatalf("send with no link: %v", err)
	}
	if c := nic.Counters(); c.TxDropped != 1 || c.TxPackets != 0 {
		t.Errorf("counters with no link: %+v, want 1 dropped", c)
	}
	if len(out) != 1 || out[0].Drop != stack.DropDown {
		t.Errorf("tap records with no link: %+v, want one %q", out, stack.DropDown)
	}

	link := &sendRecorder{}
	nic.SetLink(link)
	if _, err := s.SendIP(netip.Addr{}, rxRemote, rxProto, 0, []byte("sent")); err != nil {
		t.Fatalf("send with a link: %v", err)
	}
	if c := nic.Counters(); c.TxPackets != 1 || c.TxDropped != 1 || len(link.pkts) != 1 {
		t.Errorf("counters with a link: %+v, link has %d packets; want 1 sent", c, len(link.pkts))
	}
	if len(out) != 2 || out[1].Drop != stack.DropNone {
		t.Errorf("tap records with a link: %+v", out)
	}

	nic.SetLink(nil) // down again
	remove()
	if _, err := s.SendIP(netip.Addr{}, rxRemote, rxProto, 0, []byte("lost")); err != nil {
		t.Fatalf("send with the link taken away: %v", err)
	}
	if c := nic.Counters(); c.TxDropped != 2 || len(link.pkts) != 1 {
		t.Errorf("counters with the link taken away: %+v", c)
	}
}

// countTransport counts packets and batches.
type countTransport struct{ packets, batches atomic.Int64 }

func (c *countTransport) HandlePacket(stack.PacketInfo, []byte) bool { c.packets.Add(1); return true }
func (c *countTransport) HandleError(stack.ICMPError)                {}
func (c *countTransport) BeginBatch()                                {}
func (c *countTransport) EndBatch()                                  { c.batches.Add(1) }

// BenchmarkReceive measures the receive path: one goroutine hands bursts
// of packets to NIC.Receive and waits for the stack's worker to take them
// to a transport, so that each burst starts a worker (the idle stack's
// case; burst=1 is a ping's).
func BenchmarkReceive(b *testing.B) {
	for _, burst := range []int{1, 64} {
		b.Run(fmt.Sprintf("burst=%d", burst), func(b *testing.B) {
			s := stack.New(stack.Config{Name: "rx", Clock: newFakeClock()})
			nic, err := s.AddInterface("eth0", 1500, nil, rxLocal)
			if err != nil {
				b.Fatal(err)
			}
			ct := &countTransport{}
			s.RegisterTransport(rxProto, ct)
			// The transport only reads the packet: one buffer serves all.
			pkt := ipPacket(rxRemote, rxLocal.Addr(), 64, rxProto, make([]byte, 1000))
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			n := int64(0)
			for b.Loop() {
				nic.Receive(pkt)
				if n++; n%int64(burst) == 0 {
					for ct.packets.Load() != n {
						runtime.Gosched()
					}
				}
			}
			for ct.packets.Load() != n {
				runtime.Gosched()
			}
			b.StopTimer()
			s.Close()
			if d := nic.Counters().RxDropped; d != 0 {
				b.Fatalf("%d dropped", d)
			}
			b.ReportMetric(float64(n)/float64(max(ct.batches.Load(), 1)), "pkts/batch")
		})
	}
}
