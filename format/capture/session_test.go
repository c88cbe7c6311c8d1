package capture

import (
	"cmp"
	"context"
	"io"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/node/fabric"
	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/tcp"
	"github.com/labnet-dev/labnet/stack/vclock"
)

// lab is h1 - net1 - r1 - net2 - h2 on a fabric in virtual time. Packets
// wait in a queue until pump delivers them, so every run is the same: the
// same packets in the same order at the same virtual times.
type lab struct {
	t      *testing.T
	clk    *vclock.Clock
	fab    *fabric.Fabric
	mu     sync.Mutex
	queue  []queued
	stacks map[string]*stack.Stack
	nics   map[string]*stack.NIC // "host:iface"
	ports  map[string]*fabric.Port
	tcps   map[string]*tcp.Protocol

	capMu sync.Mutex
	caps  []Packet
}

type queued struct {
	to  string // "host:iface"
	pkt []byte
}

func newLab(t *testing.T) *lab {
	l := &lab{t: t, clk: vclock.New(), stacks: map[string]*stack.Stack{}, nics: map[string]*stack.NIC{},
		ports: map[string]*fabric.Port{}, tcps: map[string]*tcp.Protocol{}}
	l.fab = fabric.New(fabric.WithClock(l.clk), fabric.WithSeed(1))
	l.host("h1", false, "eth0", "net1", "10.0.1.10/24")
	l.host("r1", true, "eth0", "net1", "10.0.1.1/24", "eth1", "net2", "10.0.2.1/24")
	l.host("h2", false, "eth0", "net2", "10.0.2.10/24")
	must(t, l.stacks["h1"].AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.0.1.1")))
	must(t, l.stacks["h2"].AddRoute(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParseAddr("10.0.2.1")))
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// host adds a stack with interfaces given as name, network, address
// triples.
func (l *lab) host(name string, fwd bool, ifs ...string) {
	s := stack.New(stack.Config{Name: name, Clock: l.clk, Forwarding: fwd})
	l.stacks[name] = s
	for i := 0; i < len(ifs); i += 3 {
		id := name + ":" + ifs[i]
		pfx := netip.MustParsePrefix(ifs[i+2])
		port, err := l.fab.Attach(ifs[i+1], id, []netip.Addr{pfx.Addr()}, func(pkt []byte) {
			l.mu.Lock()
			l.queue = append(l.queue, queued{id, pkt})
			l.mu.Unlock()
		})
		must(l.t, err)
		nic, err := s.AddInterface(ifs[i], 1400, port, pfx)
		must(l.t, err)
		l.nics[id], l.ports[id] = nic, port
	}
	if !fwd {
		// No timestamps: their values derive from the real clock.
		l.tcps[name] = tcp.New(s, tcp.Options{ReceiveBuffer: 64 << 10, SendBuffer: 64 << 10, DisableTimestamps: true})
	}
}

// capture taps the named interfaces into l.caps.
func (l *lab) capture(ifaces ...string) {
	for _, id := range ifaces {
		_, err := l.nics[id].AddTap(nil, func(r stack.TapRecord) {
			l.capMu.Lock()
			defer l.capMu.Unlock()
			l.caps = append(l.caps, fromTap(id, r))
		})
		must(l.t, err)
	}
}

// fromTap makes a Packet of a tap record, as the daemon's runtime does
// (node/runtime/tap.go, which this package cannot import: it imports this
// one).
func fromTap(iface string, r stack.TapRecord) Packet {
	p := Packet{Time: r.Time, Seq: r.Seq, Iface: iface, Data: r.Packet, OrigLen: len(r.Packet), Note: r.Note}
	switch r.Dir {
	case stack.TapIn:
		p.Dir = In
	case stack.TapOut:
		p.Dir = Out
	}
	if r.Drop != stack.DropNone {
		p.Drop = r.Drop.String()
	}
	return p
}

// pump delivers queued packets until the network is quiet.
func (l *lab) pump() {
	for {
		l.mu.Lock()
		q := l.queue
		l.queue = nil
		l.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, p := range q {
			host, _, _ := cut(p.to)
			l.stacks[host].Deliver(l.nics[p.to], p.pkt)
		}
	}
}

func cut(id string) (string, string, bool) {
	for i := range id {
		if id[i] == ':' {
			return id[:i], id[i+1:], true
		}
	}
	return id, "", false
}

func (l *lab) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// advance lets d of virtual time pass, pumping at each 10ms step.
func (l *lab) advance(d time.Duration) {
	for ; d > 0; d -= 10 * time.Millisecond {
		l.pump()
		l.clk.Advance(10 * time.Millisecond)
	}
	l.pump()
}

// tcpSession is the session of the golden tests: h1 connects to h2:80
// through r1, sends three 1000-byte segments of which the second is lost
// to an impairment on h1's link, the loss is repaired by retransmission,
// and both sides close.
func tcpSession(t *testing.T, ifaces ...string) []Packet {
	l := newLab(t)
	l.capture(ifaces...)
	ln, err := l.tcps["h2"].Listen(netip.MustParseAddrPort("10.0.2.10:80"))
	must(t, err)
	var client, server *tcp.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.tcps["h1"].DialFrom(context.Background(), netip.MustParseAddrPort("10.0.1.10:40000"), netip.MustParseAddrPort("10.0.2.10:80"))
		if err != nil {
			t.Error(err)
			return
		}
		client = c
		if server, err = ln.AcceptTCP(); err != nil {
			t.Error(err)
		}
	}()
	// Wait (in real time) for the SYN, so that the handshake happens at the
	// same virtual instant in every run.
	for l.queued() == 0 {
		time.Sleep(100 * time.Microsecond)
	}
	l.pump()
	<-done
	if client == nil || server == nil {
		t.FailNow()
	}
	seg := make([]byte, 1000)
	must(t, client.SetNoDelay(true)) // each write is a segment at once
	write := func() {
		if _, err := client.Write(seg); err != nil {
			t.Fatal(err)
		}
	}
	write()
	l.pump()
	l.ports["h1:eth0"].SetImpair(&fabric.Impairment{Loss: 100})
	write()
	l.pump()
	l.ports["h1:eth0"].SetImpair(nil)
	write()
	l.advance(2 * time.Second) // RACK / TLP / RTO repair the loss
	got := make([]byte, 3000)
	if _, err := io.ReadFull(server, got); err != nil {
		t.Fatal(err)
	}
	must(t, client.Close())
	l.advance(100 * time.Millisecond)
	must(t, server.Close())
	l.advance(100 * time.Millisecond)
	l.capMu.Lock()
	defer l.capMu.Unlock()
	pkts := append([]Packet(nil), l.caps...)
	slices.SortStableFunc(pkts, func(a, b Packet) int { return cmp.Compare(a.Seq, b.Seq) })
	return pkts
}
