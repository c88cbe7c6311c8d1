package lab

import (
	"fmt"
	"net/netip"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// validateRoutes checks host h's routes (field path f): each via is an
// address on a network the host is attached to (connected) and not its own
// (local), each destination a prefix or "default", appearing once.
func validateRoutes(f string, h *labv1.Host, connected []netip.Prefix, local map[netip.Addr]bool, v *Violations) {
	dests := map[netip.Prefix]bool{}
	for i, r := range h.Routes {
		fr := Field(f, fmt.Sprintf("routes[%d]", i))
		via, err := netip.ParseAddr(r.Via)
		if r.Via == "" {
			v.Add(Field(fr, "via"), "required: the next-hop address")
			continue
		} else if err != nil || via.Is4In6() || via.Zone() != "" {
			v.Add(Field(fr, "via"), "%q is not an IP address", r.Via)
			continue
		}
		var to netip.Prefix
		switch {
		case r.To == "" || r.To == "default":
			if r.To == "" {
				v.Add(Field(fr, "to"), `required: a prefix such as 10.0.2.0/24, or "default"`)
				continue
			}
			to = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if via.Is6() {
				to = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
		default:
			p, err := netip.ParsePrefix(r.To)
			if err != nil || p.Addr().Is4In6() {
				v.Add(Field(fr, "to"), `%q is not a prefix such as 10.0.2.0/24, or "default"`, r.To)
				continue
			}
			if p != p.Masked() {
				v.Add(Field(fr, "to"), "%s is not a network address; did you mean %s?", p, p.Masked())
				continue
			}
			to = p
		}
		if to.Addr().Is4() != via.Is4() {
			v.Add(Field(fr, "via"), "%s and %s are of different address families", to, via)
			continue
		}
		if local[via] {
			v.Add(Field(fr, "via"), "%s is this host's own address", via)
			continue
		}
		onLink := false
		for _, c := range connected {
			onLink = onLink || c.Contains(via)
		}
		if !onLink {
			v.Add(Field(fr, "via"), "%s is on no network %s is attached to", via, ID(h.Name))
			continue
		}
		if dests[to] {
			v.Add(Field(fr, "to"), "duplicate route to %s", to)
			continue
		}
		dests[to] = true
	}
}
