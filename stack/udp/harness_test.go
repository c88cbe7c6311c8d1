package udp_test

// A two-host network for testing UDP end to end: stacks a and b on one
// segment (10.0.0.0/24 and fd00::/64), the virtual clock of package vclock,
// and a link that delivers each packet to its next hop synchronously, in the
// sender's goroutine, keeping a copy of everything it carried. Synchronous
// delivery needs no goroutine and loses nothing, so a test sees a reply (or
// an ICMP error) as soon as its send returns.

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/udp"
	"github.com/labnet-dev/labnet/stack/vclock"
	"github.com/labnet-dev/labnet/stack/wire"
)

type host struct {
	name   string
	s      *stack.Stack
	udp    *udp.Protocol
	nic    *stack.NIC
	v4, v6 netip.Addr
}

// addr returns the host's address of the family.
func (h *host) addr(v6 bool) netip.Addr {
	if v6 {
		return h.v6
	}
	return h.v4
}

type lab struct {
	clock *vclock.Clock
	a, b  *host

	mu     sync.Mutex
	owners map[netip.Addr]*host
	log    [][]byte // a copy of every packet carried, in order
	noLog  bool     // set before any traffic to keep no copies (benchmarks)
}

// link is one host's interface onto the segment.
type link struct{ lab *lab }

// Send delivers pkt to the owner of nextHop at once. It takes ownership of
// pkt.
func (l link) Send(nextHop netip.Addr, pkt []byte) error {
	l.lab.mu.Lock()
	to := l.lab.owners[nextHop]
	if to != nil && !l.lab.noLog {
		l.lab.log = append(l.lab.log, slices.Clone(pkt))
	}
	l.lab.mu.Unlock()
	if to == nil {
		return stack.ErrHostUnreachable
	}
	to.s.Deliver(to.nic, pkt)
	return nil
}

// newLab builds hosts a (10.0.0.1, fd00::1) and b (10.0.0.2, fd00::2) with
// interfaces of the given MTU (1500 when 0). Every socket is closed when the
// test ends.
func newLab(tb testing.TB, mtu int) *lab {
	tb.Helper()
	if mtu == 0 {
		mtu = 1500
	}
	l := &lab{clock: vclock.New(), owners: map[netip.Addr]*host{}}
	mk := func(name string, n int) *host {
		h := &host{
			name: name,
			s:    stack.New(stack.Config{Name: name, Clock: l.clock}),
			v4:   netip.AddrFrom4([4]byte{10, 0, 0, byte(n)}),
			v6:   netip.AddrFrom16([16]byte{0: 0xfd, 15: byte(n)}),
		}
		nic, err := h.s.AddInterface("eth0", mtu, link{l},
			netip.PrefixFrom(h.v4, 24), netip.PrefixFrom(h.v6, 64))
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		h.nic = nic
		h.udp = udp.New(h.s)
		tb.Cleanup(h.udp.Close)
		l.owners[h.v4], l.owners[h.v6] = h, h
		return h
	}
	l.a, l.b = mk("a", 1), mk("b", 2)
	return l
}

// packets returns copies of the packets carried so far.
func (l *lab) packets() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log)
}

// carried is one packet as the test reads it, parsed without wire's UDP code.
type carried struct {
	src, dst         netip.Addr
	proto            uint8
	payload          []byte // the IP payload
	srcPort, dstPort uint16 // for UDP
}

func parsePacket(tb testing.TB, pkt []byte) carried {
	tb.Helper()
	var c carried
	switch pkt[0] >> 4 {
	case 4:
		ip := wire.IPv4(pkt)
		if err := ip.Check(); err != nil || !ip.ChecksumValid() {
			tb.Fatalf("bad IPv4 packet % x: %v", pkt, err)
		}
		c = carried{src: ip.Src(), dst: ip.Dst(), proto: ip.Protocol(), payload: ip.Payload()}
	case 6:
		ip := wire.IPv6(pkt)
		if err := ip.Check(); err != nil {
			tb.Fatalf("bad IPv6 packet % x: %v", pkt, err)
		}
		c = carried{src: ip.Src(), dst: ip.Dst(), proto: ip.NextHeader(), payload: ip.Payload()}
	default:
		tb.Fatalf("not an IP packet: % x", pkt)
	}
	if c.proto == wire.ProtoUDP && len(c.payload) >= 4 {
		c.srcPort = binary.BigEndian.Uint16(c.payload)
		c.dstPort = binary.BigEndian.Uint16(c.payload[2:])
	}
	return c
}

// naiveUDPCheck verifies a UDP datagram as the RFCs describe it, without
// wire: the length field matches, and the one's complement sum over the
// pseudo-header (RFC 768; RFC 8200 §8.1) and the datagram is all ones with a
// non-zero checksum (this stack always sends one).
func naiveUDPCheck(tb testing.TB, src, dst netip.Addr, d []byte) {
	tb.Helper()
	if len(d) < 8 || int(binary.BigEndian.Uint16(d[4:])) != len(d) {
		tb.Fatalf("UDP length field %d, datagram %d bytes", binary.BigEndian.Uint16(d[4:]), len(d))
	}
	if binary.BigEndian.Uint16(d[6:]) == 0 {
		tb.Fatalf("UDP datagram sent without a checksum")
	}
	var ph []byte
	if src.Is4() {
		s, t := src.As4(), dst.As4()
		ph = slices.Concat(s[:], t[:], []byte{0, wire.ProtoUDP, byte(len(d) >> 8), byte(len(d))})
	} else {
		s, t := src.As16(), dst.As16()
		ph = slices.Concat(s[:], t[:], []byte{byte(len(d) >> 24), byte(len(d) >> 16), byte(len(d) >> 8), byte(len(d)), 0, 0, 0, wire.ProtoUDP})
	}
	b := slices.Concat(ph, d)
	var sum uint64
	for i := 0; i < len(b); i += 2 {
		w := uint64(b[i]) << 8
		if i+1 < len(b) {
			w |= uint64(b[i+1])
		}
		sum += w
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		tb.Errorf("UDP checksum %#04x does not verify (sum %#04x)", binary.BigEndian.Uint16(d[6:]), sum)
	}
}

// udpPacket builds an IP packet carrying a UDP datagram with a correct
// checksum, to inject with Deliver.
func udpPacket(from, to netip.AddrPort, data []byte) []byte {
	h := wire.UDPHeader{SrcPort: from.Port(), DstPort: to.Port()}
	return ipPacket(from.Addr(), to.Addr(), wire.ProtoUDP, h.Marshal(data, from.Addr(), to.Addr()))
}

func ipPacket(src, dst netip.Addr, proto uint8, payload []byte) []byte {
	if src.Is4() {
		h := wire.IPv4Header{TTL: 64, Flags: wire.IPv4FlagDF, Protocol: proto, Src: src, Dst: dst}
		return h.Marshal(payload)
	}
	h := wire.IPv6Header{NextHeader: proto, HopLimit: 64, Src: src, Dst: dst}
	return h.Marshal(payload)
}

// icmpError builds the ICMP or ICMPv6 error that from sends about orig, an
// IP packet (or the start of one) that from received.
func icmpError(from netip.Addr, orig []byte, typ, code uint8, rest uint32) []byte {
	var to netip.Addr // orig's source
	if orig[0]>>4 == 4 {
		to = netip.AddrFrom4([4]byte(orig[12:16]))
	} else {
		to = netip.AddrFrom16([16]byte(orig[8:24]))
	}
	m := wire.ICMPMessage{Type: typ, Code: code, Rest: rest, Body: orig}
	b := make([]byte, m.Len())
	if from.Is4() {
		m.EncodeV4(b)
		return ipPacket(from, to, wire.ProtoICMPv4, b)
	}
	m.EncodeV6(b, from, to)
	return ipPacket(from, to, wire.ProtoICMPv6, b)
}

// family names a subtest.
func family(v6 bool) string {
	if v6 {
		return "v6"
	}
	return "v4"
}

// unspecified is the wildcard address of the family.
func unspecified(v6 bool) netip.Addr {
	if v6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}
