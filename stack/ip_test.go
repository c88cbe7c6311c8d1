package stack_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// mutate returns a copy of pkt changed by f.
func mutate(pkt []byte, f func(b []byte) []byte) []byte {
	return f(append([]byte(nil), pkt...))
}

// reChecksum recomputes an IPv4 header checksum after a change.
func reChecksum(b []byte) []byte {
	wire.IPv4(b).SetChecksum()
	return b
}

// TestMalformed delivers broken packets to h1: each is dropped, counted as
// Malformed and in the interface's receive counters, and draws no answer.
func TestMalformed(t *testing.T) {
	h1v4, r1v4 := addr4(1, 10), addr4(1, 1)
	h1v6, r1v6 := addr6(1, 10), addr6(1, 1)
	echo4 := echoPacket(r1v4, h1v4, 64, 1, 1, []byte("0123456789abcdef"))
	echo6 := echoPacket(r1v6, h1v6, 64, 1, 1, []byte("0123456789abcdef"))

	tests := []struct {
		name string
		pkt  []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0x45}},
		{"v4 truncated header", echo4[:19]},
		{"v6 truncated header", echo6[:39]},
		{"version 0", mutate(echo4, func(b []byte) []byte { b[0] = 0x05; return reChecksum(b) })},
		{"version 5", mutate(echo4, func(b []byte) []byte { b[0] = 0x55; return b })},
		{"version 15", mutate(echo6, func(b []byte) []byte { b[0] = 0xf0; return b })},
		{"v4 IHL 4", mutate(echo4, func(b []byte) []byte { b[0] = 0x44; return b })},
		{"v4 IHL beyond buffer", mutate(echo4[:40], func(b []byte) []byte { b[0] = 0x4f; return b })},
		{"v4 bad header checksum", mutate(echo4, func(b []byte) []byte { b[10] ^= 0x01; return b })},
		{"v4 header bit flipped", mutate(echo4, func(b []byte) []byte { b[8] ^= 0x80; return b })},
		{"v4 total length beyond buffer", mutate(echo4, func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[2:], uint16(len(b)+1))
			return reChecksum(b)
		})},
		{"v4 total length below header", mutate(echo4, func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[2:], 19)
			return reChecksum(b)
		})},
		{"v4 buffer cut short", echo4[:len(echo4)-1]},
		{"ICMP bad checksum", mutate(echo4, func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b })},
		{"ICMP truncated", ipPacket(r1v4, h1v4, 64, wire.ProtoICMPv4, []byte{8, 0, 0xf7, 0xff})},
		{"ICMP empty", ipPacket(r1v4, h1v4, 64, wire.ProtoICMPv4, nil)},
		{"v6 payload length beyond buffer", mutate(echo6, func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[4:], uint16(len(b)-wire.IPv6HeaderLen+1))
			return b
		})},
		{"v6 buffer cut short", echo6[:len(echo6)-1]},
		{"ICMPv6 bad checksum", mutate(echo6, func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b })},
		{"ICMPv6 checksum without pseudo-header", func() []byte {
			m := wire.Echo(wire.ICMPv6EchoRequest, 1, 1, []byte("abc"))
			b := make([]byte, m.Len())
			m.EncodeV4(b) // RFC 792 checksum: no pseudo-header
			return ipPacket(r1v6, h1v6, 64, wire.ProtoICMPv6, b)
		}()},
		{"ICMPv6 source rewritten", mutate(echo6, func(b []byte) []byte { b[23] ^= 0x02; return b })},
		{"ICMPv6 truncated", ipPacket(r1v6, h1v6, 64, wire.ProtoICMPv6, []byte{128, 0, 0, 0})},
		// Martian sources (RFC 1812 §5.3.7, RFC 4291).
		{"v4 source 0.0.0.0", echoPacket(netip.IPv4Unspecified(), h1v4, 64, 1, 1, nil)},
		{"v4 source loopback", echoPacket(netip.MustParseAddr("127.0.0.1"), h1v4, 64, 1, 1, nil)},
		{"v4 source multicast", echoPacket(netip.MustParseAddr("224.0.0.1"), h1v4, 64, 1, 1, nil)},
		{"v4 source broadcast", echoPacket(netip.MustParseAddr("255.255.255.255"), h1v4, 64, 1, 1, nil)},
		{"v6 source ::", echoPacket(netip.IPv6Unspecified(), h1v6, 64, 1, 1, nil)},
		{"v6 source ::1", echoPacket(netip.IPv6Loopback(), h1v6, 64, 1, 1, nil)},
		{"v6 source multicast", echoPacket(netip.MustParseAddr("ff02::1"), h1v6, 64, 1, 1, nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			ep4, ep6 := openEcho(t, c.h1, false), openEcho(t, c.h1, true)
			eth0 := c.h1.nics["eth0"]
			n := len(tc.pkt)
			c.h1.s.Deliver(eth0, tc.pkt)
			c.run()
			if diff := cmp.Diff(stack.Stats{Malformed: 1}, c.h1.s.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			want := stack.Counters{RxPackets: 1, RxBytes: uint64(n)}
			if diff := cmp.Diff(want, eth0.Counters()); diff != "" {
				t.Errorf("counters (-want +got):\n%s", diff)
			}
			if len(c.log) != 0 {
				t.Errorf("%d packets sent in answer", len(c.log))
			}
			if evs := append(drain(ep4), drain(ep6)...); len(evs) != 0 {
				t.Errorf("events %+v", evs)
			}
		})
	}
}

// TestMalformedAtRouter: a router counts and drops broken packets instead of
// forwarding them.
func TestMalformedAtRouter(t *testing.T) {
	c := newChain(t, chainConfig{Routers: 1})
	r1 := c.router(1)
	good := echoPacket(c.h1Addr(false), c.h2Addr(false), 64, 1, 1, nil)
	bad := mutate(good, func(b []byte) []byte { b[10] ^= 0x01; return b })
	r1.s.Deliver(r1.nics["eth0"], bad)
	c.run()
	if st := r1.s.Stats(); st.Malformed != 1 || st.Forwarded != 0 {
		t.Errorf("r1 stats %+v", st)
	}
	// A router does not check the ICMP checksum of a packet in transit.
	badICMP := mutate(good, func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b })
	r1.s.Deliver(r1.nics["eth0"], badICMP)
	c.run()
	if st := r1.s.Stats(); st.Malformed != 1 || st.Forwarded != 1 {
		t.Errorf("r1 stats %+v", st)
	}
	if st := c.h2.s.Stats(); st.Malformed != 1 {
		t.Errorf("h2 stats %+v", st)
	}
}

// TestLinkPadding: bytes after the IP total length are the link's padding,
// not part of the packet.
func TestLinkPadding(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			req := echoPacket(c.nearAddr(1, v6), c.h1Addr(v6), 64, 42, 1, []byte("pad me"))
			c.h1.s.Deliver(c.h1.nics["eth0"], append(req, 0, 0, 0, 0))
			c.run()
			got := c.sentBy("h1")
			if len(got) != 1 {
				t.Fatalf("h1 sent %d packets", len(got))
			}
			m := checkPacket(t, got[0].pkt)
			if len(got[0].pkt) != len(req) || string(m.Body()) != "pad me" || m.Ident() != 42 {
				t.Errorf("reply % x", got[0].pkt)
			}
			if ctr := c.h1.nics["eth0"].Counters(); ctr.RxBytes != uint64(len(req)+4) {
				t.Errorf("RxBytes %d, want %d", ctr.RxBytes, len(req)+4)
			}
		})
	}
}

// TestCounters: every interface on the path counts the request and the reply
// in both directions.
func TestCounters(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(family(v6), func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			ep := openEcho(t, c.h1, v6)
			const pings = 3
			for i := range pings {
				if _, err := ep.Send(c.h2Addr(v6), uint16(i), 0, payload(56)); err != nil {
					t.Fatal(err)
				}
			}
			c.run()
			size := uint64(ipHeaderLen(v6) + wire.ICMPHeaderLen + 56)
			both := stack.Counters{RxPackets: pings, RxBytes: pings * size, TxPackets: pings, TxBytes: pings * size}
			want := map[string]stack.Counters{"h1/eth0": both, "r1/eth0": both, "r1/eth1": both, "h2/eth0": both}
			got := map[string]stack.Counters{}
			for _, nd := range []*node{c.h1, c.router(1), c.h2} {
				for name, nic := range nd.nics {
					got[nd.name+"/"+name] = nic.Counters()
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("counters (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("drops", func(t *testing.T) {
		c := newChain(t, chainConfig{Routers: 1})
		eth0 := c.h1.nics["eth0"]
		eth0.CountRxDrop()
		eth0.CountRxDrop()
		ep := openEcho(t, c.h1, false)
		if _, err := ep.Send(addr4(1, 99), 1, 0, nil); err == nil {
			t.Fatal("Send to an unowned neighbour succeeded")
		}
		want := stack.Counters{RxDropped: 2, TxDropped: 1}
		if diff := cmp.Diff(want, eth0.Counters()); diff != "" {
			t.Errorf("counters (-want +got):\n%s", diff)
		}
	})
}

// TestFragmentsDropped: reassembly is not implemented, fragments addressed
// to the host are counted and dropped without an error.
func TestFragmentsDropped(t *testing.T) {
	h1, r1 := addr4(1, 10), addr4(1, 1)
	frag := func(flags, off uint16) []byte {
		h := wire.IPv4Header{ID: 9, Flags: flags, FragmentOffset: off, TTL: 64, Protocol: wire.ProtoICMPv4, Src: r1, Dst: h1}
		return h.Marshal(payload(16))
	}
	tests := []struct {
		name string
		pkt  []byte
	}{
		{"v4 first fragment", frag(wire.IPv4FlagMF, 0)},
		{"v4 middle fragment", frag(wire.IPv4FlagMF, 2)},
		{"v4 last fragment", frag(0, 2)},
		{"v6 fragment header", ipPacket(addr6(1, 1), addr6(1, 10), 64, wire.ProtoIPv6Frag, payload(16))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			c.h1.s.Deliver(c.h1.nics["eth0"], tc.pkt)
			c.run()
			if diff := cmp.Diff(stack.Stats{FragmentsDropped: 1}, c.h1.s.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			if len(c.log) != 0 {
				t.Errorf("%d packets sent", len(c.log))
			}
		})
	}
}

// TestEchoRequestNonZeroCode is delivered but not answered.
func TestEchoRequestNonZeroCode(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		c := newChain(t, chainConfig{Routers: 1})
		typ := uint8(wire.ICMPv4Echo)
		if v6 {
			typ = wire.ICMPv6EchoRequest
		}
		m := wire.ICMPMessage{Type: typ, Code: 1, Rest: 1<<16 | 1}
		c.h1.s.Deliver(c.h1.nics["eth0"], icmpPacket(c.nearAddr(1, v6), c.h1Addr(v6), 64, m))
		c.run()
		if st := c.h1.s.Stats(); st.Delivered != 1 || len(c.log) != 0 {
			t.Errorf("%s: stats %+v, %d packets sent", family(v6), st, len(c.log))
		}
	}
}

// TestForwardingDecrementsTTL checks the forwarded packet byte for byte: only
// the TTL / hop limit and (IPv4) the header checksum change, and the
// incrementally updated checksum (RFC 1624) verifies for every TTL.
func TestForwardingDecrementsTTL(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for ttl := 2; ttl <= 255; ttl++ {
			c := newChain(t, chainConfig{Routers: 1})
			r1 := c.router(1)
			in := echoPacket(c.h1Addr(v6), c.h2Addr(v6), uint8(ttl), 1, uint16(ttl), payload(ttl%7))
			if !v6 {
				// Vary the ID so the checksum takes many values, 0xffff among them.
				binary.BigEndian.PutUint16(in[4:], uint16(ttl*257))
				wire.IPv4(in).SetChecksum()
			}
			want := append([]byte(nil), in...)
			r1.s.Deliver(r1.nics["eth0"], in)
			out := c.sentBy("r1")
			if len(out) != 1 {
				t.Fatalf("%s TTL %d: r1 sent %d packets", family(v6), ttl, len(out))
			}
			got := out[0].pkt
			if v6 {
				wire.IPv6(want).SetHopLimit(uint8(ttl - 1))
			} else {
				want[8] = uint8(ttl - 1)
				wire.IPv4(want).SetChecksum()
				if !wire.IPv4(got).ChecksumValid() {
					t.Errorf("TTL %d: forwarded header checksum %#04x does not verify", ttl, wire.IPv4(got).Checksum())
				}
			}
			if string(got) != string(want) {
				t.Errorf("%s TTL %d: forwarded\n% x\nwant\n% x", family(v6), ttl, got, want)
			}
		}
	}
}

// TestForwardingSkipsSpecial: a router does not forward broadcast, multicast
// or IPv6 link-local packets (RFC 1812 §5.3.5, RFC 4291 §2.5.6).
func TestForwardingSkipsSpecial(t *testing.T) {
	tests := []struct{ src, dst string }{
		{"10.0.1.10", "255.255.255.255"},
		{"10.0.1.10", "224.0.0.5"},
		{"fd00:0:0:1::10", "ff02::1"},
		{"fd00:0:0:1::10", "ff0e::1"},
		{"fd00:0:0:1::10", "fe80::1"},
		{"fe80::10", "fd00:0:0:2::10"},
	}
	for _, tc := range tests {
		t.Run(tc.src+"->"+tc.dst, func(t *testing.T) {
			c := newChain(t, chainConfig{Routers: 1})
			r1 := c.router(1)
			r1.s.Deliver(r1.nics["eth0"], echoPacket(netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst), 1, 1, 1, nil))
			c.run()
			if diff := cmp.Diff(stack.Stats{NotForUs: 1}, r1.s.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			if len(c.log) != 0 {
				t.Errorf("%d packets sent", len(c.log))
			}
		})
	}
}

// TestIPv4Options: a header with options is accepted and its payload found
// after them.
func TestIPv4Options(t *testing.T) {
	c := newChain(t, chainConfig{Routers: 1})
	m := wire.Echo(wire.ICMPv4Echo, 5, 6, []byte("opts"))
	body := make([]byte, m.Len())
	m.EncodeV4(body)
	h := wire.IPv4Header{TTL: 64, Protocol: wire.ProtoICMPv4, Src: addr4(1, 1), Dst: addr4(1, 10),
		Options: []byte{1, 1, 1, 0}} // NOP NOP NOP EOL
	c.h1.s.Deliver(c.h1.nics["eth0"], h.Marshal(body))
	out := c.sentBy("h1")
	if len(out) != 1 {
		t.Fatalf("h1 sent %d packets", len(out))
	}
	rep := checkPacket(t, out[0].pkt)
	if rep.Type() != wire.ICMPv4EchoReply || rep.Seq() != 6 || string(rep.Body()) != "opts" {
		t.Errorf("reply % x", out[0].pkt)
	}
}

// syncLink counts packets and is safe for concurrent use.
type syncLink struct{ n atomic.Int64 }

func (l *syncLink) Send(netip.Addr, []byte) error { l.n.Add(1); return nil }

// TestConcurrent exercises the stack from several goroutines at once; run
// with -race.
func TestConcurrent(t *testing.T) {
	clock := newFakeClock()
	s := stack.New(stack.Config{Name: "r", Clock: clock, Forwarding: true, ICMPErrorRate: 1e6, ICMPErrorBurst: 1e6})
	var l0, l1 syncLink
	eth0, err := s.AddInterface("eth0", 1500, &l0, netip.MustParsePrefix("10.0.1.1/24"), netip.MustParsePrefix("fd00:0:0:1::1/64"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddInterface("eth1", 1500, &l1, netip.MustParsePrefix("10.0.2.1/24"), netip.MustParsePrefix("fd00:0:0:2::1/64")); err != nil {
		t.Fatal(err)
	}
	const workers, per = 4, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				v6 := i%2 == 1
				src := addr(v6, 1, 10+w)
				var dst netip.Addr
				switch i % 3 {
				case 0:
					dst = addr(v6, 1, 1) // for the router: echo reply
				case 1:
					dst = addr(v6, 2, 10) // forwarded
				default:
					dst = addr(v6, 2, 10) // TTL 1: time exceeded
				}
				ttl := uint8(64)
				if i%3 == 2 {
					ttl = 1
				}
				s.Deliver(eth0, echoPacket(src, dst, ttl, uint16(w), uint16(i), nil))
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			if err := s.AddRoute(netip.MustParsePrefix(fmt.Sprintf("172.16.%d.0/24", i)), netip.MustParseAddr("10.0.2.99")); err != nil {
				t.Error(err)
			}
			_ = s.Routes()
			_ = s.Stats()
			_ = eth0.Counters()
			clock.Advance(1)
		}
	})
	wg.Go(func() {
		for i := range 50 {
			ep, err := s.OpenEcho(i%2 == 0)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := ep.Send(addr(i%2 == 0, 2, 10), uint16(i), 0, nil); err != nil {
				t.Error(err)
			}
			ep.Close()
		}
	})
	wg.Wait()
	st := s.Stats()
	total := uint64(workers * per)
	if got := st.Delivered + st.Forwarded + st.TTLExceeded; got != total {
		t.Errorf("stats %+v account for %d of %d packets", st, got, total)
	}
	if got := l0.n.Load() + l1.n.Load(); got != int64(total)+50 {
		t.Errorf("%d packets sent, want %d", got, total+50)
	}
	if n := len(s.Routes()); n != 4+50 {
		t.Errorf("%d routes", n)
	}
}
