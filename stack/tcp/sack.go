package tcp

import "github.com/labnet-dev/labnet/stack/wire"

// scoreboard is the sender's record of SACKed data (RFC 6675 §3): sorted,
// disjoint ranges above snd.una.
type scoreboard struct {
	ranges []span
}

// span is [start, end) in sequence space.
type span struct{ start, end seq }

func (s span) len() int { return s.end.diff(s.start) }

// add records a SACK block, ignoring what is at or below una or beyond nxt
// (RFC 2018 §5 and RFC 6675 §5.1: blocks that lie outside the window are
// not believed).
func (b *scoreboard) add(blk wire.SACKBlock, una, nxt seq) {
	s := span{seq(blk.Left), seq(blk.Right)}
	if !s.start.lt(s.end) || s.end.leq(una) || s.end.gt(nxt) {
		return
	}
	if s.start.lt(una) {
		s.start = una
	}
	out := b.ranges[:0:0]
	placed := false
	for _, r := range b.ranges {
		switch {
		case r.end.lt(s.start):
			out = append(out, r)
		case s.end.lt(r.start):
			if !placed {
				out = append(out, s)
				placed = true
			}
			out = append(out, r)
		default: // overlapping or adjacent: merge
			s.start, s.end = minSeq(s.start, r.start), maxSeq(s.end, r.end)
		}
	}
	if !placed {
		out = append(out, s)
	}
	b.ranges = out
}

// ack forgets everything below una.
func (b *scoreboard) ack(una seq) {
	i := 0
	for i < len(b.ranges) && b.ranges[i].end.leq(una) {
		i++
	}
	b.ranges = b.ranges[i:]
	if len(b.ranges) > 0 && b.ranges[0].start.lt(una) {
		b.ranges[0].start = una
	}
	if len(b.ranges) == 0 {
		b.ranges = nil
	}
}

// sacked reports whether s is SACKed.
func (b *scoreboard) sacked(s seq) bool {
	for _, r := range b.ranges {
		if s.geq(r.start) && s.lt(r.end) {
			return true
		}
	}
	return false
}

// unsacked counts the bytes in [from, to) that are not SACKed.
func (b *scoreboard) unsacked(from, to seq) int {
	if !from.lt(to) {
		return 0
	}
	n := to.diff(from)
	for _, r := range b.ranges {
		lo, hi := maxSeq(r.start, from), minSeq(r.end, to)
		if lo.lt(hi) {
			n -= hi.diff(lo)
		}
	}
	return n
}

// nextHole returns the first byte at or after s that is not SACKed and the
// end of the hole it starts (the next SACKed byte, or limit).
func (b *scoreboard) nextHole(s, limit seq) (seq, seq) {
	for _, r := range b.ranges {
		if s.lt(r.start) {
			return s, minSeq(r.start, limit)
		}
		if s.lt(r.end) {
			s = r.end
		}
	}
	return s, limit
}

// lostEdge is RFC 6675's IsLost boundary: every unSACKed byte below the
// returned sequence has at least thresh bytes SACKed above it (§4,
// IsLost, counted in bytes: "more than (DupThresh - 1) * SMSS bytes"), and
// counts as lost. It returns una when nothing is.
func (b *scoreboard) lostEdge(una seq, thresh int) seq {
	c := 0
	for i := len(b.ranges) - 1; i >= 0; i-- {
		r := b.ranges[i]
		if c+r.len() >= thresh {
			return r.end.add(-(thresh - c))
		}
		c += r.len()
	}
	return una
}
