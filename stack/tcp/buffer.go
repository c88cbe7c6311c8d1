package tcp

// ring is a byte ring buffer of fixed capacity: the send queue (bytes from
// snd.una on) and the receive queue (in-order bytes not yet read).
type ring struct {
	buf   []byte
	start int
	n     int
}

func newRing(capacity int) ring { return ring{buf: make([]byte, capacity)} }

func (r *ring) len() int  { return r.n }
func (r *ring) free() int { return len(r.buf) - r.n }
func (r *ring) cap() int  { return len(r.buf) }

// write appends as much of p as fits and returns how much did.
func (r *ring) write(p []byte) int {
	n := min(len(p), r.free())
	end := (r.start + r.n) % len(r.buf)
	c := copy(r.buf[end:], p[:n])
	copy(r.buf, p[c:n])
	r.n += n
	return n
}

// peek copies bytes from offset off into dst and returns how many.
func (r *ring) peek(off int, dst []byte) int {
	if off >= r.n {
		return 0
	}
	n := min(len(dst), r.n-off)
	pos := (r.start + off) % len(r.buf)
	c := copy(dst[:n], r.buf[pos:])
	copy(dst[c:n], r.buf)
	return n
}

// discard drops n bytes from the front.
func (r *ring) discard(n int) {
	n = min(n, r.n)
	r.start = (r.start + n) % len(r.buf)
	r.n -= n
	if r.n == 0 {
		r.start = 0
	}
}

// read moves bytes from the front into p.
func (r *ring) read(p []byte) int {
	n := r.peek(0, p)
	r.discard(n)
	return n
}
