package services

import (
	"io"
	"testing"
	"time"
)

// BenchmarkDiscardTCP measures the discard service as the sink of a TCP
// transfer over the kernel's loopback (the labctl bench receiver).
func BenchmarkDiscardTCP(b *testing.B) {
	_, n := startServices(b, "discard")
	c := dialTCP(b, n.addr(b, "tcp", 9))
	c.SetDeadline(time.Time{})
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	// Count the time until the server has read it all.
	c.CloseWrite()
	if _, err := io.Copy(io.Discard, c); err != nil {
		b.Fatal(err)
	}
}
