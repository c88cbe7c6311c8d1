package fabric

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/vclock"
)

// refusingRemote refuses every packet with err (nil: takes it).
type refusingRemote struct {
	err  error
	sent int
}

func (r *refusingRemote) SendRemote(peer netip.AddrPort, vni uint32, nextHop netip.Addr, pkt []byte) error {
	if r.err != nil {
		return r.err
	}
	r.sent++
	return nil
}

var (
	remoteHop  = netip.MustParseAddr("10.0.0.7")
	remotePeer = netip.MustParseAddrPort("127.0.0.2:6081")
)

// remotePort is a port whose network has remoteHop on another node, over
// r (none when r is nil).
func remotePort(t *testing.T, r Remote) *Port {
	t.Helper()
	f := New(WithClock(vclock.New()), WithSeed(1))
	if r != nil {
		f.SetRemote(r)
	}
	f.SetNetwork("n", 7, map[netip.Addr]netip.AddrPort{remoteHop: remotePeer})
	p, err := f.Attach("n", "a:eth0", []netip.Addr{addrA}, func([]byte) { t.Error("a received a packet") })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRemoteFates: a packet the overlay refuses is a drop with the
// overlay's reason, refused (it never left), and counted on the port; the
// plain and the impaired path say the same.
func TestRemoteFates(t *testing.T) {
	cases := []struct {
		name string
		err  error // the remote's; noRemote: no remote at all
		drop stack.Drop
		want func(ImpairCounters) uint64
	}{
		{"queue full", fmt.Errorf("overlay: to %v: %w", remotePeer, ErrRemoteQueueFull), stack.DropOverlayQueueFull,
			func(c ImpairCounters) uint64 { return c.OverlayQueueFull }},
		{"too big", ErrRemoteTooBig, stack.DropOverlayTooBig,
			func(c ImpairCounters) uint64 { return c.OverlayTooBig }},
		{"down", ErrRemoteDown, stack.DropOverlayDown,
			func(c ImpairCounters) uint64 { return c.OverlayDown }},
		{"no route", ErrRemoteNoRoute, stack.DropNoNodeRoute,
			func(c ImpairCounters) uint64 { return c.NoRouteToNode }},
		{"unnamed error", errors.New("VNI too large"), stack.DropNoNodeRoute,
			func(c ImpairCounters) uint64 { return c.NoRouteToNode }},
		{"no remote", errNoRemote, stack.DropNoNodeRoute,
			func(c ImpairCounters) uint64 { return c.NoRouteToNode }},
	}
	for _, tc := range cases {
		for _, im := range []*Impairment{nil, {Corrupt: 100}} {
			t.Run(fmt.Sprintf("%s/impaired=%v", tc.name, im != nil), func(t *testing.T) {
				var r Remote = &refusingRemote{err: tc.err}
				if tc.err == errNoRemote {
					r = nil
				}
				p := remotePort(t, r)
				p.SetImpair(im)
				fate, err := p.SendFate(remoteHop, make([]byte, 40))
				if err != nil || fate.Drop != tc.drop || !fate.Drop.Refused() {
					t.Fatalf("fate %+v, %v; want refused with %q", fate, err, tc.drop)
				}
				if err := p.Send(remoteHop, make([]byte, 40)); err != nil {
					t.Errorf("Send: %v, want nil (a refusal is a fate, not an error)", err)
				}
				if got := tc.want(p.ImpairCounters()); got != 2 {
					t.Errorf("counted %d, want 2: %+v", got, p.ImpairCounters())
				}
			})
		}
	}
}

var errNoRemote = errors.New("no remote")

// TestRemoteFateAccepted: a packet the overlay takes is no drop and is
// not counted as refused.
func TestRemoteFateAccepted(t *testing.T) {
	r := &refusingRemote{}
	p := remotePort(t, r)
	fate, err := p.SendFate(remoteHop, make([]byte, 40))
	if err != nil || fate != (stack.LinkFate{}) || r.sent != 1 {
		t.Fatalf("fate %+v, %v, remote took %d", fate, err, r.sent)
	}
	if c := p.ImpairCounters(); c != (ImpairCounters{}) {
		t.Errorf("counters %+v, want none", c)
	}
}

// TestRemoteFateDuplicate: with duplication, a packet whose copy the
// overlay took was not lost; refused both times, it was.
func TestRemoteFateDuplicate(t *testing.T) {
	p := remotePort(t, &flakyRemote{})
	p.SetImpair(&Impairment{Duplicate: 100})
	fate, _ := p.SendFate(remoteHop, make([]byte, 40))
	if fate.Drop != stack.DropNone || fate.Note != "duplicated, original overlay queue full" {
		t.Errorf("copy taken: fate %+v", fate)
	}
	p = remotePort(t, &refusingRemote{err: ErrRemoteQueueFull})
	p.SetImpair(&Impairment{Duplicate: 100})
	if fate, _ := p.SendFate(remoteHop, make([]byte, 40)); fate.Drop != stack.DropOverlayQueueFull {
		t.Errorf("both refused: fate %+v", fate)
	}
}

// flakyRemote refuses every other packet, starting with the first.
type flakyRemote struct{ n int }

func (r *flakyRemote) SendRemote(netip.AddrPort, uint32, netip.Addr, []byte) error {
	r.n++
	if r.n%2 == 1 {
		return ErrRemoteQueueFull
	}
	return nil
}

// TestRemoteRefusalLate: a packet the impairments held and the overlay
// refuses when it is released cannot change the fate its sender saw; the
// segment counts it.
func TestRemoteRefusalLate(t *testing.T) {
	clock := vclock.New()
	f := New(WithClock(clock), WithSeed(1))
	f.SetRemote(&refusingRemote{err: ErrRemoteQueueFull})
	f.SetNetwork("n", 7, map[netip.Addr]netip.AddrPort{remoteHop: remotePeer})
	p, err := f.Attach("n", "a:eth0", []netip.Addr{addrA}, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	p.SetImpair(&Impairment{Delay: time.Millisecond})
	if fate, _ := p.SendFate(remoteHop, make([]byte, 40)); fate.Drop != stack.DropNone || fate.Note != "delayed 1ms" {
		t.Fatalf("fate %+v", fate)
	}
	clock.Advance(time.Millisecond)
	if n := p.seg.remoteRefused.Load(); n != 1 {
		t.Errorf("segment counted %d refusals, want 1", n)
	}
}

// TestRemoteRefusalAtNIC: the interface counts a refused packet as a
// transmit drop, not as sent, and its taps see the drop with its reason,
// tapped or not.
func TestRemoteRefusalAtNIC(t *testing.T) {
	r := &flakyRemote{}
	p := remotePort(t, r)
	s := stack.New(stack.Config{Name: "a", Clock: vclock.New()})
	nic, err := s.AddInterface("eth0", 1500, p, netip.MustParsePrefix("10.0.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	send := func() {
		if _, err := s.SendIP(netip.Addr{}, remoteHop, 253, 0, make([]byte, 20)); err != nil {
			t.Fatalf("SendIP: %v (a refusal is no error to the sender)", err)
		}
	}
	send() // refused
	send() // taken
	if c := nic.Counters(); c.TxDropped != 1 || c.TxPackets != 1 || c.TxBytes != 40 {
		t.Errorf("untapped: counters %+v, want 1 dropped and 1 sent", c)
	}
	var mu sync.Mutex
	var recs []stack.TapRecord
	remove, err := nic.AddTap(nil, func(rec stack.TapRecord) {
		mu.Lock()
		defer mu.Unlock()
		recs = append(recs, rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	send() // refused
	send() // taken
	if c := nic.Counters(); c.TxDropped != 2 || c.TxPackets != 2 {
		t.Errorf("tapped: counters %+v, want 2 dropped and 2 sent", c)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(recs) != 2 || recs[0].Drop != stack.DropOverlayQueueFull || recs[1].Drop != stack.DropNone {
		t.Errorf("tapped records: %+v", recs)
	}
	if got := recs[0].Drop.String(); got != "overlay queue full" {
		t.Errorf("the reason reads %q", got)
	}
}
