package services

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// loopNet is a Net on the kernel's loopback: each listen binds an ephemeral
// port of 127.0.0.1 and records which port the service asked for.
type loopNet struct {
	mu   sync.Mutex
	tcp  map[uint16]string // asked-for port -> the address really bound
	udp  map[uint16]string
	fail map[string]error // "udp/13": make that listen fail
}

func newLoopNet() *loopNet {
	return &loopNet{tcp: map[uint16]string{}, udp: map[uint16]string{}, fail: map[string]error{}}
}

func (n *loopNet) ListenTCP(port uint16) (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.fail[fmt.Sprintf("tcp/%d", port)]; err != nil {
		return nil, err
	}
	if _, dup := n.tcp[port]; dup {
		return nil, fmt.Errorf("tcp port %d: address already in use", port)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n.tcp[port] = l.Addr().String()
	return l, nil
}

func (n *loopNet) ListenUDP(port uint16) (net.PacketConn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.fail[fmt.Sprintf("udp/%d", port)]; err != nil {
		return nil, err
	}
	if _, dup := n.udp[port]; dup {
		return nil, fmt.Errorf("udp port %d: address already in use", port)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n.udp[port] = pc.LocalAddr().String()
	return pc, nil
}

func (n *loopNet) ports() (tcp, udp []uint16) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for p := range n.tcp {
		tcp = append(tcp, p)
	}
	for p := range n.udp {
		udp = append(udp, p)
	}
	slices.Sort(tcp)
	slices.Sort(udp)
	return tcp, udp
}

// addr is where the service that asked for port really listens.
func (n *loopNet) addr(t testing.TB, proto string, port uint16) string {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.tcp
	if proto == "udp" {
		m = n.udp
	}
	a, ok := m[port]
	if !ok {
		t.Fatalf("nothing listens on %s port %d", proto, port)
	}
	return a
}

// fixedTime is the clock of the tests' daytime.
var fixedTime = time.Date(2024, time.February, 29, 13, 37, 42, 0, time.UTC)

var testHost = HostInfo{
	Name: "h1",
	Lab:  "demo",
	Node: "node-a",
	Interfaces: []InterfaceInfo{
		{Name: "eth0", Network: "lan1", Addresses: []netip.Prefix{
			netip.MustParsePrefix("10.0.1.2/24"), netip.MustParsePrefix("fd00:1::2/64"),
		}},
		{Name: "eth1", Network: "wan", Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.7/29")}},
	},
}

// testLogger writes debug records to the test log with -v; otherwise it
// discards them (but still formats them, to exercise the logging calls).
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(discardWriter{}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// startServices starts names on a fresh loopNet and closes them at the end
// of the test.
func startServices(t testing.TB, names ...string) (*Set, *loopNet) {
	t.Helper()
	n := newLoopNet()
	s, err := Start(context.Background(), n, testHost, names, testLogger(t), WithClock(func() time.Time { return fixedTime }))
	if err != nil {
		t.Fatalf("Start(%q): %v", names, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, n
}

func dialTCP(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

func dialUDP(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// waitGoroutines waits a little for the number of goroutines to come back
// to want; a client's own goroutines may take a moment to notice a close.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	var got int
	for range 200 {
		if got = runtime.NumGoroutine(); got <= want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	t.Fatalf("%d goroutines, want %d; left:\n%s", got, want, buf)
}

// ourGoroutines lists the stacks of goroutines that run the package's
// serving code (not the tests').
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var ours []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "labnet/node/services.(*Set)") || strings.Contains(g, "net/http.(*conn).serve") {
			ours = append(ours, g)
		}
	}
	return ours
}
