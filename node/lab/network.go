package lab

import "net/netip"

// Limits of a network's MTU: IPv4's minimum datagram size every host
// accepts (RFC 791, 576) and the IP total length field's maximum.
const (
	minMTU = 576
	maxMTU = 65535
)

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
