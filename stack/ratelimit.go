package stack

import (
	"sync"
	"time"
)

// tokenBucket limits ICMP error messages. RFC 4443 §2.4(f) asks for a
// token bucket ("B" tokens filled at rate "N" per second) and RFC 1812
// §4.3.2.8 for some limit on every ICMP error a router sends; Linux limits
// the same way (net.ipv4.icmp_msgs_per_sec, icmp_msgs_burst).
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func (b *tokenBucket) init(rate, burst float64, now time.Time) {
	b.rate, b.burst, b.tokens, b.last = rate, burst, burst, now
}

// allow takes a token if one is available at now.
func (b *tokenBucket) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
