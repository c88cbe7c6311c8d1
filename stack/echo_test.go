package stack_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// TestPing pings h2 from h1 across one and several routers and checks the
// reply event and every packet on the way.
func TestPing(t *testing.T) {
	for _, routers := range []int{1, 2, 3} {
		for _, v6 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%d_routers", family(v6), routers), func(t *testing.T) {
				c := newChain(t, chainConfig{Routers: routers})
				ep := openEcho(t, c.h1, v6)
				data := payload(56)
				c.clock.Advance(1500 * time.Millisecond) // events carry the clock
				src, err := ep.Send(c.h2Addr(v6), 7, 0, data)
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if src != c.h1Addr(v6) {
					t.Errorf("source %v, want %v", src, c.h1Addr(v6))
				}
				c.run()

				replyType := uint8(wire.ICMPv4EchoReply)
				if v6 {
					replyType = wire.ICMPv6EchoReply
				}
				want := []stack.EchoEvent{{
					Reply: true, From: c.h2Addr(v6), Seq: 7, TTL: uint8(64 - routers),
					Len: wire.ICMPHeaderLen + len(data), Type: replyType, At: c.clock.Now(),
				}}
				if diff := cmp.Diff(want, drain(ep), cmpOpts...); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}

				// 2 packets per network crossed: the request out, the reply
				// back, each hop one Send.
				if got, want := len(c.log), 2*(routers+1); got != want {
					t.Errorf("%d packets sent, want %d", got, want)
				}
				for i, s := range c.log {
					m := checkPacket(t, s.pkt)
					h := header(s.pkt)
					if m == nil || h.Proto != icmpProto(v6) {
						t.Fatalf("packet %d is not ICMP: %+v", i, h)
					}
					if s.to == nil {
						t.Errorf("packet %d sent to %v, which nobody owns", i, s.nextHop)
					}
					if h.Len != ipHeaderLen(v6)+wire.ICMPHeaderLen+len(data) {
						t.Errorf("packet %d is %d bytes", i, h.Len)
					}
					if m.Ident() != ep.Ident() || m.Seq() != 7 || !bytes.Equal(m.Body(), data) {
						t.Errorf("packet %d: ident %d seq %d data %q", i, m.Ident(), m.Seq(), m.Body())
					}
					// The request crosses networks 1..N+1 with TTL 64, 63,
					// ...; the reply the other way.
					hopNo := i
					wantSrc, wantDst := c.h1Addr(v6), c.h2Addr(v6)
					if i > routers {
						hopNo = i - routers - 1
						wantSrc, wantDst = wantDst, wantSrc
					}
					if h.Src != wantSrc || h.Dst != wantDst || h.TTL != uint8(64-hopNo) {
						t.Errorf("packet %d: %v -> %v TTL %d, want %v -> %v TTL %d", i, h.Src, h.Dst, h.TTL, wantSrc, wantDst, 64-hopNo)
					}
				}
				// The reply h1 received, as it arrived.
				in := c.sentTo("h1")
				if len(in) != 1 {
					t.Fatalf("h1 received %d packets", len(in))
				}
				m := wire.ICMP(in[0].pkt[ipHeaderLen(v6):])
				if m.Type() != replyType || m.Code() != 0 {
					t.Errorf("reply type %d code %d", m.Type(), m.Code())
				}

				st := c.h2.s.Stats()
				if st.Delivered != 1 || st.Malformed != 0 {
					t.Errorf("h2 stats %+v", st)
				}
				for i, r := range c.routers {
					if st := r.s.Stats(); st.Forwarded != 2 || st.Delivered != 0 || st.ICMPSent != 0 {
						t.Errorf("r%d stats %+v", i+1, st)
					}
				}
			})
		}
	}
}

// TestPingSequence sends several echoes and checks each comes back in order
// with its own sequence number.
func TestPingSequence(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 2})
			ep := openEcho(t, c.h1, v6)
			var want []uint16
			for seq := uint16(0); seq < 5; seq++ {
				if _, err := ep.Send(c.h2Addr(v6), seq, 0, payload(int(seq))); err != nil {
					t.Fatal(err)
				}
				want = append(want, seq)
			}
			c.run()
			var got []uint16
			for _, ev := range drain(ep) {
				if !ev.Reply || ev.Len != wire.ICMPHeaderLen+int(ev.Seq) {
					t.Errorf("event %+v", ev)
				}
				got = append(got, ev.Seq)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("sequence numbers (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPingRouter pings the routers' own addresses, near and far side, from
// h1: the router answers itself, from the address pinged.
func TestPingRouter(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		c := newChain(t, chainConfig{Routers: 2})
		for _, tc := range []struct {
			name   string
			dst    netip.Addr
			ttl    uint8 // sent with
			hops   int   // routers the reply crosses
			router int
		}{
			{"r1 near", c.nearAddr(1, v6), 0, 0, 1},
			{"r1 far", c.farAddr(1, v6), 0, 0, 1},
			// A router delivers a packet for itself whatever its TTL.
			{"r1 far TTL 1", c.farAddr(1, v6), 1, 0, 1},
			{"r2 near", c.nearAddr(2, v6), 0, 1, 2},
			{"r2 far", c.farAddr(2, v6), 0, 1, 2},
		} {
			t.Run(family(v6)+"/"+tc.name, func(t *testing.T) {
				ep := openEcho(t, c.h1, v6)
				if _, err := ep.Send(tc.dst, 1, tc.ttl, []byte("x")); err != nil {
					t.Fatal(err)
				}
				c.run()
				evs := drain(ep)
				if len(evs) != 1 {
					t.Fatalf("events %+v, want one reply", evs)
				}
				if ev := evs[0]; !ev.Reply || ev.From != tc.dst || ev.TTL != uint8(64-tc.hops) {
					t.Errorf("event %+v, want a reply from %v with TTL %d", ev, tc.dst, 64-tc.hops)
				}
			})
		}
	}
}

// TestPingSelf: a host pings its own address; the request and reply loop
// back inside the stack and nothing reaches the network.
func TestPingSelf(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			ep := openEcho(t, c.h1, v6)
			self := c.h1Addr(v6)
			src, err := ep.Send(self, 3, 0, []byte("loop"))
			if err != nil {
				t.Fatal(err)
			}
			if src != self {
				t.Errorf("source %v, want %v", src, self)
			}
			replyType := uint8(wire.ICMPv4EchoReply)
			if v6 {
				replyType = wire.ICMPv6EchoReply
			}
			// No run(): the loopback is synchronous.
			want := []stack.EchoEvent{{Reply: true, From: self, Seq: 3, TTL: 64, Len: 12, Type: replyType, At: epoch}}
			if diff := cmp.Diff(want, drain(ep), cmpOpts...); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if len(c.log) != 0 || len(c.queue) != 0 {
				t.Errorf("%d packets reached the network", len(c.log))
			}
			// Request and reply both delivered locally.
			if st := c.h1.s.Stats(); st.Delivered != 2 {
				t.Errorf("stats %+v, want Delivered 2", st)
			}
			if ctr := c.h1.nics["eth0"].Counters(); ctr != (stack.Counters{}) {
				t.Errorf("loopback counted on eth0: %+v", ctr)
			}
		})
	}
}

// TestPingSelfOtherInterface: a router pings its own address on another
// interface; the reply comes from that address.
func TestPingSelfOtherInterface(t *testing.T) {
	c := newChain(t, chainConfig{Routers: 1})
	r1 := c.router(1)
	for _, v6 := range []bool{false, true} {
		ep := openEcho(t, r1, v6)
		if _, err := ep.Send(c.farAddr(1, v6), 1, 0, nil); err != nil {
			t.Fatal(err)
		}
		evs := drain(ep)
		if len(evs) != 1 || !evs[0].Reply || evs[0].From != c.farAddr(1, v6) {
			t.Errorf("%s: events %+v", family(v6), evs)
		}
	}
	if len(c.log) != 0 {
		t.Errorf("%d packets reached the network", len(c.log))
	}
}

// TestPingTooLong: data that would overflow the IP length field is refused,
// even to the host's own address, where no interface MTU applies.
func TestPingTooLong(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			ep := openEcho(t, c.h1, v6)
			// The largest ping that fits: 65535 total length for IPv4,
			// 65535 payload length for IPv6.
			max := 65535 - wire.ICMPHeaderLen
			if !v6 {
				max -= wire.IPv4MinHeaderLen
			}
			if _, err := ep.Send(c.h1Addr(v6), 1, 0, payload(max)); err != nil {
				t.Fatalf("Send of %d bytes to self: %v", max, err)
			}
			if evs := drain(ep); len(evs) != 1 || !evs[0].Reply || evs[0].Len != max+wire.ICMPHeaderLen {
				t.Errorf("events %+v, want one reply of %d bytes", evs, max+wire.ICMPHeaderLen)
			}
			if _, err := ep.Send(c.h1Addr(v6), 2, 0, payload(max+1)); !errors.Is(err, stack.ErrMessageTooLong) {
				t.Errorf("Send of %d bytes to self = %v, want ErrMessageTooLong", max+1, err)
			}
			if evs := drain(ep); len(evs) != 0 {
				t.Errorf("events %+v after an oversized send", evs)
			}
			if st := c.h1.s.Stats(); st.Malformed != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestEchoEndpoint(t *testing.T) {
	c := newChain(t, chainConfig{Routers: 1})

	t.Run("idents are distinct and nonzero", func(t *testing.T) {
		seen := map[uint16]bool{}
		for range 10 {
			for _, v6 := range []bool{false, true} {
				ep := openEcho(t, c.h1, v6)
				if ep.Ident() == 0 {
					t.Error("ident 0")
				}
				if !v6 && seen[ep.Ident()] {
					t.Errorf("ident %d reused", ep.Ident())
				}
				if !v6 {
					seen[ep.Ident()] = true
				}
			}
		}
	})

	t.Run("family mismatch", func(t *testing.T) {
		ep4, ep6 := openEcho(t, c.h1, false), openEcho(t, c.h1, true)
		if _, err := ep4.Send(c.h2Addr(true), 1, 0, nil); err == nil {
			t.Error("IPv4 endpoint sent to an IPv6 address")
		}
		if _, err := ep6.Send(c.h2Addr(false), 1, 0, nil); err == nil {
			t.Error("IPv6 endpoint sent to an IPv4 address")
		}
		mapped := netip.AddrFrom16(c.h2Addr(false).As16())
		if _, err := ep6.Send(mapped, 1, 0, nil); err == nil {
			t.Errorf("IPv6 endpoint sent to %v", mapped)
		}
		if len(c.log) != 0 {
			t.Errorf("%d packets sent", len(c.log))
		}
	})

	t.Run("close", func(t *testing.T) {
		ep, err := c.h1.s.OpenEcho(false)
		if err != nil {
			t.Fatal(err)
		}
		before := c.h1.s.Stats().Delivered
		if _, err := ep.Send(c.h2Addr(false), 1, 0, nil); err != nil {
			t.Fatal(err)
		}
		ep.Close()
		ep.Close() // idempotent
		if _, ok := <-ep.Events(); ok {
			t.Error("Events not closed")
		}
		if _, err := ep.Send(c.h2Addr(false), 2, 0, nil); !errors.Is(err, stack.ErrClosed) {
			t.Errorf("Send after Close = %v, want ErrClosed", err)
		}
		// The reply to the request sent before Close finds no endpoint.
		c.run()
		if got := c.h1.s.Stats().Delivered - before; got != 1 {
			t.Errorf("%d packets delivered to h1, want the 1 reply", got)
		}
	})

	t.Run("replies go to their own endpoint", func(t *testing.T) {
		a, b := openEcho(t, c.h1, false), openEcho(t, c.h1, false)
		if _, err := a.Send(c.h2Addr(false), 1, 0, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Send(c.h2Addr(false), 2, 0, nil); err != nil {
			t.Fatal(err)
		}
		c.run()
		ea, eb := drain(a), drain(b)
		if len(ea) != 1 || ea[0].Seq != 1 || len(eb) != 1 || eb[0].Seq != 2 {
			t.Errorf("a got %+v, b got %+v", ea, eb)
		}
	})

	t.Run("a full queue drops, never blocks", func(t *testing.T) {
		ep := openEcho(t, c.h1, false)
		for i := range 300 {
			if _, err := ep.Send(c.h1Addr(false), uint16(i), 0, nil); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(drain(ep)); n == 0 || n >= 300 {
			t.Errorf("%d events queued", n)
		}
	})
}

// TestDefaultTTL: Config.DefaultTTL sets the TTL / hop limit of what a stack
// originates, echo replies included.
func TestDefaultTTL(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		c := newChain(t, chainConfig{Routers: 1, Host: stack.Config{DefaultTTL: 100}})
		ep := openEcho(t, c.h1, v6)
		if _, err := ep.Send(c.h2Addr(v6), 1, 0, nil); err != nil {
			t.Fatal(err)
		}
		c.run()
		if h := header(c.sentBy("h1")[0].pkt); h.TTL != 100 {
			t.Errorf("%s: sent with TTL %d", family(v6), h.TTL)
		}
		if evs := drain(ep); len(evs) != 1 || evs[0].TTL != 99 {
			t.Errorf("%s: events %+v, want a reply with TTL 99", family(v6), evs)
		}
	}
}
