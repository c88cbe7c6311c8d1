package tcp

// ring is a byte ring buffer holding at most limit bytes: the send queue
// (bytes from snd.una on) and the receive queue (in-order bytes not yet
// read). Its storage grows on demand, so an idle connection costs little
// whatever its buffer limits.
type ring struct {
	buf   []byte
	start int
	n     int
	limit int
}

// minRing is the first allocation.
const minRing = 4 << 10

func newRing(limit int) ring { return ring{limit: limit} }

func (r *ring) len() int  { return r.n }
func (r *ring) free() int { return r.limit - r.n }
func (r *ring) cap() int  { return r.limit }

// grow makes room for need bytes in all.
func (r *ring) grow(need int) {
	if need <= len(r.buf) {
		return
	}
	size := max(len(r.buf), minRing)
	for size < need {
		size *= 2
	}
	size = min(size, r.limit)
	nb := make([]byte, size)
	r.peek(0, nb[:r.n])
	r.buf, r.start = nb, 0
}

// write appends as much of p as fits and returns how much did.
func (r *ring) write(p []byte) int {
	n := min(len(p), r.free())
	if n == 0 {
		return 0
	}
	r.grow(r.n + n)
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

// views returns the n bytes from offset off as one or two slices of the
// ring's storage (two when they wrap around its end), for the caller to
// copy from before the ring changes. n must not exceed len()-off.
func (r *ring) views(off, n int) (first, second []byte) {
	if n <= 0 {
		return nil, nil
	}
	pos := (r.start + off) % len(r.buf)
	if pos+n <= len(r.buf) {
		return r.buf[pos : pos+n], nil
	}
	return r.buf[pos:], r.buf[:n-(len(r.buf)-pos)]
}

// discard drops n bytes from the front.
func (r *ring) discard(n int) {
	n = min(n, r.n)
	if n == 0 {
		return
	}
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
