package udp

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/labnet-dev/labnet/stack"
	"github.com/labnet-dev/labnet/stack/wire"
)

// errProtocolClosed is what a socket call gets once Protocol.Close has run.
var errProtocolClosed = net.ErrClosed

// icmpErrno is the errno Linux reports for an ICMP error about one of our
// datagrams, and whether the error is "hard": reported to a connected socket
// even without IP_RECVERR (net/ipv4/icmp.c icmp_err_convert, net/ipv6/icmp.c
// icmpv6_err_convert, and __udp4_lib_err / __udp6_lib_err, which make a
// fragmentation-needed or packet-too-big hard for a socket that does path
// MTU discovery, as ours always do: the stack never fragments).
func icmpErrno(ie stack.ICMPError) (syscall.Errno, bool) {
	if ie.Src.Is4() {
		switch ie.Type {
		case wire.ICMPv4DestUnreach:
			if ie.Code == wire.ICMPv4FragNeeded {
				return syscall.EMSGSIZE, true
			}
			if int(ie.Code) < len(unreach4) {
				u := unreach4[ie.Code]
				return u.errno, u.hard
			}
			return syscall.EHOSTUNREACH, false
		case wire.ICMPv4ParamProblem:
			return syscall.EPROTO, true
		}
		return syscall.EHOSTUNREACH, false // time exceeded: a soft error
	}
	switch ie.Type {
	case wire.ICMPv6DestUnreach:
		if int(ie.Code) < len(unreach6) {
			u := unreach6[ie.Code]
			return u.errno, u.hard
		}
		return syscall.EPROTO, true
	case wire.ICMPv6PacketTooBig:
		return syscall.EMSGSIZE, true
	case wire.ICMPv6ParamProblem:
		return syscall.EPROTO, true
	case wire.ICMPv6TimeExceeded:
		return syscall.EHOSTUNREACH, false
	}
	return syscall.EPROTO, false
}

type unreach struct {
	errno syscall.Errno
	hard  bool
}

// unreach4 is by ICMPv4 destination unreachable code (RFC 792, RFC 1122
// §3.2.2.1, RFC 1812 §5.2.7.1).
var unreach4 = [...]unreach{
	{syscall.ENETUNREACH, false},  // 0 net unreachable
	{syscall.EHOSTUNREACH, false}, // 1 host unreachable
	{syscall.ENOPROTOOPT, true},   // 2 protocol unreachable
	{syscall.ECONNREFUSED, true},  // 3 port unreachable
	{syscall.EMSGSIZE, false},     // 4 fragmentation needed (handled above)
	{syscall.EOPNOTSUPP, false},   // 5 source route failed
	{syscall.ENETUNREACH, true},   // 6 destination network unknown
	{syscall.EHOSTDOWN, true},     // 7 destination host unknown
	{errnoSourceIsolated, true},   // 8 source host isolated
	{syscall.ENETUNREACH, true},   // 9 network administratively prohibited
	{syscall.EHOSTUNREACH, true},  // 10 host administratively prohibited
	{syscall.ENETUNREACH, false},  // 11 network unreachable for TOS
	{syscall.EHOSTUNREACH, false}, // 12 host unreachable for TOS
	{syscall.EHOSTUNREACH, true},  // 13 communication administratively prohibited
	{syscall.EHOSTUNREACH, true},  // 14 host precedence violation
	{syscall.EHOSTUNREACH, true},  // 15 precedence cutoff in effect
}

// unreach6 is by ICMPv6 destination unreachable code (RFC 4443 §3.1).
var unreach6 = [...]unreach{
	{syscall.ENETUNREACH, false},  // 0 no route to destination
	{syscall.EACCES, true},        // 1 administratively prohibited
	{syscall.EHOSTUNREACH, false}, // 2 beyond scope of source address
	{syscall.EHOSTUNREACH, false}, // 3 address unreachable
	{syscall.ECONNREFUSED, true},  // 4 port unreachable
	{syscall.EACCES, true},        // 5 source address failed policy
	{syscall.EACCES, true},        // 6 reject route to destination
}

// sendErrno turns the stack's errors into the errno a Linux sendmsg(2)
// returns for the same reason, so that callers test for one set of errors
// whichever stack they run on.
func sendErrno(err error) error {
	switch {
	case errors.Is(err, stack.ErrNoRoute):
		return syscall.ENETUNREACH
	case errors.Is(err, stack.ErrHostUnreachable):
		return syscall.EHOSTUNREACH
	case errors.Is(err, stack.ErrMessageTooLong):
		return syscall.EMSGSIZE
	case errors.Is(err, stack.ErrNoAddress):
		return syscall.EADDRNOTAVAIL
	}
	return err
}

// Path MTU bounds: RFC 1191 §3 / RFC 791 (68, the IPv4 minimum), RFC 8201 §4
// (a packet-too-big below 1280 never lowers the estimate under the IPv6
// minimum).
const (
	minPMTU4 = 68
	minPMTU6 = wire.IPv6MinMTU

	// pmtuExpiry is how long a learned path MTU holds: RFC 1191 §6.3 and
	// RFC 8201 §5.3 suggest ten minutes, Linux's mtu_expires is 600 s.
	pmtuExpiry = 10 * time.Minute
	// pmtuMax bounds the cache; forged errors cannot grow it further.
	pmtuMax = 1024
)

// pmtuCache holds the path MTUs learned from fragmentation-needed and
// packet-too-big errors, per destination, so that a send larger than the
// path allows fails with EMSGSIZE as it does on Linux with IP_PMTUDISC_DO.
// The stack keeps none of its own: it knows only its interfaces' MTUs.
// Times are the stack clock's.
type pmtuCache struct {
	mu sync.Mutex
	m  map[netip.Addr]pmtuEntry
	// size is len(m), for get to skip the lock while nothing has been
	// learned (every datagram asks; few paths ever send an ICMP error).
	size atomic.Int64
}

type pmtuEntry struct {
	mtu     int
	expires time.Time
}

func (c *pmtuCache) init() { c.m = map[netip.Addr]pmtuEntry{} }

// update records that the path to dst takes at most mtu bytes. An MTU of 0
// (RFC 1191 §5: a router older than path MTU discovery) teaches nothing.
func (c *pmtuCache) update(now time.Time, dst netip.Addr, mtu int) {
	if mtu <= 0 {
		return
	}
	if dst.Is4() {
		mtu = max(mtu, minPMTU4)
	} else {
		mtu = max(mtu, minPMTU6)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[dst]; ok && now.Before(old.expires) && old.mtu <= mtu {
		// RFC 8201 §4: "A node MUST NOT increase its estimate of the
		// Path MTU in response to the contents of a Packet Too Big
		// message"; RFC 1191 §6.3 likewise.
		return
	}
	if len(c.m) >= pmtuMax {
		for a, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, a)
			}
		}
		for a := range c.m {
			if len(c.m) < pmtuMax {
				break
			}
			delete(c.m, a)
		}
	}
	c.m[dst] = pmtuEntry{mtu: mtu, expires: now.Add(pmtuExpiry)}
	c.size.Store(int64(len(c.m)))
}

// get returns the path MTU learned for dst, if one holds at now.
func (c *pmtuCache) get(now time.Time, dst netip.Addr) (int, bool) {
	if c.size.Load() == 0 {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[dst]
	if !ok {
		return 0, false
	}
	if !now.Before(e.expires) {
		delete(c.m, dst)
		c.size.Store(int64(len(c.m)))
		return 0, false
	}
	return e.mtu, true
}
