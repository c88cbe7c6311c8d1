package interop_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/interop"
	"github.com/labnet-dev/labnet/stack/tcp"
)

// benchMTUs are the link MTUs the TCP benchmarks run at.
var benchMTUs = []int{1500, 9000}

// BenchmarkGVisorTCP measures gVisor's TCP between two gVisor stacks over
// the byte-copying link: the baseline our TCP is held to (twice this at
// MTU 1500).
func BenchmarkGVisorTCP(b *testing.B) {
	for _, mtu := range benchMTUs {
		b.Run(fmt.Sprintf("mtu=%d", mtu), func(b *testing.B) {
			p, err := interop.NewGVisorPair(interop.Options{MTU: mtu})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			benchmarkTCP(b, interop.GVisorTCP{S: p.A}, interop.GVisorTCP{S: p.B}, netip.AddrPortFrom(interop.AddrB4, 5001))
			logLink(b, p.Wire, true)
		})
	}
}

// BenchmarkLabnetTCP measures our TCP between two of our stacks over the
// same link, in the same shape as BenchmarkGVisorTCP.
func BenchmarkLabnetTCP(b *testing.B) {
	for _, mtu := range benchMTUs {
		b.Run(fmt.Sprintf("mtu=%d", mtu), func(b *testing.B) {
			p, err := interop.NewLabnetPair(interop.Options{MTU: mtu})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			client, server := tcp.New(p.A, tcp.Options{}), tcp.New(p.B, tcp.Options{})
			defer client.Close()
			defer server.Close()
			benchmarkTCP(b, interop.LabnetTCP{P: client}, interop.LabnetTCP{P: server}, netip.AddrPortFrom(interop.AddrB4, 5001))
			logLink(b, p.Wire, true)
		})
	}
}

// BenchmarkMixedTCP measures our TCP talking to gVisor's, each as the
// sender.
func BenchmarkMixedTCP(b *testing.B) {
	for _, dir := range []string{"labnet-to-gvisor", "gvisor-to-labnet"} {
		for _, mtu := range benchMTUs {
			b.Run(fmt.Sprintf("%s/mtu=%d", dir, mtu), func(b *testing.B) {
				m, err := interop.NewMixed(interop.Options{MTU: mtu})
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				ours := tcp.New(m.Labnet, tcp.Options{})
				defer ours.Close()
				if dir == "labnet-to-gvisor" {
					benchmarkTCP(b, interop.LabnetTCP{P: ours}, interop.GVisorTCP{S: m.GVisor}, netip.AddrPortFrom(interop.AddrB4, 5001))
				} else {
					benchmarkTCP(b, interop.GVisorTCP{S: m.GVisor}, interop.LabnetTCP{P: ours}, netip.AddrPortFrom(interop.AddrA4, 5001))
				}
				logLink(b, m.Wire, dir == "labnet-to-gvisor")
			})
		}
	}
}

// logLink reports packets the link's queue dropped (the sender outran the
// receiver's goroutine) and, as a metric, how many packets went back
// (ACKs) per packet forward (data), the receiver's ACK ratio. clientA says
// the client is on side A.
func logLink(b *testing.B, w *interop.Wire, clientA bool) {
	fwd, back := w.Stats()
	if !clientA {
		fwd, back = back, fwd
	}
	if fwd.QueueDrops+back.QueueDrops > 0 {
		b.Logf("link queue dropped %d data and %d ACK packets", fwd.QueueDrops, back.QueueDrops)
	}
	if fwd.Sent > 0 {
		b.ReportMetric(float64(back.Sent)/float64(fwd.Sent), "acks/pkt")
	}
}

// benchChunk is what one benchmark iteration writes.
const benchChunk = 64 << 10

// benchmarkTCP sends b.N chunks from client to a server listening on addr,
// which reads and discards them, and reports the goodput in Gbit/s. The
// timer runs until the server has read the last byte.
func benchmarkTCP(b *testing.B, client, server interop.TCPStack, addr netip.AddrPort) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := server.Listen(addr)
	if err != nil {
		b.Fatalf("listen on %v: %v", addr, err)
	}
	defer ln.Close()

	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		n, err := discard(c)
		done <- result{n, err}
	}()

	c, err := client.Dial(ctx, addr)
	if err != nil {
		b.Fatalf("dial %v: %v", addr, err)
	}
	defer c.Close()
	buf := make([]byte, benchChunk)
	b.SetBytes(benchChunk)
	b.ResetTimer()
	// A b.N loop rather than b.Loop: the timer must also cover the wait
	// for the server to read the last byte, after the loop.
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatalf("write: %v", err)
		}
	}
	if err := closeWrite(c); err != nil {
		b.Fatalf("close write: %v", err)
	}
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		b.Fatal("server did not read everything in a minute")
	}
	b.StopTimer()
	if r.err != nil {
		b.Fatalf("server read: %v", r.err)
	}
	if want := int64(b.N) * benchChunk; r.n != want {
		b.Fatalf("server read %d bytes, want %d", r.n, want)
	}
	b.ReportMetric(float64(r.n)*8/b.Elapsed().Seconds()/1e9, "Gbit/s")
}

// discard reads c to EOF with a large buffer (io.Copy into io.Discard
// would read 8 KiB at a time) and returns the byte count.
func discard(c net.Conn) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := c.Read(buf)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// closeWrite sends a FIN, or closes c if it cannot half-close.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
