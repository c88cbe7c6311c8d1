package overlay

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/stack/wire"
)

// heldWriter holds every write until release is closed, and says when the
// first one has begun.
type heldWriter struct {
	batchConn
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (h *heldWriter) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	h.once.Do(func() { close(h.entered) })
	<-h.release
	return h.batchConn.WriteBatch(ms, flags)
}

// ipPacket is an IPv4 packet of size bytes.
func ipPacket(size int) []byte {
	h := wire.IPv4Header{TTL: 64, Protocol: wire.ProtoUDP, Src: netip.MustParseAddr("10.0.0.1"), Dst: testNextHop}
	return h.Marshal(make([]byte, size-wire.IPv4MinHeaderLen))
}

// syncBuffer is a log sink safe for the flush goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestLinkRefusals: what SendRemote cannot queue it refuses at once with
// the fabric's reason and counts; a send the kernel fails later is counted
// and logged; nothing is dropped unseen.
func TestLinkRefusals(t *testing.T) {
	c := listen(t, Options{})
	peer := listen(t, Options{}).LocalAddr()
	hw := &heldWriter{batchConn: c.pc, entered: make(chan struct{}), release: make(chan struct{})}
	c.pc = hw
	var logs syncBuffer
	l := NewLink(c, func(uint32, netip.Addr, []byte) bool { return true },
		WithQueueLimit(2), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	defer l.stop()
	send := func(to netip.AddrPort, vni uint32, size int) error {
		return l.SendRemote(to, vni, testNextHop, ipPacket(size))
	}

	// The flush takes the first packet and is held in the kernel; the
	// queue then fills with two, and the fourth is refused.
	if err := send(peer, testVNI, 100); err != nil {
		t.Fatal(err)
	}
	<-hw.entered
	for i := range 2 {
		if err := send(peer, testVNI, 100); err != nil {
			t.Fatalf("packet %d: %v", i+2, err)
		}
	}
	if err := send(peer, testVNI, 100); !errors.Is(err, fabric.ErrRemoteQueueFull) {
		t.Errorf("over the queue limit: %v, want %v", err, fabric.ErrRemoteQueueFull)
	}
	if err := send(peer, testVNI, MaxDatagramIPv4); !errors.Is(err, fabric.ErrRemoteTooBig) {
		t.Errorf("too big: %v, want %v", err, fabric.ErrRemoteTooBig)
	}
	for _, to := range []netip.AddrPort{{}, netip.MustParseAddrPort("[::1]:6081")} {
		if err := send(to, testVNI, 100); !errors.Is(err, fabric.ErrRemoteNoRoute) {
			t.Errorf("to %v: %v, want %v", to, err, fabric.ErrRemoteNoRoute)
		}
	}
	if err := send(peer, MaxVNI+1, 100); !errors.Is(err, fabric.ErrRemoteNoRoute) {
		t.Errorf("VNI beyond 24 bits: %v, want %v", err, fabric.ErrRemoteNoRoute)
	}
	close(hw.release)
	waitFor(t, "the queued packets to go", func() bool { return c.Counters().PacketsSent == 3 })

	// Port 0 is no destination: the kernel refuses the send (EINVAL),
	// after SendRemote has queued it.
	if err := send(netip.AddrPortFrom(loopback4, 0), testVNI, 100); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed send to be counted", func() bool { return c.Counters().TxSendFailed == 1 })
	if got := logs.String(); !strings.Contains(got, "sending failed") || !strings.Contains(got, "dropped=1") {
		t.Errorf("log: %q", got)
	}

	l.stop()
	if err := send(peer, testVNI, 100); !errors.Is(err, fabric.ErrRemoteDown) {
		t.Errorf("after stop: %v, want %v", err, fabric.ErrRemoteDown)
	}
	if err := send(netip.MustParseAddrPort("127.0.0.1:9"), testVNI, 100); !errors.Is(err, fabric.ErrRemoteDown) {
		t.Errorf("to a new peer after stop: %v, want %v", err, fabric.ErrRemoteDown)
	}
	want := Counters{TxQueueFull: 1, TxTooBig: 1, TxNoRoute: 3, TxSendFailed: 1, TxDown: 2}
	got := c.Counters()
	got.PacketsSent, got.BytesSent, got.SendCalls = 0, 0, 0
	if got != want {
		t.Errorf("counters %+v, want %+v", got, want)
	}
	if l.QueueDrops() != 1 {
		t.Errorf("QueueDrops %d, want 1", l.QueueDrops())
	}
}

// TestFailureLogRate: failed sends are logged at most once per
// failureLogEvery, each line with what failed since the last.
func TestFailureLogRate(t *testing.T) {
	var logs syncBuffer
	f := failureLog{log: slog.New(slog.NewTextHandler(&logs, nil))}
	t0 := time.Unix(1000, 0)
	peer := netip.MustParseAddrPort("127.0.0.2:6081")
	err := errors.New("boom")
	f.note(t0, peer, 3, err)
	f.note(t0.Add(time.Second), peer, 4, err)
	f.note(t0.Add(2*time.Second), peer, 5, err)
	f.note(t0.Add(failureLogEvery), peer, 1, err)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "dropped=3") || !strings.Contains(lines[1], "dropped=10") {
		t.Errorf("log lines:\n%s", logs.String())
	}
}

// TestLinkUndelivered: an arrival no interface takes is counted.
func TestLinkUndelivered(t *testing.T) {
	snd, rcv := listen(t, Options{}), listen(t, Options{})
	l := NewLink(rcv, func(uint32, netip.Addr, []byte) bool { return false })
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	pkt, err := AppendPacket(nil, testVNI, testNextHop, ipPacket(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.WriteBatch(rcv.LocalAddr(), [][]byte{pkt}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the arrival to be counted", func() bool { return rcv.Counters().Undelivered == 1 })
}
