package stack_test

import (
	"testing"

	"github.com/labnet-dev/labnet/stack/wire"
)

// fuzzSeeds are valid packets for the one-router chain, and broken variants
// of them.
func fuzzSeeds() (valid, broken [][]byte) {
	h1v4, h2v4, r1v4, r1far4 := addr4(1, 10), addr4(2, 10), addr4(1, 1), addr4(2, 2)
	h1v6, h2v6, r1v6 := addr6(1, 10), addr6(2, 10), addr6(1, 1)
	echo4 := echoPacket(h1v4, h2v4, 64, 1, 1, []byte("fuzz"))
	echo6 := echoPacket(h1v6, h2v6, 64, 1, 1, []byte("fuzz"))
	te4 := icmpPacket(r1v4, h1v4, 64, wire.ICMPMessage{Type: wire.ICMPv4TimeExceeded, Body: echoPacket(h1v4, h2v4, 1, 1, 1, nil)})
	te6 := icmpPacket(r1v6, h1v6, 64, wire.ICMPMessage{Type: wire.ICMPv6TimeExceeded, Body: echoPacket(h1v6, h2v6, 1, 1, 1, nil)})
	ptb6 := icmpPacket(r1v6, h1v6, 64, wire.ICMPMessage{Type: wire.ICMPv6PacketTooBig, Rest: 1280, Body: echoPacket(h1v6, h2v6, 64, 1, 1, nil)})
	valid = [][]byte{
		echo4,
		echo6,
		echoPacket(h1v4, r1v4, 64, 1, 2, nil),
		echoPacket(h1v4, r1far4, 1, 1, 2, nil),
		echoPacket(h1v6, r1v6, 64, 1, 2, nil),
		echoPacket(h1v4, h2v4, 1, 1, 3, nil),
		echoPacket(h1v6, h2v6, 1, 1, 3, nil),
		echoPacket(h1v4, addr4(2, 99), 64, 1, 4, nil),
		echoPacket(h1v6, addr6(9, 9), 64, 1, 4, nil),
		echoPacket(h1v4, h2v4, 64, 1, 5, payload(1472)),
		echoPacket(h2v4, h1v4, 64, 1, 6, nil),
		icmpPacket(h2v4, h1v4, 64, wire.Echo(wire.ICMPv4EchoReply, 1, 7, nil)),
		icmpPacket(h2v6, h1v6, 64, wire.Echo(wire.ICMPv6EchoReply, 1, 7, nil)),
		te4,
		te6,
		ptb6,
		ipPacket(h1v4, h2v4, 64, 253, []byte("proto")),
		ipPacket(h1v6, h2v6, 64, 253, []byte("next header")),
		ipPacket(h1v6, r1v6, 64, wire.ProtoIPv6Frag, payload(8)),
		ipPacket(h1v6, r1v6, 64, wire.ProtoIPv6NoNext, nil),
		append(append([]byte(nil), echo4...), 0, 0), // link padding
	}
	broken = [][]byte{
		nil,
		{0x45},
		{0x60},
		echo4[:19],
		echo6[:39],
		echo4[:len(echo4)-1],
	}
	for _, p := range [][]byte{echo4, echo6, te4, te6} {
		for _, i := range []int{0, 2, 3, 6, 9, 10, len(p) - 1} {
			b := append([]byte(nil), p...)
			b[i] ^= 0xff
			broken = append(broken, b)
		}
	}
	return valid, broken
}

// FuzzDeliver gives arbitrary bytes to a router (both interfaces) and a host
// and lets the network settle. Deliver must never panic, the network must go
// quiet (run fails after too many deliveries), and whatever a stack sends
// must pass wire's checks.
func FuzzDeliver(f *testing.F) {
	valid, broken := fuzzSeeds()
	for _, s := range append(valid, broken...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newChain(t, chainConfig{Routers: 1})
		// Endpoints with ident 1 so that quoted echoes find one.
		for _, v6 := range []bool{false, true} {
			ep := openEcho(t, c.h1, v6)
			if ep.Ident() != 1 && !v6 {
				t.Fatalf("first echo ident %d", ep.Ident())
			}
		}
		r1 := c.router(1)
		targets := []port{{r1, r1.nics["eth0"]}, {r1, r1.nics["eth1"]}, {c.h1, c.h1.nics["eth0"]}}
		for _, p := range targets {
			p.node.s.Deliver(p.nic, append([]byte(nil), data...))
		}
		deliveries := c.run() + len(targets)

		var handled uint64
		for _, nd := range c.nodes {
			st := nd.s.Stats()
			handled += st.Delivered + st.Forwarded + st.Malformed + st.TTLExceeded + st.NoRoute +
				st.HostUnreachable + st.NotForUs + st.TooBig + st.FragmentsDropped + st.UnknownProtocol
		}
		// Loopback can add inputs that no delivery made, never remove one.
		if handled < uint64(deliveries) {
			t.Errorf("%d deliveries, but the stats account for %d", deliveries, handled)
		}
		for _, s := range c.log {
			checkSent(t, s.pkt)
		}
	})
}

// checkSent checks what a stack may put on a link: an IP packet that passes
// Check, with a total length equal to its buffer and (IPv4) a valid header
// checksum. The payload may be anything a fuzzer forwarded.
func checkSent(t *testing.T, pkt []byte) {
	t.Helper()
	switch {
	case len(pkt) > 0 && pkt[0]>>4 == 4:
		ip := wire.IPv4(pkt)
		if err := ip.Check(); err != nil || !ip.ChecksumValid() || ip.TotalLength() != len(pkt) {
			t.Fatalf("sent a bad IPv4 packet (%v): % x", err, pkt)
		}
		if ip.TTL() == 0 {
			t.Fatalf("sent TTL 0: % x", pkt)
		}
	case len(pkt) > 0 && pkt[0]>>4 == 6:
		ip := wire.IPv6(pkt)
		if err := ip.Check(); err != nil || ip.TotalLength() != len(pkt) {
			t.Fatalf("sent a bad IPv6 packet (%v): % x", err, pkt)
		}
		if ip.HopLimit() == 0 {
			t.Fatalf("sent hop limit 0: % x", pkt)
		}
	default:
		t.Fatalf("sent a non-IP packet: % x", pkt)
	}
}

// TestFuzzSeeds runs the seeds under plain go test, with a stronger check
// for the valid ones: then every packet sent, built or forwarded, has good
// checksums throughout.
func TestFuzzSeeds(t *testing.T) {
	valid, broken := fuzzSeeds()
	for i, data := range append(valid, broken...) {
		c := newChain(t, chainConfig{Routers: 1})
		r1 := c.router(1)
		r1.s.Deliver(r1.nics["eth0"], append([]byte(nil), data...))
		c.h1.s.Deliver(c.h1.nics["eth0"], append([]byte(nil), data...))
		c.run()
		for _, s := range c.log {
			checkSent(t, s.pkt)
			if i < len(valid) {
				checkPacket(t, s.pkt)
			}
		}
	}
}
