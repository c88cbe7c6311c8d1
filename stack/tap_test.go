package stack_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/labnet-dev/labnet/stack"
)

// tapLog collects an interface's tap records.
type tapLog struct {
	mu   sync.Mutex
	recs []stack.TapRecord
}

func (l *tapLog) tap(r stack.TapRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
}

func (l *tapLog) take() []stack.TapRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.recs
	l.recs = nil
	return r
}

// TestTapDrops: a router's taps see each packet as it arrived (TTL before
// the decrement) with why the stack dropped it, and each packet it sent.
func TestTapDrops(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		c := newChain(t, chainConfig{Routers: 1})
		r1 := c.router(1)
		var in, out tapLog
		removeIn, _ := r1.nics["eth0"].AddTap(nil, in.tap)
		removeOut, _ := r1.nics["eth1"].AddTap(nil, out.tap)

		cases := []struct {
			name string
			pkt  []byte
			want stack.Drop
			sent int // packets r1 sends through eth1
		}{
			{"forwarded", echoPacket(c.h1Addr(v6), c.h2Addr(v6), 9, 1, 1, nil), stack.DropNone, 1},
			{"ttl", echoPacket(c.h1Addr(v6), c.h2Addr(v6), 1, 1, 2, nil), stack.DropTTLExceeded, 0},
			{"no route", echoPacket(c.h1Addr(v6), addr(v6, 99, 1), 9, 1, 3, nil), stack.DropNoRoute, 0},
			{"malformed", []byte{0x45, 0, 0}, stack.DropMalformed, 0},
		}
		for _, tc := range cases {
			want := append([]byte(nil), tc.pkt...)
			r1.s.Deliver(r1.nics["eth0"], tc.pkt)
			got := inbound(in.take())
			if len(got) != 1 {
				t.Fatalf("%s %s: %d records on eth0, want 1", family(v6), tc.name, len(got))
			}
			if got[0].Dir != stack.TapIn || got[0].Drop != tc.want || string(got[0].Packet) != string(want) {
				t.Errorf("%s %s: record dir %v drop %q, packet as received %v; want in, %q", family(v6), tc.name, got[0].Dir, got[0].Drop, string(got[0].Packet) == string(want), tc.want)
			}
			if !got[0].Time.Equal(epoch) {
				t.Errorf("%s %s: time %v, want the stack clock's %v", family(v6), tc.name, got[0].Time, epoch)
			}
			if o := out.take(); len(o) != tc.sent {
				t.Errorf("%s %s: %d records on eth1, want %d", family(v6), tc.name, len(o), tc.sent)
			} else if tc.sent == 1 && (o[0].Dir != stack.TapOut || o[0].Drop != stack.DropNone) {
				t.Errorf("%s %s: eth1 record %+v", family(v6), tc.name, o[0])
			}
		}
		// No UDP transport is registered: the stack answers protocol
		// unreachable, and says so.
		r1.s.Deliver(r1.nics["eth0"], ipPacket(c.h1Addr(v6), c.nearAddr(1, v6), 9, 200, nil))
		if got := inbound(in.take()); len(got) != 1 || got[0].Drop != stack.DropUnknownProtocol {
			t.Errorf("%s unknown protocol: %+v", family(v6), got)
		}

		// A next hop nobody owns: the out record says so.
		owner := c.lans[1].owners[c.h2Addr(v6)]
		delete(c.lans[1].owners, c.h2Addr(v6))
		r1.s.Deliver(r1.nics["eth0"], echoPacket(c.h1Addr(v6), c.h2Addr(v6), 9, 1, 4, nil))
		c.lans[1].owners[c.h2Addr(v6)] = owner
		if o := out.take(); len(o) != 1 || o[0].Drop != stack.DropHostUnreachable {
			t.Errorf("%s next hop unreachable: %+v", family(v6), o)
		}
		in.take()

		r1.nics["eth0"].DropRx([]byte{1, 2, 3}, stack.DropQueueFull, epoch)
		if got := in.take(); len(got) != 1 || got[0].Drop != stack.DropQueueFull || string(got[0].Packet) != "\x01\x02\x03" {
			t.Errorf("%s DropRx: %+v", family(v6), got)
		}
		if n := r1.nics["eth0"].Counters().RxDropped; n != 1 {
			t.Errorf("%s DropRx counted %d", family(v6), n)
		}

		removeIn()
		removeIn()
		removeOut()
		if r1.nics["eth0"].Tapped() || r1.nics["eth1"].Tapped() {
			t.Fatalf("still tapped after remove")
		}
		r1.s.Deliver(r1.nics["eth0"], echoPacket(c.h1Addr(v6), c.h2Addr(v6), 9, 1, 5, nil))
		if len(in.take())+len(out.take()) != 0 {
			t.Errorf("%s: records after remove", family(v6))
		}
	}
}

// inbound keeps the received records (a router's answers leave through the
// same interface).
func inbound(recs []stack.TapRecord) []stack.TapRecord {
	var in []stack.TapRecord
	for _, r := range recs {
		if r.Dir == stack.TapIn {
			in = append(in, r)
		}
	}
	return in
}

// TestTapsIndependent: two taps on one interface each see every packet, and
// removing one leaves the other.
func TestTapsIndependent(t *testing.T) {
	c := newChain(t, chainConfig{Routers: 1})
	nic := c.h1.nics["eth0"]
	var a, b tapLog
	ra, _ := nic.AddTap(nil, a.tap)
	rb, _ := nic.AddTap(nil, b.tap)
	defer rb()
	// A tap that wants only what h1 sends (the reply) sees only that.
	var fromH1 tapLog
	rc, _ := nic.AddTap(func(pkt []byte) bool { return pkt[12] == 10 && pkt[15] == 10 }, fromH1.tap)
	defer rc()
	ping := func(seq uint16) {
		c.h1.s.Deliver(nic, echoPacket(c.router(1).nics["eth0"].Addresses()[0].Addr(), c.h1Addr(false), 9, 7, seq, nil))
	}
	ping(1) // h1 answers: one in, one out
	if len(a.take()) != 2 || len(b.take()) != 2 {
		t.Fatalf("taps did not both see the request and the reply")
	}
	if got := fromH1.take(); len(got) != 1 || got[0].Dir != stack.TapOut {
		t.Fatalf("the filtered tap saw %d records, want the reply only", len(got))
	}
	ra()
	ping(2)
	if len(a.take()) != 0 || len(b.take()) != 2 {
		t.Fatalf("removing one tap affected the other")
	}
}

// TestTapLimit: an interface takes at most 64 taps, then says so.
func TestTapLimit(t *testing.T) {
	c := newChain(t, chainConfig{Routers: 1})
	nic := c.h1.nics["eth0"]
	for i := range 64 {
		if _, err := nic.AddTap(nil, func(stack.TapRecord) {}); err != nil {
			t.Fatalf("tap %d: %v", i, err)
		}
	}
	if _, err := nic.AddTap(nil, func(stack.TapRecord) {}); !errors.Is(err, stack.ErrTooManyTaps) {
		t.Fatalf("tap 65: %v, want ErrTooManyTaps", err)
	}
}
