package overlay

import "testing"

// use runs counters through a window as the receive path does: check,
// then accept what passed.
func use(w *replayWindow, ctrs ...uint64) []replayVerdict {
	var out []replayVerdict
	for _, c := range ctrs {
		v := w.check(c)
		if v == replayOK {
			w.accept(c)
		}
		out = append(out, v)
	}
	return out
}

func TestReplayWindow(t *testing.T) {
	const base = 1 << 40
	for _, tc := range []struct {
		name string
		ctrs []uint64
		want []replayVerdict
	}{
		{"in order", []uint64{base, base + 1, base + 2, base + 3}, []replayVerdict{replayOK, replayOK, replayOK, replayOK}},
		{"reordered within the window", []uint64{base + 10, base + 3, base + 9, base + 4, base + 10 - ReplayWindow + 1},
			[]replayVerdict{replayOK, replayOK, replayOK, replayOK, replayOK}},
		{"replay", []uint64{base, base + 1, base, base + 1, base + 1}, []replayVerdict{replayOK, replayOK, replayDuplicate, replayDuplicate, replayDuplicate}},
		{"replay of a reordered one", []uint64{base + 5, base + 2, base + 2}, []replayVerdict{replayOK, replayOK, replayDuplicate}},
		{"too old", []uint64{base + ReplayWindow, base, base + 1}, []replayVerdict{replayOK, replayTooOld, replayOK}},
		{"just inside and just outside", []uint64{base + 5000, base + 5000 - ReplayWindow + 1, base + 5000 - ReplayWindow},
			[]replayVerdict{replayOK, replayOK, replayTooOld}},
		{"jump ahead clears what it passes", []uint64{base, base + 1, base + 100000, base + 100000 - 64, base + 1, base + 100000}, []replayVerdict{replayOK, replayOK, replayOK, replayOK, replayTooOld, replayDuplicate}},
		{"jump of less than the ring keeps what is in the window", []uint64{base, base + 64*20, base, base + 64*20 - 1},
			[]replayVerdict{replayOK, replayOK, replayDuplicate, replayOK}},
		{"jump of exactly the ring", []uint64{base + 63, base + 63 + 64*replayBlocks, base + 63 + 64*replayBlocks - 64},
			[]replayVerdict{replayOK, replayOK, replayOK}},
		{"counter zero first", []uint64{0, 0, 1, 0}, []replayVerdict{replayOK, replayDuplicate, replayOK, replayDuplicate}},
		{"top of the range", []uint64{^uint64(0), ^uint64(0), ^uint64(0) - 1}, []replayVerdict{replayOK, replayDuplicate, replayOK}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w replayWindow
			got := use(&w, tc.ctrs...)
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Errorf("counter %d (#%d): verdict %d, want %d (all: %v)", tc.ctrs[i], i, got[i], tc.want[i], got)
				}
			}
		})
	}
}

// TestReplayWindowCheckDoesNotRecord: a counter whose packet failed its tag
// (checked, never accepted) is still accepted afterwards.
func TestReplayWindowCheckDoesNotRecord(t *testing.T) {
	var w replayWindow
	use(&w, 100)
	if w.check(1000) != replayOK || w.check(1000) != replayOK {
		t.Fatal("check refused a new counter")
	}
	if v := use(&w, 99, 1000); v[0] != replayOK || v[1] != replayOK {
		t.Fatalf("verdicts %v", v)
	}
}

// TestReplayWindowEveryCounterOnce: across a long run with random
// reordering, every counter is accepted at most once and none within the
// window is refused the first time.
func TestReplayWindowEveryCounterOnce(t *testing.T) {
	var w replayWindow
	seen := map[uint64]bool{}
	x := uint64(88172645463325252)
	for i := uint64(0); i < 200000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		c := i + x%3000 // up to 3,000 ahead: some reorder past the window
		v := use(&w, c)[0]
		if v == replayOK {
			if seen[c] {
				t.Fatalf("counter %d accepted twice", c)
			}
			seen[c] = true
		} else if v == replayDuplicate && !seen[c] {
			t.Fatalf("counter %d refused as a duplicate, never accepted", c)
		}
	}
}
