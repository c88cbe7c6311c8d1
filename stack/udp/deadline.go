package udp

import (
	"sync"
	"time"
)

// deadline is one direction's net.Conn deadline: a channel that is closed
// when it passes. Deadlines are wall-clock times by net.Conn's contract, so
// this is the one place the package uses the time package's clock; the
// stack's clock (virtual in tests) drives everything else. The scheme is
// gVisor gonet's deadlineTimer: a pending operation selects on the channel
// it got when it started, and moving the deadline keeps that channel
// whenever the old timer could still be stopped, so "a deadline applies to
// all future and pending I/O" (net.Conn).
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
}

func newDeadline() *deadline { return &deadline{ch: make(chan struct{})} }

// set moves the deadline to t; the zero t means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		// The old timer fired or is firing: its channel is (about to
		// be) closed and cannot be reused.
		d.ch = make(chan struct{})
	}
	d.timer = nil
	// A deadline set in the past closed the channel directly.
	select {
	case <-d.ch:
		d.ch = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(d.ch)
		return
	}
	ch := d.ch // the timer closes this one, even if set replaces d.ch later
	d.timer = time.AfterFunc(wait, func() { close(ch) })
}

// done returns a channel that is closed once the deadline passes.
func (d *deadline) done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// passed reports whether the deadline has passed.
func (d *deadline) passed() bool {
	select {
	case <-d.done():
		return true
	default:
		return false
	}
}

// stop releases the timer.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
