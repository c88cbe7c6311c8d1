package tcp

import (
	"net/netip"
	"testing"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// BenchmarkDemux measures finding a segment's connection among 1000: the
// one-entry cache hit of a bulk flow (cached), the map lookup it spares
// (map), and a cache miss, which pays the map and a store (miss).
func BenchmarkDemux(b *testing.B) {
	s := stack.New(stack.Config{Name: "h", Clock: stack.SystemClock{}})
	p := New(s, Options{})
	defer p.Close()
	local := netip.MustParseAddrPort("10.0.0.1:80")
	var remotes []netip.AddrPort
	for i := range 1000 {
		r := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 40000)
		path, err := s.NewPath(local.Addr(), r.Addr(), wire.ProtoTCP)
		if err != nil {
			b.Fatal(err)
		}
		p.conns[fourTuple{local, r}] = newEndpoint(p, local, r, path)
		remotes = append(remotes, r)
	}
	r0, r1 := remotes[10], remotes[500]
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if p.connection(local, r0) == nil {
				b.Fatal("not found")
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			p.mu.RLock()
			e := p.conns[fourTuple{local, r0}]
			p.mu.RUnlock()
			if e == nil {
				b.Fatal("not found")
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		i := 0
		for b.Loop() {
			r := r0
			if i++; i&1 == 0 {
				r = r1
			}
			if p.connection(local, r) == nil {
				b.Fatal("not found")
			}
		}
	})
}
