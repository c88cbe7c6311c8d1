// Package deadline is a net.Conn deadline for the stack's sockets (TCP and
// UDP): a channel closed when the deadline passes.
package deadline

import (
	"sync"
	"time"
)

// Deadline is one direction's net.Conn deadline: a channel that is closed
// when it passes. Deadlines are wall-clock times by net.Conn's contract, so
// this is the one place the package uses the time package's clock; the
// stack's clock (virtual in tests) drives everything else. The scheme is
// gVisor gonet's deadlineTimer: a pending operation selects on the channel
// it got when it started, and moving the deadline keeps that channel
// whenever the old timer could still be stopped, so "a deadline applies to
// all future and pending I/O" (net.Conn).
type Deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
}

// New returns a deadline that is not set.
func New() *Deadline { return &Deadline{ch: make(chan struct{})} }

// Set moves the deadline to t; the zero t means none.
func (d *Deadline) Set(t time.Time) {
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

// Done returns a channel that is closed once the deadline passes.
func (d *Deadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// Passed reports whether the deadline has passed.
func (d *Deadline) Passed() bool {
	select {
	case <-d.Done():
		return true
	default:
		return false
	}
}

// Stop releases the timer.
func (d *Deadline) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
