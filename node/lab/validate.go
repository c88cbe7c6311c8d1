package lab

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/labnet-dev/labnet/node/services"
)

var (
	ifaceNamePattern = regexp.MustCompile(`^[a-z][a-z0-9.-]{0,14}$`) // Linux IFNAMSIZ
	nodeNamePattern  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$`)
)

const (
	minMTU = 576
	maxMTU = 65535
)

// FieldOf returns the request field path of a resource, or its resource name
// when the request did not name it (an existing resource broken by a change).
type FieldOf func(name string) string

// parsedNet is a network's parsed prefixes.
type parsedNet struct {
	v4, v6 netip.Prefix
}

// parseNetworks parses and checks every network of st.
func parseNetworks(st *State, field FieldOf, v *Violations) map[string]parsedNet {
	out := map[string]parsedNet{}
	type seen struct {
		p  netip.Prefix
		id string
	}
	var all []seen
	// As for hosts (validateLab): networks the request did not name come
	// first, so that an overlap is reported on the network being written.
	ids := SortedKeys(st.Networks)
	var order []string
	for _, id := range ids {
		if field(st.Networks[id].Name) == st.Networks[id].Name {
			order = append(order, id)
		}
	}
	for _, id := range ids {
		if field(st.Networks[id].Name) != st.Networks[id].Name {
			order = append(order, id)
		}
	}
	for _, id := range order {
		n := st.Networks[id]
		f := field(n.Name)
		var pn parsedNet
		ok := true
		if n.Ipv4 == "" {
			v.Add(Field(f, "ipv4"), "required: the network's IPv4 subnet, e.g. 10.0.1.0/24")
			ok = false
		} else if p, err := netip.ParsePrefix(n.Ipv4); err != nil || !p.Addr().Is4() {
			v.Add(Field(f, "ipv4"), "%q is not an IPv4 CIDR such as 10.0.1.0/24", n.Ipv4)
			ok = false
		} else if p != p.Masked() {
			v.Add(Field(f, "ipv4"), "%s is not a network address; did you mean %s?", p, p.Masked())
			ok = false
		} else if p.Bits() < 1 || p.Bits() > 31 {
			v.Add(Field(f, "ipv4"), "prefix length /%d: must be /1 to /31", p.Bits())
			ok = false
		} else {
			pn.v4 = p
		}
		if n.Ipv6 != "" {
			if p, err := netip.ParsePrefix(n.Ipv6); err != nil || !p.Addr().Is6() || p.Addr().Is4In6() {
				v.Add(Field(f, "ipv6"), "%q is not an IPv6 prefix such as fd00:0:0:1::/64", n.Ipv6)
				ok = false
			} else if p != p.Masked() {
				v.Add(Field(f, "ipv6"), "%s is not a prefix address; did you mean %s?", p, p.Masked())
				ok = false
			} else if p.Bits() < 1 || p.Bits() > 127 {
				v.Add(Field(f, "ipv6"), "prefix length /%d: must be /1 to /127", p.Bits())
				ok = false
			} else {
				pn.v6 = p
			}
		}
		if n.Mtu != 0 && (n.Mtu < minMTU || n.Mtu > maxMTU) {
			v.Add(Field(f, "mtu"), "%d is out of range %d-%d", n.Mtu, minMTU, maxMTU)
			ok = false
		} else if n.Mtu != 0 && n.Mtu < 1280 && n.Ipv6 != "" {
			v.Add(Field(f, "mtu"), "%d is below IPv6's minimum of 1280 (RFC 8200 §5)", n.Mtu)
			ok = false
		}
		for _, p := range []netip.Prefix{pn.v4, pn.v6} {
			if !p.IsValid() {
				continue
			}
			for _, o := range all {
				if o.p.Overlaps(p) {
					fld := "ipv4"
					if p.Addr().Is6() {
						fld = "ipv6"
					}
					v.Add(Field(f, fld), "%s overlaps network %s (%s)", p, o.id, o.p)
					ok = false
				}
			}
			all = append(all, seen{p, id})
		}
		if ok {
			out[id] = pn
		}
	}
	return out
}

// Validate checks the whole lab. Every problem is reported against the
// field that caused it. named lists the resources the request wrote, in
// request order: a clash between two hosts is reported on the later one,
// and never on a host the request did not name.
func Validate(st *State, field FieldOf, named []string) Violations {
	var v Violations
	nets := parseNetworks(st, field, &v)
	type owner struct{ host, iface string }
	owners := map[netip.Addr]owner{}
	inRequest := map[string]bool{}
	for _, name := range named {
		inRequest[name] = true
	}
	var order []string
	for _, id := range SortedKeys(st.Hosts) {
		if !inRequest[st.Hosts[id].Name] {
			order = append(order, id)
		}
	}
	for _, name := range named {
		if _, id, ok := ParseHostName(name); ok && st.Hosts[id] != nil {
			order = append(order, id)
		}
	}
	for _, id := range order {
		h := st.Hosts[id]
		f := field(h.Name)
		if h.Node != "" && !nodeNamePattern.MatchString(h.Node) {
			v.Add(Field(f, "node"), "%q is not a node name", h.Node)
		}
		seenSvc := map[string]bool{}
		for i, name := range h.Services {
			fs := Field(f, fmt.Sprintf("services[%d]", i))
			if err := services.Validate(name); err != nil {
				v.Add(fs, "%v", err)
			} else if seenSvc[name] {
				v.Add(fs, "service %q appears twice", name)
			}
			seenSvc[name] = true
		}
		var connected []netip.Prefix
		local := map[netip.Addr]bool{}
		names := map[string]bool{}
		for i, ifc := range h.Interfaces {
			fi := Field(f, fmt.Sprintf("interfaces[%d]", i))
			if !ifaceNamePattern.MatchString(ifc.Name) {
				v.Add(Field(fi, "name"), "%q is not an interface name (a-z, 0-9, '.', '-', up to 15 characters, starting with a letter)", ifc.Name)
			} else if names[ifc.Name] {
				v.Add(Field(fi, "name"), "duplicate interface name %q", ifc.Name)
			}
			names[ifc.Name] = true
			ValidateImpairment(Field(fi, "impair"), ifc.Impair, &v)
			if ifc.Network == "" {
				v.Add(Field(fi, "network"), "required: the name of a network of lab %s", st.ID)
				continue
			}
			_, known := st.Networks[ifc.Network]
			if !known {
				v.Add(Field(fi, "network"), "unknown network %q%s", ifc.Network, knownList("networks", SortedKeys(st.Networks)))
				continue
			}
			pn, ok := nets[ifc.Network]
			if !ok {
				continue // the network itself is reported
			}
			for _, fam := range []struct {
				name   string
				value  string
				subnet netip.Prefix
				v4     bool
			}{{"ipv4", ifc.Ipv4, pn.v4, true}, {"ipv6", ifc.Ipv6, pn.v6, false}} {
				if fam.value == "" {
					continue
				}
				ff := Field(fi, fam.name)
				if !fam.subnet.IsValid() {
					v.Add(ff, "network %s has no %s prefix", ifc.Network, map[bool]string{true: "IPv4", false: "IPv6"}[fam.v4])
					continue
				}
				p, err := netip.ParsePrefix(fam.value)
				if err != nil || p.Addr().Is4() != fam.v4 || p.Addr().Is4In6() {
					v.Add(ff, "%q is not an %s address with prefix length", fam.value, map[bool]string{true: "IPv4", false: "IPv6"}[fam.v4])
					continue
				}
				if !fam.subnet.Contains(p.Addr()) {
					v.Add(ff, "%s is not in network %s (%s)", p.Addr(), ifc.Network, fam.subnet)
					continue
				}
				if p.Bits() != fam.subnet.Bits() {
					v.Add(ff, "prefix length /%d does not match network %s (%s)", p.Bits(), ifc.Network, fam.subnet)
					continue
				}
				if reason := reserved(p.Addr(), fam.subnet); reason != "" {
					v.Add(ff, "%s is the %s of network %s (%s)", p.Addr(), reason, ifc.Network, fam.subnet)
					continue
				}
				if o, dup := owners[p.Addr()]; dup {
					v.Add(ff, "address %s is already used by %s %s", p.Addr(), o.host, o.iface)
					continue
				}
				owners[p.Addr()] = owner{ID(h.Name), ifc.Name}
				local[p.Addr()] = true
				connected = append(connected, fam.subnet)
			}
		}
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
	return v
}

// reserved names why addr cannot be given to an interface on subnet: the
// IPv4 network and broadcast addresses (RFC 919/922; /31 has neither, RFC
// 3021) or the IPv6 subnet-router anycast address (RFC 4291 §2.6.1).
func reserved(addr netip.Addr, subnet netip.Prefix) string {
	if addr == subnet.Addr() && (addr.Is6() || subnet.Bits() < 31) {
		if addr.Is6() {
			return "subnet-router anycast address"
		}
		return "network address"
	}
	if addr.Is4() && subnet.Bits() < 31 && addr == lastAddr(subnet) {
		return "broadcast address"
	}
	return ""
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func knownList(what string, ids []string) string {
	if len(ids) == 0 {
		return fmt.Sprintf(" (the lab has no %s)", what)
	}
	return fmt.Sprintf(" (the lab has %s)", strings.Join(ids, ", "))
}
