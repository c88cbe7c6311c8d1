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

// ICMP type and code pairs by family, for tables that run on both.
type icmpKind struct{ v4Type, v4Code, v6Type, v6Code uint8 }

func (k icmpKind) typeCode(v6 bool) (uint8, uint8) {
	if v6 {
		return k.v6Type, k.v6Code
	}
	return k.v4Type, k.v4Code
}

var (
	timeExceeded   = icmpKind{wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded, wire.ICMPv6TimeExceeded, wire.ICMPv6HopLimitExceed}
	netUnreach     = icmpKind{wire.ICMPv4DestUnreach, wire.ICMPv4NetUnreach, wire.ICMPv6DestUnreach, wire.ICMPv6NoRoute}
	hostUnreach    = icmpKind{wire.ICMPv4DestUnreach, wire.ICMPv4HostUnreach, wire.ICMPv6DestUnreach, wire.ICMPv6AddrUnreach}
	tooBig         = icmpKind{wire.ICMPv4DestUnreach, wire.ICMPv4FragNeeded, wire.ICMPv6PacketTooBig, 0}
	unknownProto   = icmpKind{wire.ICMPv4DestUnreach, wire.ICMPv4ProtoUnreach, wire.ICMPv6ParamProblem, wire.ICMPv6UnrecognizedNH}
	echoReplyKinds = icmpKind{wire.ICMPv4EchoReply, 0, wire.ICMPv6EchoReply, 0}
)

// checkICMPError checks that pkt is a valid ICMP error of kind from src to
// dst that quotes orig (as much of it as fits: RFC 1812 §4.3.2.3 576 bytes
// in all for IPv4, RFC 4443 §2.4(c) 1280 for IPv6).
func checkICMPError(t *testing.T, pkt []byte, kind icmpKind, src, dst netip.Addr, orig []byte) wire.ICMP {
	t.Helper()
	v6 := src.Is6()
	m := checkPacket(t, pkt)
	if m == nil {
		t.Fatalf("not ICMP: %+v", header(pkt))
	}
	h := header(pkt)
	typ, code := kind.typeCode(v6)
	if h.Src != src || h.Dst != dst || m.Type() != typ || m.Code() != code {
		t.Errorf("got %v -> %v type %d code %d, want %v -> %v type %d code %d",
			h.Src, h.Dst, m.Type(), m.Code(), src, dst, typ, code)
	}
	limit := 576
	if v6 {
		limit = 1280
	}
	wantQuote := orig[:min(len(orig), limit-ipHeaderLen(v6)-wire.ICMPHeaderLen)]
	if !bytes.Equal(m.Body(), wantQuote) {
		t.Errorf("quoted %d bytes % x...\nwant %d bytes % x...", len(m.Body()), m.Body()[:min(48, len(m.Body()))], len(wantQuote), wantQuote[:min(48, len(wantQuote))])
	}
	if len(pkt) > limit {
		t.Errorf("ICMP error of %d bytes, more than %d", len(pkt), limit)
	}
	return m
}

// lastTo returns the last packet delivered to node name, or fails.
func lastTo(t *testing.T, n *network, name string) []byte {
	t.Helper()
	in := n.sentTo(name)
	if len(in) == 0 {
		t.Fatalf("nothing reached %s", name)
	}
	return in[len(in)-1].pkt
}

// TestTimeExceeded: TTL / hop limit 1 toward h2 expires at r1, which answers
// from its address facing h1.
func TestTimeExceeded(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			ep := openEcho(t, c.h1, v6)
			data := payload(56)
			if _, err := ep.Send(c.h2Addr(v6), 9, 1, data); err != nil {
				t.Fatal(err)
			}
			c.run()
			req := c.sentBy("h1")[0].pkt
			if h := header(req); h.TTL != 1 {
				t.Fatalf("request sent with TTL %d", h.TTL)
			}
			typ, code := timeExceeded.typeCode(v6)
			qlen := ipHeaderLen(v6) + wire.ICMPHeaderLen + len(data)
			want := []stack.EchoEvent{{
				From: c.nearAddr(1, v6), Seq: 9, TTL: 64, Len: wire.ICMPHeaderLen + qlen,
				Type: typ, Code: code, At: epoch,
			}}
			if diff := cmp.Diff(want, drain(ep), cmpOpts...); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			checkICMPError(t, lastTo(t, c.network, "h1"), timeExceeded, c.nearAddr(1, v6), c.h1Addr(v6), req)
			if got := c.sentTo("h2"); len(got) != 0 {
				t.Errorf("h2 received %d packets", len(got))
			}
			st := c.router(1).s.Stats()
			if st.TTLExceeded != 1 || st.ICMPSent != 1 || st.Forwarded != 0 {
				t.Errorf("r1 stats %+v", st)
			}
		})
	}
}

// TestTTLTwoCrossesOneRouter: the router decrements 2 to 1 and forwards; the
// host at the end accepts TTL 1.
func TestTTLTwoCrossesOneRouter(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		c := newChain(t, chainConfig{Routers: 1})
		ep := openEcho(t, c.h1, v6)
		if _, err := ep.Send(c.h2Addr(v6), 1, 2, nil); err != nil {
			t.Fatal(err)
		}
		c.run()
		if h := header(c.sentTo("h2")[0].pkt); h.TTL != 1 {
			t.Errorf("%s: h2 got TTL %d", family(v6), h.TTL)
		}
		if evs := drain(ep); len(evs) != 1 || !evs[0].Reply {
			t.Errorf("%s: events %+v", family(v6), evs)
		}
	}
}

// TestTraceroute sends TTL 1, 2, ... through three routers: each router in
// turn answers from its address facing the prober, then h2 replies.
func TestTraceroute(t *testing.T) {
	const routers = 3
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: routers})
			ep := openEcho(t, c.h1, v6)
			teType, teCode := timeExceeded.typeCode(v6)
			rType, _ := echoReplyKinds.typeCode(v6)
			var got, want []string
			for ttl := 1; ttl <= routers+2; ttl++ {
				c.clock.Advance(time.Second)
				if _, err := ep.Send(c.h2Addr(v6), uint16(ttl), uint8(ttl), []byte("probe")); err != nil {
					t.Fatal(err)
				}
				c.run()
				for _, ev := range drain(ep) {
					got = append(got, fmt.Sprintf("seq %d: %v type %d code %d ttl %d reply %v", ev.Seq, ev.From, ev.Type, ev.Code, ev.TTL, ev.Reply))
				}
				if ttl <= routers {
					// The error from router ttl crosses ttl-1 routers back.
					want = append(want, fmt.Sprintf("seq %d: %v type %d code %d ttl %d reply false", ttl, c.nearAddr(ttl, v6), teType, teCode, 64-(ttl-1)))
				} else {
					want = append(want, fmt.Sprintf("seq %d: %v type %d code 0 ttl %d reply true", ttl, c.h2Addr(v6), rType, 64-routers))
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("hops (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDestUnreachable covers the router's unreachable errors.
func TestDestUnreachable(t *testing.T) {
	tests := []struct {
		name    string
		routers int
		setup   func(t *testing.T, c *chain)
		dst     func(c *chain, v6 bool) netip.Addr
		kind    icmpKind
		from    func(c *chain, v6 bool) netip.Addr
		ttl     uint8 // of the error as it reaches h1
		stat    func(stack.Stats) uint64
	}{
		{
			name:    "no route at r1",
			routers: 1,
			dst: func(c *chain, v6 bool) netip.Addr {
				return map[bool]netip.Addr{false: netip.MustParseAddr("10.99.0.1"), true: netip.MustParseAddr("fd00:99::1")}[v6]
			},
			kind: netUnreach,
			from: func(c *chain, v6 bool) netip.Addr { return c.nearAddr(1, v6) },
			ttl:  64,
			stat: func(s stack.Stats) uint64 { return s.NoRoute },
		},
		{
			name:    "no route at r2",
			routers: 2,
			setup: func(t *testing.T, c *chain) {
				c.router(1).route(t, "10.99.0.0/16", c.nearAddr(2, false).String())
				c.router(1).route(t, "fd00:99::/32", c.nearAddr(2, true).String())
			},
			dst: func(c *chain, v6 bool) netip.Addr {
				return map[bool]netip.Addr{false: netip.MustParseAddr("10.99.0.1"), true: netip.MustParseAddr("fd00:99::1")}[v6]
			},
			kind: netUnreach,
			from: func(c *chain, v6 bool) netip.Addr { return c.nearAddr(2, v6) },
			ttl:  63,
			stat: func(s stack.Stats) uint64 { return s.NoRoute },
		},
		{
			name:    "next hop owned by nobody",
			routers: 1,
			dst:     func(c *chain, v6 bool) netip.Addr { return addr(v6, 2, 99) },
			kind:    hostUnreach,
			from:    func(c *chain, v6 bool) netip.Addr { return c.nearAddr(1, v6) },
			ttl:     64,
			stat:    func(s stack.Stats) uint64 { return s.HostUnreachable },
		},
		{
			name:    "next hop owned by nobody at r3",
			routers: 3,
			dst:     func(c *chain, v6 bool) netip.Addr { return addr(v6, 4, 99) },
			kind:    hostUnreach,
			from:    func(c *chain, v6 bool) netip.Addr { return c.nearAddr(3, v6) },
			ttl:     62,
			stat:    func(s stack.Stats) uint64 { return s.HostUnreachable },
		},
	}
	for _, tc := range tests {
		for _, v6 := range []bool{false, true} {
			t.Run(tc.name+"/"+family(v6), func(t *testing.T) {
				c := newChain(t, chainConfig{Routers: tc.routers})
				if tc.setup != nil {
					tc.setup(t, c)
				}
				ep := openEcho(t, c.h1, v6)
				dst := tc.dst(c, v6)
				if _, err := ep.Send(dst, 4, 0, []byte("where")); err != nil {
					t.Fatal(err)
				}
				c.run()
				from := tc.from(c, v6)
				typ, code := tc.kind.typeCode(v6)
				evs := drain(ep)
				if len(evs) != 1 {
					t.Fatalf("events %+v, want one", evs)
				}
				ev := evs[0]
				if ev.Reply || ev.From != from || ev.Type != typ || ev.Code != code || ev.Seq != 4 || ev.TTL != tc.ttl {
					t.Errorf("event %+v, want type %d code %d from %v seq 4 TTL %d", ev, typ, code, from, tc.ttl)
				}
				// The error quotes the request as the reporting router
				// last had it: as received, or as it tried to send it on
				// (TTL decremented) when the link refused it. The log has
				// both, the refused send last.
				var req []byte
				for _, s := range c.log {
					if h := header(s.pkt); h.Dst == dst {
						req = s.pkt
					}
				}
				if req == nil {
					t.Fatal("request not found in the log")
				}
				checkICMPError(t, lastTo(t, c.network, "h1"), tc.kind, from, c.h1Addr(v6), req)
				reporter := c.routers[0]
				for _, r := range c.routers {
					if r.s.Stats().ICMPSent > 0 {
						reporter = r
					}
				}
				if st := reporter.s.Stats(); tc.stat(st) != 1 || st.ICMPSent != 1 {
					t.Errorf("%s stats %+v", reporter.name, st)
				}
			})
		}
	}
}

// TestHostUnreachableCountsTxDrop: the refused send shows in the router's
// outgoing interface counters.
func TestHostUnreachableCountsTxDrop(t *testing.T) {
	c := newChain(t, chainConfig{Routers: 1})
	ep := openEcho(t, c.h1, false)
	if _, err := ep.Send(addr4(2, 99), 1, 0, nil); err != nil {
		t.Fatal(err)
	}
	c.run()
	eth1 := c.router(1).nics["eth1"].Counters()
	if eth1.TxDropped != 1 || eth1.TxPackets != 0 || eth1.TxBytes != 0 {
		t.Errorf("r1 eth1 counters %+v", eth1)
	}
}

// TestLocalSendErrors: what a sender on the host itself is told.
func TestLocalSendErrors(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6)+"/no route", func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			h3 := c.node("h3", stack.Config{}) // no default route
			c.attach(h3, "eth0", c.lans[0], 1500, "10.0.1.20/24", "fd00:0:0:1::20/64")
			ep := openEcho(t, h3, v6)
			if _, err := ep.Send(c.h2Addr(v6), 1, 0, nil); !errors.Is(err, stack.ErrNoRoute) {
				t.Errorf("Send = %v, want ErrNoRoute", err)
			}
			// It still reaches its own network.
			if _, err := ep.Send(c.h1Addr(v6), 2, 0, nil); err != nil {
				t.Errorf("Send to a neighbour: %v", err)
			}
			c.run()
			if evs := drain(ep); len(evs) != 1 || !evs[0].Reply || evs[0].Seq != 2 {
				t.Errorf("events %+v", evs)
			}
		})
		t.Run(family(v6)+"/unowned neighbour", func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			ep := openEcho(t, c.h1, v6)
			_, err := ep.Send(addr(v6, 1, 99), 1, 0, nil)
			if !errors.Is(err, stack.ErrHostUnreachable) {
				t.Errorf("Send = %v, want an error that is ErrHostUnreachable", err)
			}
			ctr := c.h1.nics["eth0"].Counters()
			if ctr.TxDropped != 1 || ctr.TxPackets != 0 {
				t.Errorf("counters %+v", ctr)
			}
		})
		t.Run(family(v6)+"/unowned gateway", func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			h3 := c.node("h3", stack.Config{})
			c.attach(h3, "eth0", c.lans[0], 1500, "10.0.1.20/24", "fd00:0:0:1::20/64")
			h3.route(t, "0.0.0.0/0", "10.0.1.254")
			h3.route(t, "::/0", "fd00:0:0:1::fe")
			ep := openEcho(t, h3, v6)
			if _, err := ep.Send(c.h2Addr(v6), 1, 0, nil); !errors.Is(err, stack.ErrHostUnreachable) {
				t.Errorf("Send = %v, want an error that is ErrHostUnreachable", err)
			}
		})
	}
}

// TestNotForUs: a host that does not forward drops what is not addressed to
// it, silently (RFC 1122 §3.3.4.2).
func TestNotForUs(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			h3 := c.node("h3", stack.Config{})
			c.attach(h3, "eth0", c.lans[0], 1500, "10.0.1.20/24", "fd00:0:0:1::20/64")
			// h1 wrongly routes 10.0.50.0/24 through h3.
			c.h1.route(t, "10.0.50.0/24", "10.0.1.20")
			c.h1.route(t, "fd00:50::/64", "fd00:0:0:1::20")
			ep := openEcho(t, c.h1, v6)
			dst := netip.MustParseAddr("10.0.50.1")
			if v6 {
				dst = netip.MustParseAddr("fd00:50::1")
			}
			if _, err := ep.Send(dst, 1, 0, nil); err != nil {
				t.Fatal(err)
			}
			c.run()
			st := h3.s.Stats()
			if st.NotForUs != 1 || st.Forwarded != 0 || st.ICMPSent != 0 || st.Delivered != 0 {
				t.Errorf("h3 stats %+v", st)
			}
			if got := len(c.sentBy("h3")); got != 0 {
				t.Errorf("h3 sent %d packets", got)
			}
			if evs := drain(ep); len(evs) != 0 {
				t.Errorf("events %+v", evs)
			}
			if ctr := h3.nics["eth0"].Counters(); ctr.RxPackets != 1 {
				t.Errorf("h3 counters %+v", ctr)
			}
		})
	}
}

// TestUnknownProtocol: a packet for an unknown protocol draws protocol
// unreachable (RFC 1122 §3.2.2.1) or, for IPv6, a parameter problem pointing
// at the Next Header field (RFC 8200 §4).
func TestUnknownProtocol(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			if _, err := c.h1.s.SendIP(netip.Addr{}, c.h2Addr(v6), 253, 0, []byte("experimental")); err != nil {
				t.Fatal(err)
			}
			c.run()
			req := c.sentBy("h1")[0].pkt
			if h := header(req); h.Proto != 253 || h.Src != c.h1Addr(v6) {
				t.Fatalf("sent %+v", h)
			}
			// The request as h2 received it, one router on.
			got := c.sentTo("h2")[0].pkt
			m := checkICMPError(t, lastTo(t, c.network, "h1"), unknownProto, c.h2Addr(v6), c.h1Addr(v6), got)
			wantRest := uint32(0)
			if v6 {
				wantRest = 6 // RFC 4443 §3.4 pointer: the Next Header field
			}
			if m.Rest() != wantRest {
				t.Errorf("rest of header %d, want %d", m.Rest(), wantRest)
			}
			st := c.h2.s.Stats()
			if st.UnknownProtocol != 1 || st.ICMPSent != 1 || st.Delivered != 0 {
				t.Errorf("h2 stats %+v", st)
			}
			// h1 takes the error in and counts it, without an endpoint.
			if st := c.h1.s.Stats(); st.Delivered != 1 || st.Malformed != 0 {
				t.Errorf("h1 stats %+v", st)
			}
		})
	}
}

// TestUnknownProtocolAtRouterAddress: an error about a packet addressed to
// one of the node's own addresses comes from that address (RFC 4443 §2.2(a):
// MUST), even when the packet came in on another interface.
func TestUnknownProtocolAtRouterAddress(t *testing.T) {
	c := newChain(t, chainConfig{Routers: 1})
	far := c.farAddr(1, true)
	if _, err := c.h1.s.SendIP(netip.Addr{}, far, 253, 0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	c.run()
	req := c.sentBy("h1")[0].pkt
	checkICMPError(t, lastTo(t, c.network, "h1"), unknownProto, far, c.h1Addr(true), req)
}

// TestNoNextHeader: IPv6 next header 59 is delivered and answered by nothing.
func TestNoNextHeader(t *testing.T) {
	c := newChain(t, chainConfig{Routers: 1})
	if _, err := c.h1.s.SendIP(netip.Addr{}, c.h2Addr(true), wire.ProtoIPv6NoNext, 0, nil); err != nil {
		t.Fatal(err)
	}
	c.run()
	if st := c.h2.s.Stats(); st.Delivered != 1 || st.ICMPSent != 0 {
		t.Errorf("h2 stats %+v", st)
	}
	if n := len(c.sentBy("h2")); n != 0 {
		t.Errorf("h2 sent %d packets", n)
	}
}

// TestMTU: a router never fragments; it answers a packet larger than the
// next link's MTU with fragmentation needed (RFC 1191 §4) or packet too big
// (RFC 4443 §3.2) carrying that MTU.
func TestMTU(t *testing.T) {
	const farMTU = 1280
	for _, v6 := range []bool{false, true} {
		hl := ipHeaderLen(v6) + wire.ICMPHeaderLen
		for _, size := range []int{farMTU - 1, farMTU, farMTU + 1, 1500} {
			t.Run(fmt.Sprintf("%s/%d bytes", family(v6), size), func(t *testing.T) {
				c := newChain(t, chainConfig{Routers: 1, FarMTU: farMTU})
				ep := openEcho(t, c.h1, v6)
				if _, err := ep.Send(c.h2Addr(v6), 1, 0, payload(size-hl)); err != nil {
					t.Fatal(err)
				}
				c.run()
				evs := drain(ep)
				if len(evs) != 1 {
					t.Fatalf("events %+v", evs)
				}
				ev := evs[0]
				if size <= farMTU {
					if !ev.Reply || ev.Len != size-ipHeaderLen(v6) {
						t.Errorf("event %+v, want a reply", ev)
					}
					return
				}
				typ, code := tooBig.typeCode(v6)
				if ev.Reply || ev.Type != typ || ev.Code != code || ev.MTU != farMTU || ev.From != c.nearAddr(1, v6) {
					t.Errorf("event %+v, want type %d code %d MTU %d from %v", ev, typ, code, farMTU, c.nearAddr(1, v6))
				}
				req := c.sentBy("h1")[0].pkt
				m := checkICMPError(t, lastTo(t, c.network, "h1"), tooBig, c.nearAddr(1, v6), c.h1Addr(v6), req)
				if m.MTU(v6) != farMTU {
					t.Errorf("MTU field %d", m.MTU(v6))
				}
				if st := c.router(1).s.Stats(); st.TooBig != 1 || st.Forwarded != 0 {
					t.Errorf("r1 stats %+v", st)
				}
			})
		}
	}
}

// TestLocalSendTooBig: a local sender is told, nothing is sent.
func TestLocalSendTooBig(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1, MTU: 1500})
			ep := openEcho(t, c.h1, v6)
			hl := ipHeaderLen(v6) + wire.ICMPHeaderLen
			if _, err := ep.Send(c.h2Addr(v6), 1, 0, payload(1500-hl)); err != nil {
				t.Errorf("Send of exactly the MTU: %v", err)
			}
			if _, err := ep.Send(c.h2Addr(v6), 2, 0, payload(1501-hl)); !errors.Is(err, stack.ErrMessageTooLong) {
				t.Errorf("Send of MTU+1 = %v, want ErrMessageTooLong", err)
			}
			if _, err := c.h1.s.SendIP(netip.Addr{}, c.h2Addr(v6), wire.ProtoUDP, 0, payload(1501-ipHeaderLen(v6))); !errors.Is(err, stack.ErrMessageTooLong) {
				t.Errorf("SendIP of MTU+1 = %v, want ErrMessageTooLong", err)
			}
			if n := len(c.log); n != 1 {
				t.Errorf("%d packets sent, want 1", n)
			}
		})
	}
}

// TestICMPErrorQuoteLimit: errors quote as much of the packet as fits in
// 576 bytes (IPv4) or 1280 (IPv6).
func TestICMPErrorQuoteLimit(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			ep := openEcho(t, c.h1, v6)
			if _, err := ep.Send(c.h2Addr(v6), 1, 1, payload(1400)); err != nil {
				t.Fatal(err)
			}
			c.run()
			req := c.sentBy("h1")[0].pkt
			got := lastTo(t, c.network, "h1")
			checkICMPError(t, got, timeExceeded, c.nearAddr(1, v6), c.h1Addr(v6), req)
			want := 576
			if v6 {
				want = 1280
			}
			if len(got) != want {
				t.Errorf("error is %d bytes, want %d", len(got), want)
			}
			if evs := drain(ep); len(evs) != 1 || evs[0].Len != want-ipHeaderLen(v6) {
				t.Errorf("events %+v", evs)
			}
		})
	}
}

// TestNoErrorAboutError: RFC 1122 §3.2.2 and RFC 4443 §2.4(e): no ICMP error
// about an ICMP error message, while informational messages get one.
func TestNoErrorAboutError(t *testing.T) {
	tests := []struct {
		v6      bool
		typ     uint8
		wantErr bool
	}{
		{false, wire.ICMPv4DestUnreach, false},
		{false, 4 /* source quench */, false},
		{false, wire.ICMPv4Redirect, false},
		{false, wire.ICMPv4TimeExceeded, false},
		{false, wire.ICMPv4ParamProblem, false},
		{false, wire.ICMPv4Echo, true},
		{false, wire.ICMPv4EchoReply, true},
		{false, 13 /* timestamp */, true},
		{true, wire.ICMPv6DestUnreach, false},
		{true, wire.ICMPv6PacketTooBig, false},
		{true, wire.ICMPv6TimeExceeded, false},
		{true, wire.ICMPv6ParamProblem, false},
		{true, 100 /* private experimentation, error range */, false},
		{true, wire.ICMPv6EchoRequest, true},
		{true, wire.ICMPv6EchoReply, true},
		{true, 200 /* private experimentation, informational */, true},
	}
	for _, tc := range tests {
		for _, cause := range []string{"ttl", "no route"} {
			t.Run(fmt.Sprintf("%s/type %d/%s", family(tc.v6), tc.typ, cause), func(t *testing.T) {
				c := newChain(t, chainConfig{Routers: 1})
				src, dst := c.h1Addr(tc.v6), c.h2Addr(tc.v6)
				ttl := uint8(1)
				if cause == "no route" {
					dst, ttl = addr(tc.v6, 99, 1), 64
				}
				// An error message quoting something, as a real one would.
				m := wire.ICMPMessage{Type: tc.typ, Body: echoPacket(dst, src, 64, 1, 1, nil)}
				b := make([]byte, m.Len())
				if tc.v6 {
					m.EncodeV6(b, src, dst)
				} else {
					m.EncodeV4(b)
				}
				if _, err := c.h1.s.SendIP(netip.Addr{}, dst, icmpProto(tc.v6), ttl, b); err != nil {
					t.Fatal(err)
				}
				c.run()
				st := c.router(1).s.Stats()
				if st.TTLExceeded+st.NoRoute != 1 {
					t.Errorf("r1 stats %+v", st)
				}
				sent := st.ICMPSent == 1 && len(c.sentTo("h1")) == 1
				if sent != tc.wantErr || st.ICMPSent > 1 {
					t.Errorf("r1 sent %d errors, h1 got %d packets; want an error: %v", st.ICMPSent, len(c.sentTo("h1")), tc.wantErr)
				}
				if st.ICMPRateLimited != 0 {
					t.Errorf("rate limited %d", st.ICMPRateLimited)
				}
			})
		}
	}
}

// TestNoErrorAboutFragment: RFC 1812 §4.3.2.7: no error about a non-initial
// fragment; the first fragment does get one.
func TestNoErrorAboutFragment(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flags   uint16
		offset  uint16
		wantErr bool
	}{
		{"first fragment", wire.IPv4FlagMF, 0, true},
		{"middle fragment", wire.IPv4FlagMF, 100, false},
		{"last fragment", 0, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			h := wire.IPv4Header{ID: 1, Flags: tc.flags, FragmentOffset: tc.offset, TTL: 1, Protocol: wire.ProtoUDP,
				Src: c.h1Addr(false), Dst: c.h2Addr(false)}
			c.router(1).s.Deliver(c.router(1).nics["eth0"], h.Marshal(payload(16)))
			c.run()
			st := c.router(1).s.Stats()
			if st.TTLExceeded != 1 || (st.ICMPSent == 1) != tc.wantErr {
				t.Errorf("r1 stats %+v, want an error: %v", st, tc.wantErr)
			}
		})
	}
}

// TestNoErrorToUnroutableSource: an error that cannot be routed back is not
// sent, and nothing breaks.
func TestNoErrorToUnroutableSource(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		c := newChain(t, chainConfig{Routers: 1})
		r1 := c.router(1)
		spoofed := addr(v6, 77, 7)
		r1.s.Deliver(r1.nics["eth0"], echoPacket(spoofed, c.h2Addr(v6), 1, 1, 1, nil))
		c.run()
		if st := r1.s.Stats(); st.TTLExceeded != 1 || st.ICMPSent != 0 {
			t.Errorf("%s: r1 stats %+v", family(v6), st)
		}
		if len(c.log) != 0 {
			t.Errorf("%s: %d packets sent", family(v6), len(c.log))
		}
	}
}

// TestICMPRateLimit: RFC 4443 §2.4(f) / RFC 1812 §4.3.2.8 token bucket, with
// rate 10/s and burst 5, in virtual time.
func TestICMPRateLimit(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1, Router: stack.Config{ICMPErrorRate: 10, ICMPErrorBurst: 5}})
			r1 := c.router(1)
			ep := openEcho(t, c.h1, v6)
			seq := uint16(0)
			burst := func(n int) []uint16 {
				t.Helper()
				for range n {
					if _, err := ep.Send(c.h2Addr(v6), seq, 1, nil); err != nil {
						t.Fatal(err)
					}
					seq++
				}
				c.run()
				var got []uint16
				for _, ev := range drain(ep) {
					if ev.Reply || ev.From != c.nearAddr(1, v6) {
						t.Errorf("event %+v", ev)
					}
					got = append(got, ev.Seq)
				}
				return got
			}
			check := func(got, want []uint16, sent, limited uint64) {
				t.Helper()
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("time exceeded for (-want +got):\n%s", diff)
				}
				st := r1.s.Stats()
				if st.ICMPSent != sent || st.ICMPRateLimited != limited || st.TTLExceeded != uint64(seq) {
					t.Errorf("r1 stats %+v, want ICMPSent %d ICMPRateLimited %d TTLExceeded %d", st, sent, limited, seq)
				}
			}

			// 20 at one instant: the burst of 5 goes, 15 are held back.
			check(burst(20), []uint16{0, 1, 2, 3, 4}, 5, 15)
			// Still the same instant: nothing.
			check(burst(3), nil, 5, 18)
			// A second later the bucket is full again (10 tokens, capped
			// at the burst of 5).
			c.clock.Advance(time.Second)
			check(burst(20), []uint16{23, 24, 25, 26, 27}, 10, 33)
			// 100ms is one token.
			c.clock.Advance(100 * time.Millisecond)
			check(burst(3), []uint16{43}, 11, 35)
			// 250ms is two and a half: two now, the half kept for later.
			c.clock.Advance(250 * time.Millisecond)
			check(burst(3), []uint16{46, 47}, 13, 36)
			c.clock.Advance(50 * time.Millisecond)
			check(burst(2), []uint16{49}, 14, 37)
			// A clock that steps back adds no tokens.
			c.clock.Advance(-time.Hour)
			check(burst(1), nil, 14, 38)
		})
	}
}

// TestICMPRateLimitDefault: 1000/s with a burst of 50 when unset.
func TestICMPRateLimitDefault(t *testing.T) {
	c := newChain(t, chainConfig{Routers: 1})
	ep := openEcho(t, c.h1, false)
	for i := range 60 {
		if _, err := ep.Send(c.h2Addr(false), uint16(i), 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	c.run()
	if st := c.router(1).s.Stats(); st.ICMPSent != 50 || st.ICMPRateLimited != 10 {
		t.Errorf("r1 stats %+v", st)
	}
	c.clock.Advance(5 * time.Millisecond) // 5 tokens
	for i := range 10 {
		if _, err := ep.Send(c.h2Addr(false), uint16(i), 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	c.run()
	if st := c.router(1).s.Stats(); st.ICMPSent != 55 {
		t.Errorf("r1 stats %+v", st)
	}
}

// TestEchoRepliesNotRateLimited: the limit is for errors only.
func TestEchoRepliesNotRateLimited(t *testing.T) {
	c := newChain(t, chainConfig{Routers: 1, Router: stack.Config{ICMPErrorRate: 1, ICMPErrorBurst: 1}})
	ep := openEcho(t, c.h1, false)
	for i := range 20 {
		if _, err := ep.Send(c.nearAddr(1, false), uint16(i), 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	c.run()
	if evs := drain(ep); len(evs) != 20 {
		t.Errorf("%d replies, want 20", len(evs))
	}
	if st := c.router(1).s.Stats(); st.ICMPRateLimited != 0 {
		t.Errorf("r1 stats %+v", st)
	}
}
