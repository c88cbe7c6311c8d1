package udp_test

import (
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkSendReceive measures one datagram from a socket on one stack to a
// socket on another and back out of its queue: UDP and IP both ways of the
// synchronous test link, without the fabric.
func BenchmarkSendReceive(b *testing.B) {
	for _, size := range []int{64, 1024, 1400} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			l := newLab(b, 0)
			l.noLog = true
			server := listen(b, l.b, netip.AddrPortFrom(l.b.v4, 9))
			client := dial(b, l.a, netip.AddrPort{}, netip.AddrPortFrom(l.b.v4, 9))
			msg := make([]byte, size)
			buf := make([]byte, 2048)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := server.ReadFromUDPAddrPort(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
