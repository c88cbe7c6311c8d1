package wire

import "testing"

func BenchmarkSum1460(b *testing.B) {
	buf := make([]byte, 1460)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		Sum(buf, 0)
	}
}
