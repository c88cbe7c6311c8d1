package overlay

// replayWindow is the anti-replay window of one sender (RFC 4303 §3.4.3):
// it remembers the highest counter accepted and which of the counters
// below it, within the window, were accepted. A counter above the highest
// is new and moves the window; one inside it is new unless its bit is set;
// one below it is too old. The bitmap is RFC 6479's ring of 64-bit blocks:
// moving the window clears whole blocks instead of shifting bits, so a
// packet costs O(1) whatever the jump. 2,048 bits as WireGuard keeps; one
// block is the one being filled, so the window proper is 1,984 counters.
//
// A window is not safe for concurrent use: only the receive path touches
// it, under Conn.rxMu.
type replayWindow struct {
	top    uint64 // the highest counter accepted
	any    bool   // whether any was
	blocks [replayBlocks]uint64
}

const (
	replayBlocks = 2048 / 64
	// ReplayWindow is how far below the highest accepted counter a
	// counter may be and still be accepted (once).
	ReplayWindow = (replayBlocks - 1) * 64
)

// replayVerdict is why check refused a counter.
type replayVerdict uint8

const (
	replayOK replayVerdict = iota
	replayDuplicate
	replayTooOld
)

// check says whether counter may be accepted, without changing the
// window: RFC 4303 §3.4.3 checks before verifying the packet (cheap
// rejection of duplicates) and updates only after the tag verifies, so
// that a forged packet never moves the window.
func (w *replayWindow) check(counter uint64) replayVerdict {
	if !w.any || counter > w.top {
		return replayOK
	}
	if w.top-counter >= ReplayWindow {
		return replayTooOld
	}
	if w.blocks[(counter/64)%replayBlocks]&(1<<(counter%64)) != 0 {
		return replayDuplicate
	}
	return replayOK
}

// accept records counter, which check allowed and whose packet verified.
func (w *replayWindow) accept(counter uint64) {
	if !w.any || counter > w.top {
		cur, next := w.top/64, counter/64
		if !w.any {
			cur = next - 1 // clears the block counter falls in (the window is empty)
		}
		// RFC 6479 §2: clear the blocks the window moves past, at most
		// all of them.
		for i := uint64(1); i <= min(next-cur, replayBlocks); i++ {
			w.blocks[(cur+i)%replayBlocks] = 0
		}
		w.top, w.any = counter, true
	}
	w.blocks[(counter/64)%replayBlocks] |= 1 << (counter % 64)
}
