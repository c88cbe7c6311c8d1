// Package stack is labnet's userspace TCP/IP stack: IPv4 (RFC 791), IPv6
// (RFC 8200), ICMP (RFC 792) and ICMPv6 (RFC 4443), a routing table with
// longest-prefix match, and forwarding for hosts that are routers.
//
// The stack does no I/O and keeps no time of its own: packets come in through
// NIC.Receive (rx.go: a bounded queue drained in batches by a worker that
// runs only while there is work) or, synchronously, Stack.Deliver, and leave
// through each interface's Link; time comes from the Clock in Config
// (smoltcp's poll(now) idea), so tests run it in virtual time. It imports nothing from node/, grpc or memberlist.
package stack

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the stack's source of time and timers. The daemon passes
// SystemClock; tests pass a virtual clock (package vclock) and advance it by
// hand, so timer-driven behaviour (retransmission, TIME_WAIT, delayed ACKs)
// runs in microseconds and always the same way.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once, on some goroutine, after d has passed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call; *time.Timer is one.
type Timer interface {
	// Stop prevents the call; it reports whether it did.
	Stop() bool
	// Reset makes the call happen d from now (again); it reports whether
	// the timer was pending.
	Reset(d time.Duration) bool
}

// SystemClock is the machine's clock. Only the daemon passes it in.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Errors returned to local senders.
var (
	ErrNoRoute         = errors.New("network is unreachable")
	ErrHostUnreachable = errors.New("no route to host")
	ErrMessageTooLong  = errors.New("message too long")
	ErrNoAddress       = errors.New("no source address for destination")
	ErrClosed          = errors.New("endpoint closed")
)

// Config configures a Stack.
type Config struct {
	// Name is used in errors only.
	Name string
	// Clock is required.
	Clock Clock
	// Forwarding makes the stack a router (RFC 1812): packets not addressed
	// to it are forwarded instead of dropped.
	Forwarding bool
	// ICMPErrorRate and ICMPErrorBurst bound the ICMP error messages the
	// stack sends (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)); 0 takes the
	// defaults of 1000 per second with a burst of 50, as Linux's
	// icmp_msgs_per_sec / icmp_msgs_burst.
	ICMPErrorRate  float64
	ICMPErrorBurst float64
	// DefaultTTL is the TTL / hop limit of locally sent packets; 64 when 0.
	DefaultTTL uint8
	// Go starts the stack's receive worker (rx.go): it must arrange for f
	// to run once, soon, and not on the caller's goroutine, which holds
	// nothing f needs. nil is the go statement. A test in virtual time
	// passes a function that keeps f and calls it when the test chooses,
	// so received packets are processed on the test's goroutine.
	Go func(f func())
}

// Stack is one virtual host's network stack. All methods are safe for
// concurrent use.
type Stack struct {
	name       string
	clock      Clock
	forwarding bool
	defaultTTL uint8

	mu     sync.Mutex // guards nics, static, echo maps; writers rebuild routes
	nics   []*NIC
	static []Route
	routes atomic.Pointer[routeTable]

	echo4, echo6 map[uint16]*EchoEndpoint
	transports   atomic.Pointer[transports]
	nextIdent    uint16

	ipID     atomic.Uint32
	errLimit tokenBucket
	stats    ipStats

	rx       rxQueue                          // rx.go
	batchers atomic.Pointer[[]BatchTransport] // of the transports, by protocol
	spawn    func(f func())                   // Config.Go
	rxWorker func()                           // s.drainRx, made once
}

// New returns a stack with no interfaces.
func New(cfg Config) *Stack {
	if cfg.Clock == nil {
		panic("stack.New: Config.Clock is nil")
	}
	rate, burst := cfg.ICMPErrorRate, cfg.ICMPErrorBurst
	if rate <= 0 {
		rate = 1000
	}
	if burst <= 0 {
		burst = 50
	}
	ttl := cfg.DefaultTTL
	if ttl == 0 {
		ttl = 64
	}
	s := &Stack{
		name:       cfg.Name,
		clock:      cfg.Clock,
		forwarding: cfg.Forwarding,
		defaultTTL: ttl,
		echo4:      map[uint16]*EchoEndpoint{},
		echo6:      map[uint16]*EchoEndpoint{},
		nextIdent:  1,
	}
	s.rxWorker = s.drainRx
	s.spawn = cfg.Go
	if s.spawn == nil {
		s.spawn = func(f func()) { go f() }
	}
	s.errLimit.init(rate, burst, cfg.Clock.Now())
	s.routes.Store(&routeTable{})
	s.transports.Store(&noTransports)
	s.batchers.Store(&noBatchers)
	return s
}

// A new stack's transports, shared by every stack until it registers one
// (both are replaced whole, never changed): a labd runs 100,000 stacks.
var (
	noTransports transports
	noBatchers   []BatchTransport
)

// Name is the stack's name from Config.
func (s *Stack) Name() string { return s.name }

// Forwarding reports whether the stack forwards packets.
func (s *Stack) Forwarding() bool { return s.forwarding }

// isLocal reports whether a is one of the stack's own addresses.
func (s *Stack) isLocal(a netip.Addr) bool {
	return s.routes.Load().owner(a) != nil
}

// sourceFor picks the source address for a packet leaving through nic to
// dst: the interface's address of dst's family (RFC 1122 §3.3.4.3 / RFC 6724
// rule 5, "prefer outgoing interface"), else any address of that family.
func (s *Stack) sourceFor(nic *NIC, dst netip.Addr) (netip.Addr, bool) {
	if nic != nil {
		if a, ok := nic.addrOf(dst.Is4()); ok {
			return a, true
		}
	}
	for _, n := range s.routes.Load().nics {
		if a, ok := n.addrOf(dst.Is4()); ok {
			return a, true
		}
	}
	return netip.Addr{}, false
}
