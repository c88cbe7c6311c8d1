package store

import (
	"sync"
	"time"
)

// Stamp orders writes: a hybrid logical clock reading (Kulkarni et al.,
// "Logical Physical Clocks", 2014) packed as wall milliseconds << 16 |
// logical counter, with the writing node's name to break ties. The larger
// (Time, Origin) wins.
type Stamp struct {
	Time   uint64
	Origin string
}

// After reports whether a wins over b.
func (a Stamp) After(b Stamp) bool {
	if a.Time != b.Time {
		return a.Time > b.Time
	}
	return a.Origin > b.Origin
}

// Wall is the wall-clock part of the stamp.
func (a Stamp) Wall() time.Time { return time.UnixMilli(int64(a.Time >> 16)) }

// hlc is a hybrid logical clock.
type hlc struct {
	mu   sync.Mutex
	now  func() time.Time
	last uint64
}

// next returns a stamp time greater than every one seen so far.
func (c *hlc) next() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := uint64(c.now().UnixMilli()) << 16
	if wall > c.last {
		c.last = wall
	} else {
		c.last++
	}
	return c.last
}

// observe moves the clock past a time seen from elsewhere (or from disk).
func (c *hlc) observe(t uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t > c.last {
		c.last = t
	}
}
