package stack_test

import (
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// discardLink accepts and drops every packet.
type discardLink struct{ n atomic.Int64 }

func (l *discardLink) Send(netip.Addr, []byte) error { l.n.Add(1); return nil }

func benchmarkForward(b *testing.B, v6 bool) {
	s := stack.New(stack.Config{Name: "r1", Clock: newFakeClock(), Forwarding: true})
	var in, out discardLink
	eth0, err := s.AddInterface("eth0", 1500, &in, netip.MustParsePrefix("10.0.1.1/24"), netip.MustParsePrefix("fd00:0:0:1::1/64"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.AddInterface("eth1", 1500, &out, netip.MustParsePrefix("10.0.2.1/24"), netip.MustParsePrefix("fd00:0:0:2::1/64")); err != nil {
		b.Fatal(err)
	}
	const size = 1400
	tmpl := ipPacket(addr(v6, 1, 10), addr(v6, 2, 10), 64, wire.ProtoUDP, payload(size-ipHeaderLen(v6)))
	buf := make([]byte, len(tmpl))
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		// Forwarding rewrites the TTL in place: start from a fresh copy.
		copy(buf, tmpl)
		s.Deliver(eth0, buf)
	}
	b.StopTimer()
	if st := s.Stats(); st.Forwarded != uint64(out.n.Load()) || st.Forwarded == 0 || in.n.Load() != 0 {
		b.Fatalf("stats %+v, %d sent", st, out.n.Load())
	}
}

// BenchmarkForward4 forwards a 1400-byte IPv4 packet through a router.
func BenchmarkForward4(b *testing.B) { benchmarkForward(b, false) }

// BenchmarkForward6 forwards a 1400-byte IPv6 packet through a router.
func BenchmarkForward6(b *testing.B) { benchmarkForward(b, true) }
