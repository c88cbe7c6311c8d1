package tcp

// seq is a TCP sequence number: arithmetic modulo 2^32 (RFC 9293 §3.4).
type seq uint32

func (a seq) lt(b seq) bool  { return int32(a-b) < 0 }
func (a seq) leq(b seq) bool { return int32(a-b) <= 0 }
func (a seq) gt(b seq) bool  { return int32(a-b) > 0 }
func (a seq) geq(b seq) bool { return int32(a-b) >= 0 }

// add and sub move by n bytes.
func (a seq) add(n int) seq { return a + seq(n) }

// diff is a-b as a signed distance.
func (a seq) diff(b seq) int { return int(int32(a - b)) }

// inWindow reports lo <= a < lo+n.
func (a seq) inWindow(lo seq, n int) bool { return a.geq(lo) && a.lt(lo.add(n)) }

func maxSeq(a, b seq) seq {
	if a.gt(b) {
		return a
	}
	return b
}

func minSeq(a, b seq) seq {
	if a.lt(b) {
		return a
	}
	return b
}
