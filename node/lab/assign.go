package lab

import (
	"fmt"
	"net/netip"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// Normalize fills defaults and canonical forms in the hosts named by ids
// (interface names eth0.., bare addresses get their network's prefix
// length, addresses in netip's canonical text) and assigns addresses to
// interfaces without one. An interface keeps the address it had before
// (old) when it is still on the same network, so applying the same file
// twice changes nothing. Explicit addresses of every host are reserved
// before any is assigned.
func Normalize(next, old *State, ids []string) {
	nets := map[string]parsedNet{}
	for id, n := range next.Networks {
		var pn parsedNet
		if p, err := netip.ParsePrefix(n.Ipv4); err == nil && p.Addr().Is4() && p == p.Masked() && p.Bits() <= 31 {
			pn.v4 = p
		}
		if p, err := netip.ParsePrefix(n.Ipv6); err == nil && p.Addr().Is6() && p == p.Masked() && p.Bits() <= 127 {
			pn.v6 = p
		}
		nets[id] = pn
	}
	canon := func(s string, subnet netip.Prefix) string {
		if s == "" {
			return s
		}
		if a, err := netip.ParseAddr(s); err == nil && subnet.IsValid() && a.Is4() == subnet.Addr().Is4() {
			return netip.PrefixFrom(a, subnet.Bits()).String()
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			return p.String()
		}
		return s
	}
	used := map[netip.Addr]bool{}
	for _, h := range next.Hosts {
		for _, ifc := range h.Interfaces {
			pn := nets[ifc.Network]
			ifc.Ipv4 = canon(ifc.Ipv4, pn.v4)
			ifc.Ipv6 = canon(ifc.Ipv6, pn.v6)
			for _, s := range []string{ifc.Ipv4, ifc.Ipv6} {
				if p, err := netip.ParsePrefix(s); err == nil {
					used[p.Addr()] = true
				}
			}
		}
	}
	cursors := map[netip.Prefix]*cursor{}
	cursorOf := func(p netip.Prefix) *cursor {
		c := cursors[p]
		if c == nil {
			c = &cursor{}
			cursors[p] = c
		}
		return c
	}
	for _, id := range ids {
		h := next.Hosts[id]
		prev := old.Hosts[id]
		for i, ifc := range h.Interfaces {
			if ifc.Name == "" {
				ifc.Name = fmt.Sprintf("eth%d", i)
			}
			pn, ok := nets[ifc.Network]
			if !ok {
				continue
			}
			var before *labv1.Interface
			if prev != nil && i < len(prev.Interfaces) && prev.Interfaces[i].Network == ifc.Network {
				before = prev.Interfaces[i]
			}
			if ifc.Ipv4 == "" && pn.v4.IsValid() {
				ifc.Ipv4 = pick(pn.v4, used, cursorOf(pn.v4), prevAddr(before, true), netip.Addr{})
			}
			if ifc.Ipv6 == "" && pn.v6.IsValid() {
				// Reuse the IPv4 host number, written the same way (10.0.1.10 ->
				// prefix::10), so the two addresses of an interface are easy
				// to tell together.
				var hint netip.Addr
				if p, err := netip.ParsePrefix(ifc.Ipv4); err == nil && p.Addr().Is4() && pn.v4.IsValid() {
					hint = withHostPart(pn.v6, decimalAsHex(hostPart(p.Addr(), pn.v4)))
				}
				ifc.Ipv6 = pick(pn.v6, used, cursorOf(pn.v6), prevAddr(before, false), hint)
			}
		}
	}
}

func prevAddr(ifc *labv1.Interface, v4 bool) netip.Addr {
	if ifc == nil {
		return netip.Addr{}
	}
	s := ifc.Ipv6
	if v4 {
		s = ifc.Ipv4
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Addr{}
	}
	return p.Addr()
}

// pick returns prev (the interface's earlier address), else hint when it is
// free, else the lowest free address upwards (searched from c, the
// subnet's cursor); marks it used and returns it with the subnet's prefix
// length; "" when the subnet is full (validation then
// reports the missing address).
func pick(subnet netip.Prefix, used map[netip.Addr]bool, c *cursor, prev, hint netip.Addr) string {
	usable := func(a netip.Addr) bool {
		return a.IsValid() && subnet.Contains(a) && !used[a] && reserved(a, subnet) == ""
	}
	take := func(a netip.Addr) string {
		used[a] = true
		return netip.PrefixFrom(a, subnet.Bits()).String()
	}
	// An interface keeps the address it was given before even when the
	// request also names it explicitly elsewhere: validation then reports
	// the clash rather than the running host being re-addressed silently.
	if prev.IsValid() && subnet.Contains(prev) && reserved(prev, subnet) == "" {
		return take(prev)
	}
	if usable(hint) {
		return take(hint)
	}
	// At most 1<<16 probes from the subnet's start: a lab network never
	// holds more hosts than that. Addresses are only ever taken while
	// Normalize runs, so the lowest free one never goes down: the search
	// goes on from where the last one stopped (c), once over the subnet
	// for all its interfaces, not once for each.
	if !c.next.IsValid() {
		c.next = subnet.Addr()
	}
	for ; c.probed < 1<<16 && subnet.Contains(c.next); c.probed++ {
		if a := c.next; usable(a) {
			return take(a)
		}
		c.next = c.next.Next()
	}
	return ""
}

// cursor is where the search for a subnet's lowest free address goes on:
// every address below next is taken or reserved, and probed addresses lie
// below it.
type cursor struct {
	next   netip.Addr
	probed int
}

// hostPart is a's offset within subnet (the low bits), as a 64-bit number.
func hostPart(a netip.Addr, subnet netip.Prefix) uint64 {
	b := a.As4()
	v := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	return v & (1<<(32-subnet.Bits()) - 1)
}

// withHostPart sets the low 64 bits of an IPv6 prefix's address to n.
func withHostPart(p netip.Prefix, n uint64) netip.Addr {
	b := p.Addr().As16()
	for i := 15; i >= 8; i-- {
		b[i] |= byte(n)
		n >>= 8
	}
	return netip.AddrFrom16(b)
}

// decimalAsHex reads n's decimal digits as hexadecimal: 10 -> 0x10, so that
// the IPv6 address shows the same digits as the IPv4 one.
func decimalAsHex(n uint64) uint64 {
	var out, shift uint64
	for ; n > 0; n /= 10 {
		out |= (n % 10) << shift
		shift += 4
	}
	return out
}
