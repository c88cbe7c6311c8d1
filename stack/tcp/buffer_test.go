package tcp

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestRing checks the ring against a plain slice through random writes,
// peeks and reads, across growth and wrap-around.
func TestRing(t *testing.T) {
	r := newRing(100 << 10)
	if len(r.buf) != 0 {
		t.Fatal("allocated before use")
	}
	var model []byte
	rng := rand.New(rand.NewPCG(1, 2))
	next := byte(0)
	for i := range 20000 {
		switch rng.IntN(3) {
		case 0:
			p := make([]byte, rng.IntN(9000))
			for j := range p {
				p[j] = next
				next++
			}
			n := r.write(p)
			if want := min(len(p), 100<<10-len(model)); n != want {
				t.Fatalf("step %d: write %d of %d, want %d", i, n, len(p), want)
			}
			model = append(model, p[:n]...)
		case 1:
			off := rng.IntN(len(model) + 1)
			dst := make([]byte, rng.IntN(5000))
			n := r.peek(off, dst)
			want := model[off:min(len(model), off+len(dst))]
			if !bytes.Equal(dst[:n], want) {
				t.Fatalf("step %d: peek(%d) differs", i, off)
			}
			// views sees the same bytes, in one piece or two.
			a, b := r.views(off, n)
			if !bytes.Equal(append(append([]byte(nil), a...), b...), want) || len(b) > 0 && len(a) == 0 {
				t.Fatalf("step %d: views(%d, %d) differ", i, off, n)
			}
		case 2:
			dst := make([]byte, rng.IntN(12000))
			n := r.read(dst)
			if !bytes.Equal(dst[:n], model[:n]) {
				t.Fatalf("step %d: read differs", i)
			}
			model = model[n:]
		}
		if r.len() != len(model) || len(r.buf) > 100<<10 {
			t.Fatalf("step %d: len %d, want %d (storage %d)", i, r.len(), len(model), len(r.buf))
		}
	}
}
