package tcp

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/stack"
)

// impairment degrades a link, as netem would.
type impairment struct {
	loss, reorder, duplicate, corrupt float64 // fractions
	seed                              uint64
}

// chanLink carries packets to the peer stack on a goroutine, as the fabric
// does between hosts, optionally impaired.
type chanLink struct {
	ch chan []byte
	// before, when set, sees every packet first, on the sending goroutine,
	// which it may hold up.
	before func(pkt []byte)

	mu   sync.Mutex
	imp  *impairment
	rng  *rand.Rand
	held []byte // a packet held back to be reordered
	hold *time.Timer

	lost, reordered, duplicated, corrupted int
}

func (l *chanLink) Send(nextHop netip.Addr, pkt []byte) error {
	if l.before != nil {
		l.before(pkt)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.imp == nil {
		l.deliver(pkt)
		return nil
	}
	imp, r := l.imp, l.rng
	if r.Float64() < imp.loss {
		l.lost++
		return nil
	}
	if r.Float64() < imp.corrupt {
		c := append([]byte(nil), pkt...)
		bit := r.IntN(len(c) * 8)
		c[bit/8] ^= 1 << (bit % 8)
		pkt = c
		l.corrupted++
	}
	if r.Float64() < imp.duplicate {
		l.deliver(append([]byte(nil), pkt...))
		l.duplicated++
	}
	if l.held == nil && r.Float64() < imp.reorder {
		// Hold this one back until the next packet has gone (or 2ms).
		l.held = pkt
		l.reordered++
		l.hold = time.AfterFunc(2*time.Millisecond, func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.held != nil {
				l.deliver(l.held)
				l.held = nil
			}
		})
		return nil
	}
	l.deliver(pkt)
	if l.held != nil {
		l.hold.Stop()
		l.deliver(l.held)
		l.held = nil
	}
	return nil
}

func (l *chanLink) deliver(pkt []byte) {
	select {
	case l.ch <- pkt:
	default: // a full queue drops, as a NIC ring does
	}
}

func (l *chanLink) impair(imp *impairment) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.imp = imp
	if imp != nil {
		l.rng = rand.New(rand.NewPCG(imp.seed, 7))
	}
}

// pair is two hosts, a (10.0.0.1, fd00::1) and b (10.0.0.2, fd00::2), on one
// network, each with TCP, on the system clock.
type pair struct {
	a, b         *stack.Stack
	ta, tb       *Protocol
	ab, ba       *chanLink
	stopped      chan struct{}
	wg           sync.WaitGroup
	aAddr, bAddr netip.Addr
}

func newPair(t testing.TB, mtu int, opts Options) *pair { return newPairQ(t, mtu, opts, 4096) }

// newPairQ is newPair with receive queues of the given length (a tail-drop
// bottleneck when short).
func newPairQ(t testing.TB, mtu int, opts Options, queue int) *pair {
	p := &pair{stopped: make(chan struct{}), aAddr: netip.MustParseAddr("10.0.0.1"), bAddr: netip.MustParseAddr("10.0.0.2")}
	p.a = stack.New(stack.Config{Name: "a", Clock: stack.SystemClock{}})
	p.b = stack.New(stack.Config{Name: "b", Clock: stack.SystemClock{}})
	p.ab = &chanLink{ch: make(chan []byte, queue)}
	p.ba = &chanLink{ch: make(chan []byte, queue)}
	nicA, err := p.a.AddInterface("eth0", mtu, p.ab, netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64"))
	if err != nil {
		t.Fatal(err)
	}
	nicB, err := p.b.AddInterface("eth0", mtu, p.ba, netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64"))
	if err != nil {
		t.Fatal(err)
	}
	p.ta, p.tb = New(p.a, opts), New(p.b, opts)
	run := func(s *stack.Stack, nic *stack.NIC, ch chan []byte) {
		defer p.wg.Done()
		for {
			select {
			case pkt := <-ch:
				s.Deliver(nic, pkt)
			case <-p.stopped:
				return
			}
		}
	}
	p.wg.Add(2)
	go run(p.b, nicB, p.ab.ch)
	go run(p.a, nicA, p.ba.ch)
	t.Cleanup(p.stop)
	return p
}

func (p *pair) stop() {
	select {
	case <-p.stopped:
		return
	default:
	}
	p.ta.Close()
	p.tb.Close()
	close(p.stopped)
	p.wg.Wait()
}

func waitUntil(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// counts returns lost, reordered, duplicated and corrupted.
func (l *chanLink) counts() [4]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return [4]int{l.lost, l.reordered, l.duplicated, l.corrupted}
}
