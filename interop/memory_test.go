package interop_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labnet-dev/labnet/interop"
	"github.com/labnet-dev/labnet/stack/tcp"
)

// TestIdleConnMemory measures what one idle established connection costs:
// it opens n connections between two stacks over the link and reports the
// growth of the live heap (and of the resident set) per connection end.
// Both ends of each connection are on the stacks measured, so the totals
// are divided by 2n. It is a measurement rather than a check, and with
// our default buffers (4 MiB each way, allocated when the connection is
// made) it holds gigabytes, so it runs only when asked:
//
//	INTEROP_MEMORY=1 go test -run TestIdleConnMemory -v .
func TestIdleConnMemory(t *testing.T) {
	if os.Getenv("INTEROP_MEMORY") == "" {
		t.Skip("set INTEROP_MEMORY=1 to measure (allocates about 1.6 GiB)")
	}
	labnet := func(opts tcp.Options) func(t *testing.T) (client, server interop.TCPStack, addr netip.AddrPort, done func()) {
		return func(t *testing.T) (interop.TCPStack, interop.TCPStack, netip.AddrPort, func()) {
			p, err := interop.NewLabnetPair(interop.Options{})
			if err != nil {
				t.Fatal(err)
			}
			a, b := tcp.New(p.A, opts), tcp.New(p.B, opts)
			return interop.LabnetTCP{P: a}, interop.LabnetTCP{P: b}, netip.AddrPortFrom(interop.AddrB4, 80), func() {
				a.Close()
				b.Close()
				p.Close()
			}
		}
	}
	gvisor := func(t *testing.T) (interop.TCPStack, interop.TCPStack, netip.AddrPort, func()) {
		p, err := interop.NewGVisorPair(interop.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return interop.GVisorTCP{S: p.A}, interop.GVisorTCP{S: p.B}, netip.AddrPortFrom(interop.AddrB4, 80), p.Close
	}
	for _, c := range []struct {
		name  string
		n     int
		setup func(t *testing.T) (client, server interop.TCPStack, addr netip.AddrPort, done func())
		// used: before going idle, each connection carries 1 MiB each
		// way, so buffers that grow on demand have grown.
		used bool
	}{
		// The cost is linear in n; 100 bounds the heap should buffers be
		// allocated whole (8 MiB a connection end).
		{"labnet/buffers=default", 100, labnet(tcp.Options{}), false},
		{"labnet/buffers=default/used", 100, labnet(tcp.Options{}), true},
		// 1-byte buffers leave what a connection costs besides them.
		{"labnet/buffers=1", 1000, labnet(tcp.Options{SendBuffer: 1, ReceiveBuffer: 1}), false},
		{"gvisor", 1000, gvisor, false},
		{"gvisor/used", 100, gvisor, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			client, server, addr, done := c.setup(t)
			defer done()
			ln, err := server.Listen(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()

			heap0, rss0, g0 := memNow()
			conns := make([]net.Conn, 0, 2*c.n)
			accepted := make(chan net.Conn, c.n)
			go func() {
				for range c.n {
					a, err := ln.Accept()
					if err != nil {
						close(accepted)
						return
					}
					accepted <- a
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for range c.n {
				d, err := client.Dial(ctx, addr)
				if err != nil {
					t.Fatalf("dial %d: %v", len(conns)/2, err)
				}
				a, ok := <-accepted
				if !ok {
					t.Fatalf("accept %d failed", len(conns)/2)
				}
				conns = append(conns, d, a)
				if c.used {
					exercise(t, d, a)
				}
			}
			// Let delayed ACKs and the like settle: idle means idle.
			time.Sleep(100 * time.Millisecond)
			heap1, rss1, g1 := memNow()
			ends := float64(2 * c.n)
			heap, rss := float64(int64(heap1-heap0))/ends, float64(int64(rss1-rss0))/ends
			t.Logf("%d connections (%d ends): heap %+.0f B/end (%.2f MiB), RSS %+.0f B/end, goroutines %+d",
				c.n, 2*c.n, heap, heap/(1<<20), rss, g1-g0)
			for _, cn := range conns {
				cn.Close()
			}
			runtime.KeepAlive(conns)
		})
	}
}

// exercise sends 1 MiB each way over the connection a-b, in 64 KiB
// writes read as they come.
func exercise(t *testing.T, a, b net.Conn) {
	t.Helper()
	const size, chunk = 1 << 20, 64 << 10
	errs := make(chan error, 2)
	for _, p := range [][2]net.Conn{{a, b}, {b, a}} {
		go func() {
			buf := make([]byte, chunk)
			for range size / chunk {
				if _, err := p[0].Write(buf); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for _, c := range []net.Conn{a, b} {
		if _, err := io.ReadFull(c, make([]byte, size)); err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("write: %v", err)
		}
	}
}

// memNow returns the live heap after a full collection, the resident set
// size, and the goroutine count.
func memNow() (heap, rss uint64, goroutines int) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			rss = pages * uint64(os.Getpagesize())
		}
	}
	return ms.HeapAlloc, rss, runtime.NumGoroutine()
}
