// Package vclock is a virtual clock for tests: time stands still until the
// test advances it, and timers fire, in order and on the caller's goroutine,
// as it passes their deadline. It implements stack.Clock.
package vclock

import (
	"container/heap"
	"sync"
	"time"

	"github.com/labnet-dev/labnet/stack"
)

// Epoch is where every Clock starts: a fixed instant, so that tests print
// the same times on every run.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Clock is a virtual clock. The zero value is not usable; call New.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers timerHeap
	seq    uint64
}

// New returns a clock at Epoch.
func New() *Clock { return &Clock{now: Epoch} }

// Now returns the virtual time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at now+d.
func (c *Clock) AfterFunc(d time.Duration, f func()) stack.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &Timer{c: c, f: f, index: -1}
	c.schedule(t, d)
	return t
}

func (c *Clock) schedule(t *Timer, d time.Duration) {
	c.seq++
	t.when, t.seq = c.now.Add(max(d, 0)), c.seq
	heap.Push(&c.timers, t)
}

// Next returns the deadline of the earliest pending timer.
func (c *Clock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].when, true
}

// Pending is the number of pending timers.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves time forward by d, firing every timer that falls due, in
// deadline order, with Now reading each timer's deadline while it runs.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	c.AdvanceTo(end)
}

// AdvanceTo moves time forward to end (never backwards), firing due timers.
func (c *Clock) AdvanceTo(end time.Time) {
	for {
		c.mu.Lock()
		if len(c.timers) == 0 || c.timers[0].when.After(end) {
			if end.After(c.now) {
				c.now = end
			}
			c.mu.Unlock()
			return
		}
		t := heap.Pop(&c.timers).(*Timer)
		if t.when.After(c.now) {
			c.now = t.when
		}
		f := t.f
		c.mu.Unlock()
		f()
	}
}

// Timer is a pending call of a Clock.
type Timer struct {
	c     *Clock
	f     func()
	when  time.Time
	seq   uint64
	index int // in the heap; -1 when not pending
}

// Stop cancels the call.
func (t *Timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.c.timers, t.index)
	return true
}

// Reset reschedules the call d from now.
func (t *Timer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	pending := t.index >= 0
	if pending {
		heap.Remove(&t.c.timers, t.index)
	}
	t.c.schedule(t, d)
	return pending
}

type timerHeap []*Timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*Timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
